"""`open_packet`: one entry point for reading XML or JSON packets as a lazy stream of records."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import BinaryIO

from .detect import MAX_PROLOG_BYTES, PacketFormat, detect_format
from .json_shape import JsonPacket
from .limits import CountingStream, Limits
from .model import PacketHeader, Record, Table
from .xml_reader import XmlPacket

Source = BinaryIO | str | os.PathLike[str]


class PacketReader:
    """A packet being read. `header` is known on open; iterate for records (once).

    Records of one table are contiguous; `tables` lists the tables met so far (all of them,
    empty ones included, once iteration has finished). Use as a context manager to close the
    file when `open_packet` opened it.
    """

    def __init__(
        self,
        impl: XmlPacket | JsonPacket,
        stream: CountingStream,
        *,
        format: PacketFormat,
        name: str | None,
        owned: BinaryIO | None,
    ) -> None:
        self._impl = impl
        self._stream = stream
        self._owned = owned
        self._started = False
        self.format: PacketFormat = format
        self.name = name
        self.header: PacketHeader = impl.header

    @property
    def tables(self) -> list[Table]:
        return self._impl.tables

    @property
    def bytes_read(self) -> int:
        """Bytes taken from the source so far (the whole body once iteration has finished)."""
        return self._stream.bytes_read

    def __iter__(self) -> Iterator[Record]:
        if self._started:
            raise RuntimeError("a PacketReader can be iterated only once")
        self._started = True
        return iter(self._impl)

    def close(self) -> None:
        if self._owned is not None:
            self._owned.close()
            self._owned = None

    def __enter__(self) -> PacketReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def source_name(source: Source, name: str | None) -> str | None:
    if name is not None:
        return name
    if isinstance(source, str | os.PathLike):
        return os.fspath(source)
    candidate = getattr(source, "name", None)
    return candidate if isinstance(candidate, str) else None


def open_packet(
    source: Source,
    *,
    format: PacketFormat | None = None,
    limits: Limits | None = None,
    name: str | None = None,
) -> PacketReader:
    """Open a packet from a binary file object or a path, sniffing the format unless given.

    Reads just enough to know the header; raises `PacketError` subclasses for bad input.
    """
    limits = limits or Limits()
    name = source_name(source, name)
    owned: BinaryIO | None = None
    if isinstance(source, str | os.PathLike):
        owned = source = open(source, "rb")  # noqa: SIM115 - closed by PacketReader.close
    try:
        stream = CountingStream(source, max_bytes=limits.max_body_bytes, name=name)
        fmt = format or detect_format(stream.peek(MAX_PROLOG_BYTES), name=name)
        if fmt == "xml":
            impl: XmlPacket | JsonPacket = XmlPacket(stream, limits=limits, name=name)
        else:
            impl = JsonPacket(stream, limits=limits, name=name)
    except BaseException:
        if owned is not None:
            owned.close()
        raise
    return PacketReader(impl, stream, format=fmt, name=name, owned=owned)
