"""Targets: the systems inbound records are applied to, behind one small interface.

`get_target(name, settings)` builds one by name: `plan` (dry run that writes the operations it
would perform), `recording` (idempotent store used by tests and demos), and the systems `bc`,
`dataverse`, `crmaas`, `dynamics-portal`, and `auto` (a real system when its credentials are
configured, else an embedded emulator).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from packetworker.targets.base import (
    ApplyContext,
    Outcome,
    RecordOutcome,
    Target,
    TargetError,
)

if TYPE_CHECKING:
    from packetworker.settings import Settings

__all__ = [
    "ApplyContext",
    "Outcome",
    "RecordOutcome",
    "Target",
    "TargetError",
    "get_target",
    "register_target",
]

TargetFactory = Callable[["Settings"], Target]
_REGISTRY: dict[str, TargetFactory] = {}


def register_target(name: str, factory: TargetFactory) -> None:
    """Make `name` available to `get_target` (system packages register themselves)."""
    _REGISTRY[name] = factory


def _plan(settings: Settings) -> Target:
    from packetworker.targets.plan import PlanTarget

    return PlanTarget(output=settings.plan_output)


def _recording(settings: Settings) -> Target:
    from packetworker.targets.recording import RecordingTarget

    return RecordingTarget(path=settings.recording_path)


register_target("plan", _plan)
register_target("recording", _recording)

# System targets live in sub-packages with heavier imports (OAuth, emulators); each exposes a
# `target_from_settings(settings)` factory, imported only when that target is asked for.
_SYSTEMS = {
    "auto": "packetworker.targets.embedded",
    "bc": "packetworker.targets.bc.target",
    "dataverse": "packetworker.targets.dataverse.target",
    "crmaas": "packetworker.targets.crmaas.target",
    "dynamics-portal": "packetworker.targets.dynamics_portal.target",
}


def _system(module: str) -> TargetFactory:
    def factory(settings: Settings) -> Target:
        return importlib.import_module(module).target_from_settings(settings)

    return factory


for _name, _module in _SYSTEMS.items():
    register_target(_name, _system(_module))


def get_target(name: str, settings: Settings) -> Target:
    """Build the target called `name`; raises `ValueError` listing the known names."""
    try:
        factory = _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise ValueError(f"unknown target {name!r} (known: {known})") from None
    return factory(settings)
