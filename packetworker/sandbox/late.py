"""Fault shared by the emulators: writes that commit late. An armed write request is
accepted and held inside the server, not yet run, so a look-up meanwhile does not see it;
when the test releases it, it runs and commits (and answers, if anyone still listens) — or
is dropped, as a request the service lost, and answered with the emulator's `dropped()`.

What a service does with a write whose caller gave up is documented by none of them; the
emulators take the strict reading: the write may still complete and commit
(business-central.md §5.3; crm.md C.4: "5xx/timeouts on POST may have executed").
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class LateCommits:
    """Holds the next `times` write requests until `release`; thread-safe. `dropped()`
    answers (or raises) for a held request released with `commit=False`."""

    def __init__(self, dropped: Callable[[], Any]) -> None:
        self._dropped = dropped
        self._armed = 0
        self._skip = 0  # writes still to let through before holding the armed ones
        self._held = 0  # requests waiting for `release`
        self._finished = 0  # held requests that ran (or were dropped) since the start
        self._released = 0  # how many held requests `release` let go so far
        self._commit = True
        self._state = threading.Condition()

    def arm(self, times: int = 1, *, after: int = 0) -> None:
        """Hold the next `times` write requests, once `after` more have run as usual."""
        with self._state:
            self._armed = times
            self._skip = after

    @property
    def held(self) -> int:
        with self._state:
            return self._held

    def run(self, call: Callable[[], T], *, timeout: float = 600.0) -> T:
        """`call()` now, or — when armed — once the test releases this request."""
        with self._state:
            armed = self._armed > 0 and self._skip == 0
            if self._armed > 0 and not armed:
                self._skip -= 1
        if not armed:
            return call()
        with self._state:
            self._armed -= 1
            self._held += 1
            ticket = self._released + self._held
            self._state.notify_all()
            # business-central.md §5.4, crm.md A.2: a request may run for minutes before it
            # answers; the caller's timeout does not stop it (business-central.md §5.3).
            self._state.wait_for(lambda: self._released >= ticket, timeout=timeout)
            commit = self._commit
        try:
            if not commit:
                return self._dropped()  # the service gave up on it: its own "timed out" answer
            return call()
        finally:
            with self._state:
                self._held -= 1
                self._finished += 1
                self._state.notify_all()

    def wait_held(self, count: int, timeout: float = 10.0) -> bool:
        """Wait until `count` requests are held."""
        with self._state:
            return self._state.wait_for(lambda: self._held >= count, timeout=timeout)

    def release(self, *, commit: bool = True, timeout: float = 10.0) -> int:
        """Let every held request go — run and commit it, or drop it (`commit=False`) — and
        wait until they have finished. Returns how many there were."""
        with self._state:
            count, target = self._held, self._finished + self._held
            self._commit = commit
            self._released += count
            self._state.notify_all()
            self._state.wait_for(lambda: self._finished >= target, timeout=timeout)
            return count

    def close(self) -> None:
        """Drop whatever is still held (the server is stopping)."""
        with self._state:
            self._armed = 0
        self.release(commit=False, timeout=1.0)
