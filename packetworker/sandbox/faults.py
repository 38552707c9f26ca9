"""The faults every emulator takes: scripted failures (error statuses, 429 storms, slow
answers, trickling bodies, dropped connections) and a gate that holds requests in flight.

Scripted faults are consumed in the order they were added by the next requests whose path
starts with `path_prefix` (any request when None). A prefix with a `?` is matched against the
path and query string, e.g. `/mobile/erp/pull/DEMO?packetType=file` to fail only the file
listing. How a fault is answered is each emulator's (its service's error shape and headers);
which faults it honours is listed in its docstring.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

from packetworker.sandbox.base import WAIT_TIMEOUT


@dataclass
class Fault:
    kind: Literal["status", "slow", "refuse", "trickle"]
    remaining: int
    status: int = 0
    retry_after: str | None = None
    seconds: float = 0.0
    piece_bytes: int = 0
    path_prefix: str | None = None
    together: threading.Barrier | None = None  # a storm's answers go out at one moment

    def matches(self, path: str, query: str = "") -> bool:
        if self.remaining < 1:
            return False
        if not self.path_prefix:
            return True
        target = f"{path}?{query}" if "?" in self.path_prefix else path
        return target.startswith(self.path_prefix)


class Faults:
    """Thread-safe list of pending faults, the in-flight gate and what they observed:
    `throttled` (429s answered), `in_flight` and `peak_in_flight` (inside `track`)."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Condition()
        self._released = threading.Event()
        self._released.set()
        self.throttled = 0
        self.in_flight = 0
        self.peak_in_flight = 0

    def add(
        self,
        *,
        status: int,
        count: int = 1,
        retry_after: float | str | None = None,
        path_prefix: str | None = None,
    ) -> None:
        """Answer the next `count` requests with `status` (and `Retry-After` when given)."""
        after = None if retry_after is None else _header_value(retry_after)
        self._push(
            Fault("status", count, status=status, retry_after=after, path_prefix=path_prefix)
        )

    def fail(self, count: int, *, status: int = 503, path_prefix: str | None = None) -> None:
        """Answer the next `count` requests with `status` (after running nothing)."""
        self.add(status=status, count=count, path_prefix=path_prefix)

    def storm(
        self,
        count: int,
        *,
        retry_after: float | str | None = 1,
        together: int | None = None,
        path_prefix: str | None = None,
    ) -> None:
        """Answer the next `count` requests with 429 and `Retry-After` (None: no header).
        With `together`, those answers are held until `together` of them have arrived, so
        every client thread is throttled at the same moment (a deterministic storm)."""
        after = None if retry_after is None else _header_value(retry_after)
        barrier = threading.Barrier(together, timeout=WAIT_TIMEOUT) if together else None
        self._push(
            Fault(
                "status",
                count,
                status=429,
                retry_after=after,
                path_prefix=path_prefix,
                together=barrier,
            )
        )

    def slow(self, seconds: float, *, count: int = 1, path_prefix: str | None = None) -> None:
        """Delay the next `count` answers by `seconds` (then answer normally)."""
        self._push(Fault("slow", count, seconds=seconds, path_prefix=path_prefix))

    def trickle(
        self,
        seconds: float,
        *,
        piece_bytes: int = 1,
        count: int = 1,
        path_prefix: str | None = None,
    ) -> None:
        """Send the next `count` answers' bodies `piece_bytes` at a time, `seconds` apart:
        a connection that never goes quiet long enough for a read timeout, yet never ends."""
        if piece_bytes < 1:
            raise ValueError("piece_bytes must be at least 1")
        self._push(
            Fault(
                "trickle",
                count,
                seconds=seconds,
                piece_bytes=piece_bytes,
                path_prefix=path_prefix,
            )
        )

    def refuse(self, *, count: int = 1, path_prefix: str | None = None) -> None:
        """Close the connection of the next `count` requests without answering."""
        self._push(Fault("refuse", count, path_prefix=path_prefix))

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, path: str = "", query: str = "") -> Fault | None:
        """The fault that applies to this request, if any (consumes one of its count). A
        storm's 429 waits here until the rest of its `together` have arrived."""
        with self._lock:
            fault = next((f for f in self._faults if f.matches(path, query)), None)
            if fault is None:
                return None
            fault.remaining -= 1
            if fault.status == 429:
                self.throttled += 1
        if fault.together is not None:
            fault.together.wait()
        return fault

    # --- holding requests in flight ------------------------------------------------------

    def hold(self) -> None:
        """Keep requests waiting (in flight) inside the emulator until `release()`."""
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    @contextmanager
    def holding(self) -> Iterator[None]:
        """Requests wait inside the emulator until the block exits."""
        self.hold()
        try:
            yield
        finally:
            self.release()

    def wait_released(self) -> None:
        """Where a request waits while held (never longer than `WAIT_TIMEOUT`)."""
        self._released.wait(WAIT_TIMEOUT)

    @contextmanager
    def track(self) -> Iterator[None]:
        """Count a request in flight while the block runs; held requests wait here."""
        with self._lock:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            self._lock.notify_all()
        try:
            self.wait_released()
            yield
        finally:
            with self._lock:
                self.in_flight -= 1
                self._lock.notify_all()

    def wait_in_flight(self, count: int, timeout: float = WAIT_TIMEOUT) -> bool:
        """Block until at least `count` requests are in flight (True) or `timeout` passes."""
        with self._lock:
            return self._lock.wait_for(lambda: self.in_flight >= count, timeout)

    def pending(self) -> list[Fault]:
        with self._lock:
            return [f for f in self._faults if f.remaining > 0]

    def _push(self, fault: Fault) -> None:
        if fault.remaining < 1:
            raise ValueError("count must be at least 1")
        with self._lock:
            self._faults.append(fault)


def _header_value(retry_after: float | str) -> str:
    if isinstance(retry_after, str):
        return retry_after
    return str(int(retry_after)) if float(retry_after).is_integer() else str(retry_after)
