"""What the target clients' HTTP errors share: construction, redaction, pickling, reading
an error answer, and a transport failure as an error of the client's own kinds.

Each client keeps its own error classes (and how it classifies an answer); they all derive
from `HTTPTargetError`, which holds the HTTP `status` (0 when no answer came), the service's
error `code` ("" if none), the redacted message and the server's `Retry-After` in seconds.
Which failures are transient or never sent is `packetworker.http`'s call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import httpx

from packetworker.http import is_transient_status, never_sent
from packetworker.redact import redact_text
from packetworker.targets.base import TargetError

ERROR_CHARS = 500

E = TypeVar("E", bound="HTTPTargetError")


class HTTPTargetError(TargetError):
    """A call to a target system failed with HTTP `status` and error `code`.

    The message is redacted (with `secrets`, e.g. API keys): it never carries a token or
    key, even when the server echoed one. Picklable, as errors cross process boundaries.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        transient: bool,
        retry_after: float | None = None,
        secrets: tuple[str, ...] = (),
    ) -> None:
        message = redact_text(message, *secrets)
        label = f" {code}" if code else ""
        super().__init__(f"{status}{label}: {message}", transient=transient)
        self.status = status
        self.code = code
        self.detail = message
        self.retry_after = retry_after

    def __reduce__(self):
        args = (type(self), self.status, self.code, self.detail, self.transient, self.retry_after)
        return (_rebuild, args)


def _rebuild(cls, status, code, message, transient, retry_after):
    return cls(status, code, message, transient=transient, retry_after=retry_after)


@dataclass(frozen=True)
class StatusKinds(Generic[E]):
    """A client's error classes for what the HTTP status alone says, once the service's own
    error codes have had their say; throttled and unavailable errors are the transient ones."""

    auth: type[E]  # 401/403
    not_found: type[E]  # 404
    conflict: type[E]  # 409
    throttled: type[E]  # 429
    unavailable: type[E]  # 408, 5xx (`is_transient_status`)
    invalid: type[E]  # any other refusal

    def of(self, status: int) -> type[E]:
        if status in (401, 403):
            return self.auth
        if status == 404:
            return self.not_found
        if status == 409:
            return self.conflict
        if status == 429:
            return self.throttled
        if is_transient_status(status):
            return self.unavailable
        return self.invalid

    def error(self, kind: type[E], status: int, code: str, message: str, **options: Any) -> E:
        """An error of `kind`; `options` (`retry_after`, `secrets`) go to the constructor."""
        transient = issubclass(kind, (self.throttled, self.unavailable))
        return kind(status, code, message, transient=transient, **options)


def transport_error(
    exc: httpx.TransportError, where: str, *, not_sent: type[E], unavailable: type[E]
) -> E:
    """A transient error for a request that got no answer: `not_sent` when it certainly never
    left (`packetworker.http.never_sent`: safe to send again), else `unavailable` (it may
    have run)."""
    kind = not_sent if never_sent(exc) else unavailable
    return kind(0, "", f"{where}: {type(exc).__name__}", transient=True)


def error_parts(response: httpx.Response, *, secrets: tuple[str, ...] = ()) -> tuple[str, str]:
    """(code, message) of an error answer, the message redacted and cut short.

    Read tolerantly: `{"error": {"code", "message"}}` (OData's shape), else a top-level
    `code` and `message` (or an `error` string), else the start of the body text; the
    reason phrase when all of that is empty.
    """
    try:
        payload: Any = response.json()
    except ValueError:
        payload = None
    code, message = "", ""
    if isinstance(payload, dict):
        error = payload.get("error")
        detail = error if isinstance(error, dict) else payload
        code = str(detail.get("code") or "")
        message = str(detail.get("message") or (error if isinstance(error, str) else "") or "")
    else:
        message = response.text[:ERROR_CHARS]
    return code, redact_text(message or response.reason_phrase, *secrets)[:ERROR_CHARS]
