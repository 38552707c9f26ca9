"""An emulator target's lifetime: an in-process emulator the target owns.

`start_emulated` starts the emulator (any context manager: it serves while entered), hands
it and a `stop` callback to `connect`, which seeds it and builds the target, and stops it
again if that fails. The target calls `stop` from `close()`, so the emulator lives exactly
as long as the target.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TypeVar

E = TypeVar("E", bound=AbstractContextManager)
T = TypeVar("T")


def start_emulated(emulator: E, connect: Callable[[E, Callable[[], None]], T]) -> T:
    """`connect(emulator, stop)` run against the started `emulator`."""
    emulator.__enter__()

    def stop() -> None:
        emulator.__exit__(None, None, None)

    try:
        return connect(emulator, stop)
    except BaseException:
        stop()
        raise
