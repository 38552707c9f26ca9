"""BC's per-user request limits as the emulator applies them (business-central.md §5.4),
and the sandbox's faults (`sandbox.faults`: scripted statuses and 429 storms, the gate tests
close to hold requests in flight) at the point BC would answer them.

Per user: `max_concurrent` requests run at once and the rest wait in a queue; beyond
`max_connections` (running + queued) or `rate_limit` (6,000 per sliding 5 minutes) BC answers
429. A request still queued after `queue_timeout` gets 503, one that ran longer than
`operation_timeout` gets 408 and one that took longer than `request_timeout` in all gets 504.
Time is the injected clock's, so tests move it instead of waiting.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from packetworker.sandbox.bc.errors import ODataError
from packetworker.sandbox.bc.odata import too_many
from packetworker.sandbox.faults import Faults

T = TypeVar("T")

# How often a queued request looks at the clock (which tests may move) while it waits.
_QUEUE_POLL = 0.05


class RequestLimits:
    def __init__(
        self,
        *,
        clock: Callable[[], datetime],
        faults: Faults,
        max_concurrent: int = 5,
        max_connections: int = 100,
        rate_limit: tuple[int, float] | None = (6000, 300.0),
        queue_timeout: float = 480.0,
        operation_timeout: float = 480.0,
        request_timeout: float = 600.0,
    ) -> None:
        self.clock = clock
        self.faults = faults
        self.max_concurrent = max_concurrent  # §5.4: 5 processed at a time per user
        self.max_connections = max_connections  # §5.4: 100 processing + queued, then 429
        self.rate_limit = rate_limit  # §5.4: (6,000, 300 s) sliding window per user, or None
        self.queue_timeout = queue_timeout  # §5.4: still queued after 8 minutes → 503
        self.operation_timeout = operation_timeout  # §5.4: operation over 8 minutes → 408
        self.request_timeout = request_timeout  # §5.3/§5.4: request over 10 minutes → 504
        # Whether the limits' 429s carry Retry-After: the docs say nothing either way (§5.4).
        self.retry_after_on_429 = True
        # Whether work that ran past a time limit stays committed: unconfirmed (§5.3).
        self.timeouts_commit = True
        # Seconds each API request takes while it holds its running slot (wall time, not the
        # injected clock): a real tenant answers in ~100-300 ms, which is what makes the 5
        # concurrent requests per user bind (§5.4). 0 for tests, ~0.15 for benchmarks.
        self.latency = 0.0
        self.max_in_flight = 0  # most requests running at once (all users)
        self.max_queued = 0  # most requests queued at once (all users)
        self._running: dict[str, int] = {}
        self._queued: dict[str, int] = {}
        self._window: dict[str, deque] = {}
        self._state = threading.Condition()

    def run(self, user: str, call: Callable[[], T], *, path: str = "") -> T:
        """`call()` within `user`'s limits; raises BC's 429/503/408/504 when over one."""
        arrived = self._now()
        fault = self.faults.take(path)
        if fault is not None and fault.kind == "status":
            if fault.status == 429:
                raise too_many(None if fault.retry_after is None else int(fault.retry_after))
            raise ODataError(fault.status, "Unknown", f"sandbox fault {fault.status}")
        with self._state:
            if self.rate_limit is not None:
                self._check_window(user, arrived)
            self._enter_queue(user, arrived)
        started = self._now()
        try:
            self.faults.wait_released()
            if self.latency > 0:
                time.sleep(self.latency)  # service time, inside the slot (§5.4: 5 at a time)
            cancelled = self._now() - started > self.operation_timeout
            result = None if cancelled and not self.timeouts_commit else call()
            if self._now() - started > self.operation_timeout:
                # §5.4: "Operation timeout 8 minutes → 408 and session cancelled".
                raise ODataError(408, "Unknown", "The operation has timed out.")
            if self._now() - arrived > self.request_timeout:
                # §5.3: execution is capped at 10 minutes, then 504 Gateway Timeout.
                raise ODataError(504, "Unknown", "The request took longer than 10 minutes.")
            return result
        finally:
            with self._state:
                self._running[user] -= 1
                self._state.notify_all()

    def _enter_queue(self, user: str, arrived: float) -> None:
        """Take a running slot, queueing (up to `max_connections`) until one frees up."""
        running, queued = self._running.get(user, 0), self._queued.get(user, 0)
        if running + queued >= self.max_connections:
            # §5.4: "Max connections (processing + queued) 100 → 429".
            raise self._too_many("Too many simultaneous requests: the request queue is full.", 1)
        self._queued[user] = queued + 1
        self.max_queued = max(self.max_queued, sum(self._queued.values()))
        self._state.notify_all()
        try:
            while self._running.get(user, 0) >= self.max_concurrent:
                if self._now() - arrived > self.queue_timeout:
                    # §5.4: a request still queued after 8 minutes gets 503 (with Retry-After,
                    # include-http-status-error-codes).
                    raise ODataError(
                        503,
                        "Unknown",
                        "The request waited too long in the queue.",
                        headers={"Retry-After": "5"},
                    )
                self._state.wait(timeout=_QUEUE_POLL)
        finally:
            self._queued[user] -= 1
        self._running[user] = self._running.get(user, 0) + 1
        self.max_in_flight = max(self.max_in_flight, sum(self._running.values()))
        self._state.notify_all()

    def _check_window(self, user: str, now: float) -> None:
        limit, seconds = self.rate_limit
        window = self._window.setdefault(user, deque())
        while window and window[0] <= now - seconds:
            window.popleft()
        if len(window) >= limit:
            # Message as observed by a third party (business-central.md §5.4, SnapLogic doc).
            raise self._too_many(
                f"Number of requests exceeded the limit of {limit} over the time window of "
                f"{int(seconds)} seconds.",
                max(1, int(window[0] + seconds - now + 0.999)),
            )
        window.append(now)

    def _too_many(self, message: str, retry_after: int) -> ODataError:
        return too_many(retry_after if self.retry_after_on_429 else None, message)

    def _now(self) -> float:
        return self.clock().timestamp()

    def wait_in_flight(self, count: int, timeout: float = 10.0) -> bool:
        """Wait until `count` requests run at once (all users)."""
        with self._state:
            return self._state.wait_for(
                lambda: sum(self._running.values()) >= count, timeout=timeout
            )

    def wait_queued(self, count: int, timeout: float = 10.0) -> bool:
        """Wait until `count` requests wait in the queue (all users)."""
        with self._state:
            return self._state.wait_for(
                lambda: sum(self._queued.values()) >= count, timeout=timeout
            )
