"""Helpers of the CRM client tests (kept out of conftest.py so tests can import them)."""

from __future__ import annotations

import threading

from packetworker.sandbox.dataverse import DataverseEmulator
from packetworker.targets.dataverse import DataverseAuth, DataverseClient


class FakeTime:
    """A monotonic clock that only moves when someone sleeps; sleeps are recorded."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def clock(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds


def make_dataverse_client(emulator: DataverseEmulator, fake_time: FakeTime, **options):
    auth = DataverseAuth(
        environment_url=emulator.url,
        tenant=emulator.tenant,
        client_id=options.pop("client_id", "app-id"),
        client_secret=options.pop("client_secret", "s3cr3t-value"),
        token_url=emulator.token_url,
    )
    options.setdefault("backoff_base", 0.5)
    return DataverseClient(
        emulator.url, auth=auth, sleep=fake_time.sleep, clock=fake_time.clock, **options
    )
