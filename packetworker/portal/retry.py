"""When and how long to retry a portal call (tenacity policy, pure apart from sleeping).

Connection errors, 429 and 5xx are retried with jittered exponential backoff; a server's
`Retry-After` (seconds or an HTTP date) replaces the backoff for that wait. A `Retry-After`
longer than `backoff_max` stops the retries at once, so a worker thread is not parked for
minutes: the caller gets `PortalUnavailable.retry_after` and can reschedule instead.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)


class RetryableStatus(Exception):
    """An answer worth retrying (429/5xx); carries what the final error needs."""

    def __init__(self, response: httpx.Response, body: bytes) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.status = response.status_code
        self.body = body
        self.retry_after = parse_retry_after(response.headers.get("retry-after"))


RETRYABLE_ERRORS = (httpx.TransportError, RetryableStatus)


def is_retryable_status(status: int) -> bool:
    return status == 429 or status >= 500


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = datetime.fromtimestamp(now if now is not None else time.time(), UTC)
    return max(0.0, (when - current).total_seconds())


def retrying(
    *,
    attempts: int,
    backoff_base: float,
    backoff_max: float,
    sleep: Callable[[float], None],
    before_sleep: Callable[[RetryCallState], None] | None = None,
) -> Retrying:
    """A tenacity `Retrying` that re-raises the last error once attempts run out."""
    backoff = wait_random_exponential(multiplier=backoff_base, max=backoff_max)

    def wait(state: RetryCallState) -> float:
        retry_after = _retry_after(state)
        return retry_after if retry_after is not None else backoff(state)

    def stop(state: RetryCallState) -> bool:
        retry_after = _retry_after(state)
        too_long = retry_after is not None and retry_after > backoff_max
        return too_long or stop_after_attempt(max(1, attempts))(state)

    return Retrying(
        retry=retry_if_exception_type(RETRYABLE_ERRORS),
        wait=wait,
        stop=stop,
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )


def _retry_after(state: RetryCallState) -> float | None:
    exc = state.outcome.exception() if state.outcome else None
    return exc.retry_after if isinstance(exc, RetryableStatus) else None
