"""CRM as a Service errors.

The API is fronted by Azure API Management: a refused key is a 401 from APIM, throttling a
429 with `Retry-After`. Application errors are 4xx with a JSON body that may carry a short
`code` (the vendor's documentation says so, without listing them); the classes below
keep the four contact outcomes an integration must tell apart (seed 002: invalid email,
missing email, duplicate contact, company not found) distinct from one another.
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
    """400: the body was refused; `code` names the rule when the API gives one."""


class InvalidEmail(CrmaasValidationError):
    """An email value is not a valid address."""


class MissingEmail(CrmaasValidationError):
    """A contact without any email address."""


class CrmaasNotFound(CrmaasError):
    """404: the addressed record does not exist."""


class OrganizationNotFound(CrmaasNotFound):
    """The `organizationId` a record refers to does not exist (seed 002: Company Not Found)."""


class CrmaasConflict(CrmaasError):
    """409: the record clashes with an existing one."""


class DuplicateContact(CrmaasConflict):
    """A contact with the same email address exists."""


class CrmaasThrottled(CrmaasError):
    """429 that outlasted the retries."""


class CrmaasUnavailable(CrmaasError):
    """5xx, timeouts or connection errors that outlasted the retries."""


_BY_CODE: dict[str, type[CrmaasError]] = {
    "invalid_email": InvalidEmail,
    "missing_email": MissingEmail,
    "duplicate_contact": DuplicateContact,
    "organization_not_found": OrganizationNotFound,
}

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
    """The most specific error for an answer: by `code` first, then by status."""
    kind = _BY_CODE.get(code.lower()) or _BY_STATUS.of(status)
    return _BY_STATUS.error(kind, status, code, message, retry_after=retry_after, secrets=secrets)
