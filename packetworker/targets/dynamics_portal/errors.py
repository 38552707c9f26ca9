"""Errors of the Dynamics portal proxy client.

The proxy's contract (seed 000) shows only success bodies; errors are read tolerantly:
`{"error": {"code", "message"}}` (Dataverse's shape, which a proxy passes through) or a
top-level `message`/`error`. Messages are redacted; session tokens never appear.
"""

from __future__ import annotations

from packetworker.targets.http_errors import HTTPTargetError, is_transient_status


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


def error_for(
    status: int, code: str, message: str, *, retry_after: float | None = None
) -> DynamicsPortalError:
    kind: type[DynamicsPortalError]
    if status == 409 or code in DUPLICATE_CODES:
        kind = DuplicateRecord
    elif status in (401, 403):
        kind = DynamicsPortalAuthError
    elif status == 404:
        kind = RecordNotFound
    elif status == 429:
        kind = Throttled
    elif is_transient_status(status):
        kind = Unavailable
    else:
        kind = InvalidRequest
    transient = kind in (Throttled, Unavailable)
    return kind(status, code, message, transient=transient, retry_after=retry_after)
