"""What the target clients' HTTP errors share: construction, redaction, pickling, reading
an error answer, and which failures may be sent again (on `packetworker.retrying`'s policy).

Each client keeps its own error classes (and how it classifies an answer); they all derive
from `HTTPTargetError`, which holds the HTTP `status` (0 when no answer came), the service's
error `code` ("" if none), the redacted message and the server's `Retry-After` in seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import httpx
from tenacity import Retrying

from packetworker.redact import redact_text
from packetworker.retrying import retrying
from packetworker.targets.base import TargetError

# Statuses the services document as "try again later" (429/503 carry Retry-After; 408 and
# 504 mean the operation ran too long and may succeed when the service is less busy).
TRANSIENT_STATUSES = frozenset({408, 429, 502, 503, 504})
# The connection was never made, so the request certainly did not run.
CONNECT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout)
ERROR_CHARS = 500

E = TypeVar("E", bound="HTTPTargetError")


def is_transient_status(status: int) -> bool:
    """Whether an answer with `status` may succeed when sent again."""
    return status in TRANSIENT_STATUSES or status >= 500


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
    """A transient error for a request that got no answer: `not_sent` when the connection
    was never made (safe to send again), else `unavailable` (it may have run)."""
    kind = not_sent if isinstance(exc, CONNECT_ERRORS) else unavailable
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


def may_resend(
    error: BaseException, *, idempotent: bool, not_run: tuple[type[BaseException], ...]
) -> bool:
    """Whether a failed request is worth sending again: a transient error, and for a write
    that is not idempotent (a POST that creates) only one that certainly did not run —
    `not_run`: throttled, or never connected — since resending could create a second record.
    """
    if not isinstance(error, HTTPTargetError) or not error.transient:
        return False
    return idempotent or isinstance(error, not_run)


class Resending:
    """Mixin of the CRM clients: their retry settings and the shared policy bound to them."""

    def _retry_settings(
        self,
        *,
        attempts: int,
        backoff_base: float,
        backoff_max: float,
        sleep: Callable[[float], None],
    ) -> None:
        self.attempts = max(1, attempts)
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self._sleep = sleep

    def _retrying(
        self, *, idempotent: bool, not_run: tuple[type[BaseException], ...], **options: Any
    ) -> Retrying:
        """The policy for one request (see `may_resend`); `options` go to `retrying`."""
        return retrying(
            retry=lambda error: may_resend(error, idempotent=idempotent, not_run=not_run),
            attempts=self.attempts,
            backoff_base=self.backoff_base,
            backoff_max=self.backoff_max,
            sleep=self._sleep,
            **options,
        )
