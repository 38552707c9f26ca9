"""Service-protection pacing shared by every thread of one client.

Dataverse limits are per user, not per request, and it lengthens `Retry-After` for clients
that keep sending while throttled. So a 429 pauses *all* outgoing requests of the client
until one shared "not before" instant, and a cap on in-flight requests stays well under the
52 concurrent requests a user may have.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class ThrottleGate:
    """A shared pause: `pause()` moves the "not before" instant, `wait()` honours it."""

    def __init__(
        self,
        *,
        max_concurrency: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self._clock = clock
        self._sleep = sleep
        self._state = threading.Lock()
        # Sleepers queue here, so one thread sleeps out the pause and the others find it over.
        self._sleepers = threading.Lock()
        self._not_before = 0.0
        self._slots = threading.BoundedSemaphore(max_concurrency)
        self.max_concurrency = max_concurrency

    def now(self) -> float:
        return self._clock()

    def pause(self, seconds: float, *, since: float) -> None:
        """Hold every request until `seconds` after `since` (when the throttled request was
        sent): 429s answering requests that were already in flight extend nothing."""
        with self._state:
            self._not_before = max(self._not_before, since + seconds)

    def wait(self, *, max_wait: float = float("inf")) -> float | None:
        """Return None once no pause is in force, sleeping out the remainder if one is; a
        pause longer than `max_wait` is not slept: its remaining seconds are returned."""
        with self._sleepers:
            while True:
                with self._state:
                    delay = self._not_before - self._clock()
                if delay <= 0:
                    return None
                if delay > max_wait:
                    return delay
                self._sleep(delay)

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Occupy one of the `max_concurrency` in-flight slots for one request."""
        with self._slots:
            yield
