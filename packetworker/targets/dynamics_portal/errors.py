"""Errors of the Dynamics portal proxy client.

The proxy's contract (the user's document, seeds/000) shows only success bodies; errors are
read tolerantly: `{"error": {"code", "message"}}` (Dataverse's shape, which a proxy passes
through) or a top-level `message`/`error`. Messages are redacted; session tokens never appear.
"""

from __future__ import annotations

from packetworker.targets.http_errors import HTTPTargetError, StatusKinds


class DynamicsPortalError(HTTPTargetError):
    """A proxy call failed with HTTP `status` (0 when no answer came) and `code` ("" if none)."""

    @property
    def proxy_message(self) -> str:
        return self.detail


class DynamicsPortalAuthError(DynamicsPortalError):
    """`authenticate` refused the client id or scope, or a fresh session was refused."""


class RecordNotFound(DynamicsPortalError):
    """404: no record with that id."""


class DuplicateRecord(DynamicsPortalError):
    """409 (or Dynamics' duplicate codes passed through): the record already exists."""


class InvalidRequest(DynamicsPortalError):
    """400/422: the endpoint or payload was refused."""


class Throttled(DynamicsPortalError):
    """429 that outlasted the retries."""


class Unavailable(DynamicsPortalError):
    """5xx, timeouts or connection errors that outlasted the retries."""


DUPLICATE_CODES = frozenset({"0x80040237", "0x80040333"})

_BY_STATUS = StatusKinds(
    auth=DynamicsPortalAuthError,
    not_found=RecordNotFound,
    conflict=DuplicateRecord,
    throttled=Throttled,
    unavailable=Unavailable,
    invalid=InvalidRequest,
)


def error_for(
    status: int, code: str, message: str, *, retry_after: float | None = None
) -> DynamicsPortalError:
    """Dynamics' duplicate codes passed through first, then the status."""
    kind = DuplicateRecord if code in DUPLICATE_CODES else _BY_STATUS.of(status)
    return _BY_STATUS.error(kind, status, code, message, retry_after=retry_after)
