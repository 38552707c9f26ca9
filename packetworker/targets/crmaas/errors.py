"""CRM as a Service errors.

The API is fronted by Azure API Management: a refused key is a 401 from APIM, throttling a
429 with `Retry-After`. The API reference documents status families only: 4xx "failed given
the information provided" (some with a short `code`, none listed), 5xx the CRM's own failure.
So errors are classified by status alone; which of the contact rules' errors a refusal
was (invalid email, duplicate, unknown organization) is for the target to find out by
looking records up, never read from a code or status the vendor does not document.
"""

from __future__ import annotations

from packetworker.targets.http_errors import HTTPTargetError, StatusKinds


class CrmaasError(HTTPTargetError):
    """A CRM as a Service call failed with HTTP `status` and error `code` ("" if none)."""

    @property
    def crm_message(self) -> str:
        return self.detail


class CrmaasAuthError(CrmaasError):
    """Neither subscription key was accepted (401/403)."""


class CrmaasValidationError(CrmaasError):
    """A 4xx refusal of the request's data (400, 422, ...); `code` when the API gives one."""


class CrmaasNotFound(CrmaasError):
    """404: the addressed record (or one the body names) does not exist."""


class CrmaasConflict(CrmaasError):
    """409: the record clashes with an existing one."""


class CrmaasThrottled(CrmaasError):
    """429 that outlasted the retries."""


class CrmaasUnavailable(CrmaasError):
    """5xx, timeouts or connection errors that outlasted the retries."""


_BY_STATUS = StatusKinds(
    auth=CrmaasAuthError,
    not_found=CrmaasNotFound,
    conflict=CrmaasConflict,
    throttled=CrmaasThrottled,
    unavailable=CrmaasUnavailable,
    invalid=CrmaasValidationError,
)


def error_for(
    status: int,
    code: str,
    message: str,
    *,
    retry_after: float | None = None,
    secrets: tuple[str, ...] = (),
) -> CrmaasError:
    """The error class for an answer's status (the `code` is kept, never interpreted)."""
    kind = _BY_STATUS.of(status)
    return _BY_STATUS.error(kind, status, code, message, retry_after=retry_after, secrets=secrets)
