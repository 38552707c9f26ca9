"""Dataverse Web API errors, mapped from status and Dataverse error code to clear outcomes.

Dataverse answers `{"error": {"code": "0x80040237", "message": "..."}}`; the code is often
empty, so the HTTP status decides when it is. Every error is a `TargetError`: `transient`
says whether sending the same request later may succeed (throttling, 5xx, timeouts).
Messages are redacted, so a token or secret echoed by a server never reaches a log.
"""

from __future__ import annotations

from packetworker.http import is_transient_status
from packetworker.targets.http_errors import HTTPTargetError

DUPLICATE_KEY = "0x80040237"  # "Cannot insert duplicate key" (primary or alternate key)
DUPLICATE_DETECTED = "0x80040333"  # a duplicate-detection rule matched
DOES_NOT_EXIST = "0x80040217"  # "<entity> With Id = ... Does Not Exist"
THROTTLE_CODES = frozenset({"0x80072322", "0x80072321", "0x80072326"})


class DataverseError(HTTPTargetError):
    """A Dataverse call failed with HTTP `status` and Dataverse error `code` ("" if none)."""

    @property
    def dataverse_message(self) -> str:
        return self.detail


class DataverseAuthError(DataverseError):
    """401/403 or a refused token request: credentials, consent or security role."""


class RecordNotFound(DataverseError):
    """The addressed record does not exist (404, `0x80040217`)."""


class LookupTargetNotFound(RecordNotFound):
    """A record named in an `@odata.bind` does not exist (404 on a write that creates)."""


class DuplicateRecord(DataverseError):
    """A record with the same primary or alternate key exists (`0x80040237` / 412)."""


class DuplicateDetected(DataverseError):
    """A duplicate-detection rule matched (`0x80040333`, HTTP 500 but not transient)."""


class PreconditionFailed(DataverseError):
    """412 for an `If-Match` ETag that no longer matches (optimistic concurrency)."""


class InvalidRequest(DataverseError):
    """400: invalid column, value or key; sending it again will fail the same way."""


class Throttled(DataverseError):
    """429 service-protection limit that outlasted the retries. Try again later."""


class Unavailable(DataverseError):
    """5xx, timeouts or connection errors that outlasted the retries. Try again later."""


class ConnectionFailed(Unavailable):
    """The connection could not be made, so the request certainly did not run."""


def error_for(
    status: int,
    code: str,
    message: str,
    *,
    retry_after: float | None = None,
    creates: bool = False,
) -> DataverseError:
    """The most specific error for an answer. `creates` marks a write that could only
    create a record, so a 404 can only be about a bound lookup target."""
    kind: type[DataverseError]
    if code == DUPLICATE_DETECTED:
        kind = DuplicateDetected
    elif code == DUPLICATE_KEY or (status == 412 and "matching key values" in message):
        kind = DuplicateRecord
    elif status == 412:
        kind = PreconditionFailed
    elif status == 429 or code in THROTTLE_CODES:
        kind = Throttled
    elif status in (401, 403):
        kind = DataverseAuthError
    elif status == 404 or code == DOES_NOT_EXIST:
        kind = LookupTargetNotFound if creates else RecordNotFound
    elif is_transient_status(status):
        kind = Unavailable
    else:
        kind = InvalidRequest
    transient = kind in (Throttled, Unavailable)
    return kind(status, code, message, transient=transient, retry_after=retry_after)
