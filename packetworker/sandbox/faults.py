"""Scripted failures: error statuses, slow answers, trickling bodies and dropped connections.

Faults are consumed in the order they were added by the next requests whose path starts
with `path_prefix` (any request when None), on the portal API and the storage front alike.
A prefix with a `?` is matched against the path and query string, e.g.
`/mobile/erp/pull/DEMO?packetType=file` to fail only the file listing.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Literal


@dataclass
class Fault:
    kind: Literal["status", "slow", "refuse", "trickle"]
    remaining: int
    status: int = 0
    retry_after: str | None = None
    seconds: float = 0.0
    piece_bytes: int = 0
    path_prefix: str | None = None

    def matches(self, path: str, query: str = "") -> bool:
        if self.remaining < 1:
            return False
        if not self.path_prefix:
            return True
        target = f"{path}?{query}" if "?" in self.path_prefix else path
        return target.startswith(self.path_prefix)


class Faults:
    """Thread-safe list of pending faults."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(
        self,
        *,
        status: int,
        count: int = 1,
        retry_after: float | str | None = None,
        path_prefix: str | None = None,
    ) -> None:
        """Answer the next `count` requests with `status` (and `Retry-After` when given)."""
        after = None if retry_after is None else _header_value(retry_after)
        self._push(
            Fault("status", count, status=status, retry_after=after, path_prefix=path_prefix)
        )

    def slow(self, seconds: float, *, count: int = 1, path_prefix: str | None = None) -> None:
        """Delay the next `count` answers by `seconds` (then answer normally)."""
        self._push(Fault("slow", count, seconds=seconds, path_prefix=path_prefix))

    def trickle(
        self,
        seconds: float,
        *,
        piece_bytes: int = 1,
        count: int = 1,
        path_prefix: str | None = None,
    ) -> None:
        """Send the next `count` answers' bodies `piece_bytes` at a time, `seconds` apart:
        a connection that never goes quiet long enough for a read timeout, yet never ends."""
        if piece_bytes < 1:
            raise ValueError("piece_bytes must be at least 1")
        self._push(
            Fault(
                "trickle",
                count,
                seconds=seconds,
                piece_bytes=piece_bytes,
                path_prefix=path_prefix,
            )
        )

    def refuse(self, *, count: int = 1, path_prefix: str | None = None) -> None:
        """Close the connection of the next `count` requests without answering."""
        self._push(Fault("refuse", count, path_prefix=path_prefix))

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, path: str, query: str = "") -> Fault | None:
        """The fault that applies to this request, if any (consumes one of its count)."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(path, query):
                    fault.remaining -= 1
                    return fault
        return None

    def pending(self) -> list[Fault]:
        with self._lock:
            return [f for f in self._faults if f.remaining > 0]

    def _push(self, fault: Fault) -> None:
        if fault.remaining < 1:
            raise ValueError("count must be at least 1")
        with self._lock:
            self._faults.append(fault)


def _header_value(retry_after: float | str) -> str:
    if isinstance(retry_after, str):
        return retry_after
    return str(int(retry_after)) if float(retry_after).is_integer() else str(retry_after)
