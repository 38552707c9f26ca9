"""Which portal failures are retried, on the shared policy of `packetworker.retrying`.

Connection errors, 429 and 5xx are retried; a `Retry-After` longer than `backoff_max` stops
the retries at once, so the caller gets `PortalUnavailable.retry_after` and can reschedule.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
from tenacity import RetryCallState, Retrying

from packetworker.request_budget import SlotUnavailable
from packetworker.retrying import parse_retry_after
from packetworker.retrying import retrying as _retrying


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


def retrying(
    *,
    attempts: int,
    backoff_base: float,
    backoff_max: float,
    sleep: Callable[[float], None],
    before_sleep: Callable[[RetryCallState], None] | None = None,
) -> Retrying:
    """A tenacity `Retrying` for portal calls that re-raises the last error."""
    return _retrying(
        # No slot of the request budget came free in time: waiting again is the caller's call.
        retry=lambda error: (
            isinstance(error, RETRYABLE_ERRORS) and not isinstance(error, SlotUnavailable)
        ),
        attempts=attempts,
        backoff_base=backoff_base,
        backoff_max=backoff_max,
        sleep=sleep,
        before_sleep=before_sleep,
    )
