"""The emulators as explicitly named targets, for replays, demos and tests.

`pyproject.toml` declares each in the `packetworker.targets` entry-point group, so
`get_target("bc-emulator", settings)` finds it without production code naming the sandbox.
Each is a real target talking HTTP to an emulator started in process and seeded with what
the samples reference; `close()` stops the emulator. They need no settings, and nothing
chooses them unless asked by name.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from packetworker.targets import Target, TargetInfo

if TYPE_CHECKING:
    from packetworker.settings import Settings


def _emulated(module: str) -> Callable[[Settings], Target]:
    """A factory that imports the emulator's wiring only when the target is built."""

    def build(settings: Settings) -> Target:
        return importlib.import_module(module).target_from_settings(settings)

    return build


bc_emulator = TargetInfo(
    _emulated("packetworker.sandbox.targets.bc"),
    summary="embedded Business Central emulator; set TARGET=bc to use a real tenant",
)
dataverse_emulator = TargetInfo(
    _emulated("packetworker.sandbox.targets.dataverse"),
    summary="embedded Dataverse emulator; set TARGET=dataverse to use a real environment",
)
crmaas_emulator = TargetInfo(
    _emulated("packetworker.sandbox.targets.crmaas"),
    summary="embedded CRM as a Service emulator; set TARGET=crmaas to use the real service",
)
dynamics_portal_emulator = TargetInfo(
    _emulated("packetworker.sandbox.targets.dynamics_portal"),
    summary="embedded Dynamics portal proxy emulator; set TARGET=dynamics-portal for the real one",
)
