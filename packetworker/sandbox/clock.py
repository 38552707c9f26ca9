"""A clock the sandbox reads for expiry and visibility, which tests can move forward."""

from __future__ import annotations

import threading
import time


class Clock:
    """Wall-clock time plus an offset; `advance()` moves it without waiting."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return time.time() + self._offset

    @property
    def offset(self) -> float:
        """Seconds this clock runs ahead of wall-clock time."""
        with self._lock:
            return self._offset

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._offset += seconds
