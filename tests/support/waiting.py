"""Waiting on conditions (never fixed sleeps) and finding free loopback ports."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable


def wait_for(
    condition: Callable[[], object],
    *,
    timeout: float = 10.0,
    interval: float = 0.02,
    what: str = "",
) -> None:
    """Return as soon as `condition()` is truthy; fail loudly after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout}s waiting for {what or condition!r}")
        time.sleep(interval)  # polling interval of a condition wait, not a stand-in for one


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
