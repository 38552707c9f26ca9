"""When and how long to retry an HTTP call: one tenacity policy for every client.

The portal client and the target clients retry throttling (429), 5xx and dropped
connections with jittered exponential backoff. A server's `Retry-After` (delta-seconds or
an HTTP date) replaces the backoff for that wait. When it asks for more than `backoff_max`,
a client either gives up at once (`long_waits="give_up"`: a worker thread is not parked for
minutes; the caller reads the error's `retry_after` and reschedules) or waits `backoff_max`
(`"cap"`). Pure apart from the injected `sleep`.
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal

from tenacity import RetryCallState, Retrying, retry_if_exception, wait_random_exponential

LongWaits = Literal["give_up", "cap"]


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header, or None when absent or unreadable.

    Delta-seconds (`"120"`; a fraction is accepted) or an HTTP date, measured from `now`
    (epoch seconds, default the current time); a date in the past means 0.
    """
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        return _seconds_until(value, now)
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _seconds_until(http_date: str, now: float | None) -> float | None:
    try:
        when = email.utils.parsedate_to_datetime(http_date)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = datetime.fromtimestamp(now if now is not None else time.time(), UTC)
    return max(0.0, (when - current).total_seconds())


def retry_after_of(error: BaseException | None) -> float | None:
    """The `retry_after` (seconds) an error carries, None when it has none."""
    value = getattr(error, "retry_after", None)
    return float(value) if isinstance(value, int | float) else None


def retrying(
    *,
    retry: Callable[[BaseException], bool],
    attempts: int,
    backoff_base: float,
    backoff_max: float,
    sleep: Callable[[float], None],
    retry_after: Callable[[BaseException | None], float | None] = retry_after_of,
    long_waits: LongWaits = "give_up",
    wait_retry_after: bool = True,
    before_sleep: Callable[[RetryCallState], None] | None = None,
) -> Retrying:
    """A tenacity `Retrying` that re-raises the last error once it stops.

    `retry` says which errors are worth another attempt; `retry_after` reads the delay a
    server asked for from an error. `wait_retry_after=False` is for a caller that sleeps
    that delay out itself (a pause shared by its threads): the retry then follows at once.
    """
    backoff = wait_random_exponential(multiplier=backoff_base, max=backoff_max)
    give_up_on_long = long_waits == "give_up"

    def delay(state: RetryCallState) -> float | None:
        return retry_after(state.outcome.exception() if state.outcome else None)

    def wait(state: RetryCallState) -> float:
        asked = delay(state)
        if asked is None:
            return backoff(state)
        if not wait_retry_after:
            return 0.0
        return asked if give_up_on_long else min(asked, backoff_max)

    def stop(state: RetryCallState) -> bool:
        asked = delay(state)
        too_long = give_up_on_long and asked is not None and asked > backoff_max
        return too_long or state.attempt_number >= max(1, attempts)

    def sleep_positive(seconds: float) -> None:
        if seconds > 0:
            sleep(seconds)

    return Retrying(
        retry=retry_if_exception(retry),
        wait=wait,
        stop=stop,
        sleep=sleep_positive,
        before_sleep=before_sleep,
        reraise=True,
    )
