"""BC's request limits as the emulator applies them: concurrent requests per user, an
optional rate window, and scripted 429 storms; plus a gate tests close to hold requests in
flight (to observe concurrency)."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TypeVar

from packetworker.sandbox.bc.odata import too_many

T = TypeVar("T")


class RequestLimits:
    def __init__(
        self,
        *,
        max_concurrent: int,
        rate_limit: tuple[int, float] | None,
        clock: Callable[[], datetime],
    ) -> None:
        self.max_concurrent = max_concurrent
        self.rate_limit = rate_limit  # (requests, per seconds) per user, or None
        self.clock = clock
        self.max_in_flight = 0
        self._in_flight: dict[str, int] = {}
        self._window: dict[str, deque] = {}
        self._throttle_left = 0
        self._throttle_retry_after = 1
        self._gate = threading.Event()
        self._gate.set()
        self._state = threading.Condition()

    def run(self, user: str, call: Callable[[], T]) -> T:
        """`call()` within `user`'s limits; raises BC's 429 when over one."""
        with self._state:
            if self._throttle_left > 0:
                self._throttle_left -= 1
                raise too_many(self._throttle_retry_after)
            if self.rate_limit is not None:
                self._check_window(user)
            if self._in_flight.get(user, 0) >= self.max_concurrent:
                raise too_many(1)
            self._in_flight[user] = self._in_flight.get(user, 0) + 1
            self.max_in_flight = max(self.max_in_flight, sum(self._in_flight.values()))
            self._state.notify_all()
        try:
            self._gate.wait(timeout=30)
            return call()
        finally:
            with self._state:
                self._in_flight[user] -= 1
                self._state.notify_all()

    def _check_window(self, user: str) -> None:
        limit, seconds = self.rate_limit
        now = self.clock().timestamp()
        window = self._window.setdefault(user, deque())
        while window and window[0] <= now - seconds:
            window.popleft()
        if len(window) >= limit:
            raise too_many(max(1, int(window[0] + seconds - now + 0.999)))
        window.append(now)

    def throttle(self, times: int, *, retry_after: int = 1) -> None:
        with self._state:
            self._throttle_left = times
            self._throttle_retry_after = retry_after

    @contextmanager
    def holding(self) -> Iterator[None]:
        self._gate.clear()
        try:
            yield
        finally:
            self._gate.set()

    def release(self) -> None:
        self._gate.set()

    def wait_in_flight(self, count: int, timeout: float = 10.0) -> bool:
        with self._state:
            return self._state.wait_for(
                lambda: sum(self._in_flight.values()) >= count, timeout=timeout
            )
