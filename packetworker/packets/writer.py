"""`write_packet` and `convert`: incremental writers for both formats."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import BinaryIO

from .detect import PacketFormat
from .json_shape import write_json
from .limits import Limits
from .model import PacketHeader, Record, Status, Table
from .reader import PacketReader, Source, open_packet
from .xml_writer import write_xml

# What the vendor's connector writes when a record has no raw status of its own.
VENDOR_STATUS = {
    Status.INSERT: "inserted",
    Status.UPDATE: "updated",
    Status.DELETE: "deleted",
    Status.READ: "read",
    Status.UPSERT: None,
}


def status_word(record: Record) -> str | None:
    """The `status` to write: the raw status as read (exact round trips), else the vendor word."""
    if record.raw_status is not None:
        return record.raw_status
    return VENDOR_STATUS[record.status]


def write_packet(
    sink: BinaryIO,
    header: PacketHeader,
    records: Iterable[Record | Table],
    *,
    format: PacketFormat = "xml",
) -> None:
    """Write a packet incrementally. Records must come grouped by table (ValueError if not).

    A `Table` in `records` opens that table without a record, so empty tables can be written.
    """
    if format == "xml":
        write_xml(sink, header, records, status_word=status_word)
    elif format == "json":
        write_json(sink, header, records, status_word=status_word)
    else:
        raise ValueError(f"unknown packet format {format!r}; expected 'xml' or 'json'")


def convert(
    source: Source, sink: BinaryIO, *, to: PacketFormat, limits: Limits | None = None
) -> None:
    """Read a packet in either format and write it in `to`, streaming record by record."""
    with open_packet(source, limits=limits) as reader:
        write_packet(sink, reader.header, _with_tables(reader), format=to)


def _with_tables(reader: PacketReader) -> Iterator[Record | Table]:
    """The reader's records, each table announced first so empty tables survive conversion."""
    announced = 0
    for record in reader:
        tables = reader.tables
        while announced < len(tables):
            yield tables[announced]
            announced += 1
        yield record
    yield from reader.tables[announced:]
