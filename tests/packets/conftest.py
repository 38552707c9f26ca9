"""Fixtures for the packet-format tests: vendor packets, samples, and lazy hostile streams."""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from support.vendor import VENDOR_PACKETS, vendor_packet_paths

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "samples"
VENDOR = VENDOR_PACKETS


def vendor_packets() -> list[Path]:
    """The vendor's real packets, read in place (never copied into the repository)."""
    return vendor_packet_paths()


def inbound_samples() -> list[Path]:
    return sorted(SAMPLES.glob("*.xml"))


def all_valid_samples() -> list[Path]:
    return [
        *inbound_samples(),
        *sorted(SAMPLES.glob("*.json")),
        SAMPLES / "outbound/complete-push.xml",
    ]


class LazyStream(io.RawIOBase):
    """A read-only binary file fed by a generator of chunks: gigabytes without the memory.

    `handed_out` counts the bytes a reader actually pulled, so a test can prove the reader
    stopped early.
    """

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._pending = b""
        self.handed_out = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._pending:
            try:
                self._pending = next(self._chunks)
            except StopIteration:
                return 0
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        self.handed_out += size
        return size


def repeat(head: bytes, chunk: bytes, total: int, tail: bytes = b"") -> Iterator[bytes]:
    """`head`, then `chunk` repeated to about `total` bytes, then `tail` — generated lazily."""
    yield head
    for _ in range(total // len(chunk)):
        yield chunk
    yield tail


@pytest.fixture
def lazy_stream() -> type[LazyStream]:
    return LazyStream
