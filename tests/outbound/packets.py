"""Reading pushed packets back in tests."""

from __future__ import annotations

import io

from packetworker.packets import open_packet


def tables_of(body: bytes) -> dict[str, list[dict[str, str]]]:
    """Table name → the fields of each record, in packet order."""
    tables: dict[str, list[dict[str, str]]] = {}
    with open_packet(io.BytesIO(body)) as reader:
        for record in reader:
            tables.setdefault(record.table.name, []).append(dict(record.fields))
        for table in reader.tables:
            tables.setdefault(table.name, [])
    return tables


def user_of(body: bytes) -> str:
    with open_packet(io.BytesIO(body)) as reader:
        for _ in reader:
            pass
        return reader.header.salesmancode


def statuses_of(body: bytes) -> set[str | None]:
    with open_packet(io.BytesIO(body)) as reader:
        return {record.raw_status for record in reader}
