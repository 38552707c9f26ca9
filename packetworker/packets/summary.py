"""`summarize`: what a packet holds, counted while streaming through it once."""

from __future__ import annotations

from dataclasses import dataclass, field

from .limits import Limits
from .reader import Source, open_packet


@dataclass
class PacketSummary:
    """User, format, body size in bytes, and per table the record count by normalised status."""

    user: str
    format: str
    size: int
    tables: dict[str, dict[str, int]] = field(default_factory=dict)
    records: int = 0


def summarize(
    source: Source, *, limits: Limits | None = None, name: str | None = None
) -> PacketSummary:
    with open_packet(source, limits=limits, name=name) as reader:
        tables: dict[str, dict[str, int]] = {}
        total = 0
        current = None
        counts: dict[str, int] = {}
        for record in reader:
            if record.table is not current:
                current = record.table
                counts = tables.setdefault(current.name, {})
            key = record.status.value
            counts[key] = counts.get(key, 0) + 1
            total += 1
        return PacketSummary(
            user=reader.header.salesmancode,
            format=reader.format,
            size=reader.bytes_read,
            # In packet order, tables without records included.
            tables={table.name: tables.get(table.name, {}) for table in reader.tables},
            records=total,
        )
