"""Limits for hostile input, and a stream wrapper that enforces the body limit as it reads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

from .errors import Location, PacketTooLarge


@dataclass(frozen=True, slots=True)
class Limits:
    """How much a reader accepts. Defaults match `Settings.max_packet_bytes/max_field_bytes`."""

    max_body_bytes: int = 512 * 1024 * 1024
    max_field_bytes: int = 8 * 1024 * 1024

    @classmethod
    def from_settings(cls, settings: object) -> Limits:
        """Limits from a `Settings` object (kept duck-typed so packets/ stays import-light)."""
        return cls(
            max_body_bytes=settings.max_packet_bytes,  # type: ignore[attr-defined]
            max_field_bytes=settings.max_field_bytes,  # type: ignore[attr-defined]
        )


def over_field_limit(value: str, limit: int) -> bool:
    """Whether `value` is longer than `limit` bytes in UTF-8 (the cheap test first: a str of
    n characters is at most 4n bytes, so most values are never encoded)."""
    return len(value) * 4 > limit and len(value.encode("utf-8")) > limit


class CountingStream:
    """A read-only binary stream that counts bytes and refuses to read past `max_bytes`.

    Counting happens on the way in, so an oversize body is stopped after `max_bytes + 1`
    bytes however the parser reads, and nothing beyond that is ever buffered.
    `peek(n)` lets format sniffing and the prolog check look ahead without losing bytes.
    """

    def __init__(self, raw: BinaryIO, *, max_bytes: int, name: str | None = None) -> None:
        self._raw = raw
        self._max = max_bytes
        self._name = name
        self._buffer = b""
        self.bytes_read = 0  # bytes taken from the underlying stream
        self.eof = False
        self.tail = b""  # the last bytes read, to tell a truncated body from a malformed one

    def _pull(self, size: int) -> bytes:
        allowed = self._max + 1 - self.bytes_read
        data = self._raw.read(max(0, min(size, allowed)) if size >= 0 else allowed)
        if not data and size != 0:
            self.eof = True
        self.bytes_read += len(data)
        if data:
            self.tail = (self.tail + data)[-64:]
        if self.bytes_read > self._max:
            raise PacketTooLarge(
                f"the packet is larger than the {self._max}-byte limit",
                Location(file=self._name),
            )
        return data

    def peek(self, size: int) -> bytes:
        """Up to `size` bytes from the current position, without consuming them."""
        while len(self._buffer) < size and not self.eof:
            self._buffer += self._pull(size - len(self._buffer))
        return self._buffer[:size]

    def read(self, size: int = -1) -> bytes:
        if self._buffer:
            if size < 0 or size >= len(self._buffer):
                data, self._buffer = self._buffer, b""
                if size < 0:
                    data += self.read()
                return data
            data, self._buffer = self._buffer[:size], self._buffer[size:]
            return data
        if size < 0:
            chunks = []
            while chunk := self._pull(1 << 20):
                chunks.append(chunk)
            return b"".join(chunks)
        return self._pull(size)

    @property
    def at_end(self) -> bool:
        """True once the underlying stream has reported end of file and the buffer is empty."""
        return self.eof and not self._buffer
