"""The rows a preflight check reports, and the helpers every check writes them with.

A check is a plain function `(settings) -> Iterable[CheckResult]`. This module imports nothing
of `targets/` or `preflight.py`, so a target's own checks (`targets/*/checks.py`) and the
preflight that runs them both build on it without importing each other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from packetworker.settings import Settings

Status = Literal["ok", "fail", "skip"]

#: A preflight should answer in seconds: fewer retries and a shorter timeout than the worker.
PROBE_TIMEOUT = 10.0


@dataclass(frozen=True)
class CheckResult:
    """One row of the report: `part` checked, its status, and what was found or what to do."""

    part: str
    status: Status
    detail: str

    @property
    def failed(self) -> bool:
        return self.status == "fail"


Check = Callable[["Settings"], Iterable[CheckResult]]


def ok(part: str, detail: str) -> CheckResult:
    return CheckResult(part, "ok", detail)


def fail(part: str, detail: str) -> CheckResult:
    return CheckResult(part, "fail", detail)


def skip(part: str, detail: str) -> CheckResult:
    return CheckResult(part, "skip", detail)


def describe_error(exc: BaseException) -> str:
    """An exception as one line (type and message), for a row's detail."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."
