"""Targets: the systems inbound records are applied to, behind one small interface.

`get_target(name, settings)` builds one by name: the systems `bc`, `dataverse`, `crmaas` and
`dynamics-portal` (each refuses, with `NotConfigured` naming the settings, when its settings
are missing: never a silent fallback), `plan` (dry run that writes the operations it would
perform) and `recording` (idempotent store used by tests and demos). `live_checks(name)` gives
a target's read-only checks for `packetworker check`, imported only when asked for.

Other packages add targets to the registry: by `register_target`, or by declaring an entry
point in the `packetworker.targets` group, loaded the first time its name is asked for. The
emulators are registered that way by `packetworker.sandbox` (`bc-emulator`,
`dataverse-emulator`, `crmaas-emulator`, `dynamics-portal-emulator`), so nothing here names
the sandbox.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from packetworker.targets import required
from packetworker.targets.base import (
    ApplyContext,
    Outcome,
    RecordOutcome,
    Target,
    TargetError,
)
from packetworker.targets.required import NotConfigured

if TYPE_CHECKING:
    from packetworker.check_results import Check
    from packetworker.settings import Settings

__all__ = [
    "ENTRY_POINT_GROUP",
    "ApplyContext",
    "NotConfigured",
    "Outcome",
    "RecordOutcome",
    "Target",
    "TargetError",
    "TargetInfo",
    "UnknownTarget",
    "check_target",
    "get_target",
    "known_targets",
    "live_checks",
    "register_target",
    "target_info",
]

ENTRY_POINT_GROUP = "packetworker.targets"
TargetFactory = Callable[["Settings"], Target]


@dataclass(frozen=True, slots=True)
class TargetInfo:
    """A registered target: how to build it, what it needs, one line saying what it is, and
    where its live checks are (`"module:function"`, imported only by `live_checks`)."""

    build: TargetFactory
    missing: Callable[[Settings], list[str]] | None = None  # settings it lacks, by env name
    summary: str = ""
    checks: str = ""


class UnknownTarget(NotConfigured):
    """No target is registered under the name."""


# Names a deployment may still set, and what to set instead.
RETIRED = {
    "auto": "TARGET=auto is gone (it fell back to an in-memory emulator): set TARGET=bc for "
    "Business Central, or TARGET=bc-emulator to use the embedded emulator on purpose",
}

_REGISTRY: dict[str, TargetInfo] = {}


def register_target(
    name: str,
    factory: TargetFactory | TargetInfo,
    *,
    missing: Callable[[Settings], list[str]] | None = None,
    summary: str = "",
) -> None:
    """Make `name` available to `get_target` (a `TargetInfo` also names its live checks)."""
    if not isinstance(factory, TargetInfo):
        factory = TargetInfo(factory, missing, summary)
    _REGISTRY[name] = factory


def _entry_point(name: str) -> TargetInfo | None:
    """The target an installed package declares under `name` in the entry-point group."""
    for point in entry_points(group=ENTRY_POINT_GROUP, name=name):
        try:
            loaded = point.load()
        except ImportError as exc:
            raise NotConfigured(
                f"target {name!r} is installed but cannot load ({exc}); "
                "install its extra, e.g. pip install 'packetworker[sandbox]'"
            ) from None
        info = loaded if isinstance(loaded, TargetInfo) else TargetInfo(loaded)
        _REGISTRY[name] = info
        return info
    return None


def known_targets() -> list[str]:
    """Every target name: registered here or declared by an installed package."""
    declared = {point.name for point in entry_points(group=ENTRY_POINT_GROUP)}
    return sorted(set(_REGISTRY) | declared)


def target_info(name: str) -> TargetInfo:
    """The registration of `name`; `NotConfigured` for a retired name, else `UnknownTarget`."""
    if name in RETIRED:
        raise NotConfigured(RETIRED[name])
    info = _REGISTRY.get(name) or _entry_point(name)
    if info is None:
        raise UnknownTarget(f"unknown target {name!r} (known: {', '.join(known_targets())})")
    return info


def check_target(name: str, settings: Settings) -> TargetInfo:
    """`name`'s registration, after checking that `settings` give it what it needs.

    Raises `NotConfigured` naming the missing settings (as `TARGET=<name> needs ...`), and
    for unknown or retired names; builds nothing, so it is what processes check at start-up.
    """
    info = target_info(name)
    if info.missing is not None:
        required.require(f"TARGET={name}", info.missing(settings))
    return info


def get_target(name: str, settings: Settings) -> Target:
    """Build the target called `name` (see `check_target` for the errors)."""
    return check_target(name, settings).build(settings)


def live_checks(name: str) -> Check | None:
    """The read-only checks target `name` declares for `packetworker check`, if any."""
    module, _, function = target_info(name).checks.partition(":")
    return getattr(importlib.import_module(module), function) if module else None


def _plan(settings: Settings) -> Target:
    from packetworker.targets.plan import PlanTarget

    return PlanTarget(output=settings.plan_output)


def _recording(settings: Settings) -> Target:
    from packetworker.targets.recording import RecordingTarget

    return RecordingTarget(path=settings.recording_path)


def _system(package: str, missing: Callable[[Settings], list[str]], summary: str) -> TargetInfo:
    """A system target of `packetworker.targets.<package>`. Its modules have heavier imports
    (OAuth, HTTP), so `target.py` (`target_from_settings(settings)`) is imported only when
    the target is built, and `checks.py` (`<package>_checks`) only when it is checked."""
    module = f"packetworker.targets.{package}"

    def factory(settings: Settings) -> Target:
        return importlib.import_module(f"{module}.target").target_from_settings(settings)

    return TargetInfo(factory, missing, summary, checks=f"{module}.checks:{package}_checks")


register_target("plan", _plan, summary="dry run: writes the operations it would perform")
register_target("recording", _recording, summary="a local store for tests and demos")
register_target("bc", _system("bc", required.missing_bc, "Business Central API v2.0"))
register_target(
    "dataverse",
    _system("dataverse", required.missing_dataverse, "Dynamics 365 / Dataverse Web API v9.2"),
)
register_target("crmaas", _system("crmaas", required.missing_crmaas, "CRM as a Service"))
register_target(
    "dynamics-portal",
    _system("dynamics_portal", required.missing_dynamics_portal, "the Dynamics portal proxy"),
)
