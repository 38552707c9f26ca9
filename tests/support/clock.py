"""A clock tests move by hand: time is data in a test, never a sleep."""

from __future__ import annotations


class ManualClock:
    """Callable like `time.time`; `advance` (or setting `now`) moves it."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
