"""A recording target with a bug: records with a `Poison` field crash it until it is fixed.

Imported in each worker process (`dramatiq packetworker.pipeline.worker e2e.poison_target`)
and registered as target `poison`. "Fixed" means a file `<recording_path>.fixed` exists,
which stands in for deploying the fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from packetworker.packets.model import Record
from packetworker.settings import Settings
from packetworker.targets import ApplyContext, RecordOutcome, Target, register_target
from packetworker.targets.recording import RecordingTarget


class PoisonedTarget(RecordingTarget):
    def __init__(self, *, path: Path) -> None:
        super().__init__(path=path)
        self.fixed = fixed_flag(path)

    def apply(self, records: Sequence[Record], *, ctx: ApplyContext) -> list[RecordOutcome]:
        if not self.fixed.exists() and any("Poison" in r.fields for r in records):
            raise RuntimeError("target bug: cannot handle a Poison field")
        return super().apply(records, ctx=ctx)


def fixed_flag(recording_path: Path) -> Path:
    return recording_path.with_suffix(".fixed")


def _poisoned(settings: Settings) -> Target:
    assert settings.recording_path is not None
    return PoisonedTarget(path=settings.recording_path)


register_target("poison", _poisoned)
