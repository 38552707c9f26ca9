"""A recording target whose apply is held until the test lets it go.

Imported in each worker process (`dramatiq packetworker.pipeline.worker e2e.held_target`)
and registered as target `held`. An apply first creates `<recording_path>.applying`, so the
test knows a packet is in flight, then waits until `<recording_path>.release` exists.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from packetworker.packets.model import Record
from packetworker.settings import Settings
from packetworker.targets import ApplyContext, RecordOutcome, Target, register_target
from packetworker.targets.recording import RecordingTarget

#: Longest an apply waits for its release; beyond it the test has failed anyway.
HOLD_LIMIT = 120.0


class HeldTarget(RecordingTarget):
    def __init__(self, *, path: Path) -> None:
        super().__init__(path=path)
        self.applying, self.release = applying_flag(path), release_flag(path)

    def apply(self, records: Sequence[Record], *, ctx: ApplyContext) -> list[RecordOutcome]:
        self.applying.touch()
        deadline = time.monotonic() + HOLD_LIMIT
        while not self.release.exists():
            if time.monotonic() > deadline:
                raise TimeoutError("held apply was never released")
            time.sleep(0.02)
        return super().apply(records, ctx=ctx)


def applying_flag(recording_path: Path) -> Path:
    return recording_path.with_suffix(".applying")


def release_flag(recording_path: Path) -> Path:
    return recording_path.with_suffix(".release")


def _held(settings: Settings) -> Target:
    assert settings.recording_path is not None
    return HeldTarget(path=settings.recording_path)


register_target("held", _held)
