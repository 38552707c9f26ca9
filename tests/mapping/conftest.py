"""Helpers for mapping tests: records built in code, and the vendor's real packets."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from support.vendor import vendor_packet_path

from packetworker.packets.model import PacketHeader, Record, Status, Table
from packetworker.packets.reader import open_packet
from packetworker.targets.mapping import MappedItem, Mapper, load_mapping

HEADER = PacketHeader(salesmancode="user1")

# Real packets produced by the vendor's app (read in place, never copied into the repo).


def rec(table: str, status: Status = Status.INSERT, /, **fields: str) -> Record:
    """A record of `table` with `fields` (keyword names are the packet's field names)."""
    return Record(table=Table(table, {"name": table}), status=status, fields=dict(fields))


def run(name: str, records: list[Record], header: PacketHeader = HEADER) -> list[MappedItem]:
    """Map `records` with the shipped mapping `name`."""
    return list(Mapper(load_mapping(name)).map_packet(header, records))


@pytest.fixture
def vendor_packet() -> Callable[[str], tuple[PacketHeader, list[Record]]]:
    """Read one vendor packet by id with the project's own reader."""

    def read(packet_id: str) -> tuple[PacketHeader, list[Record]]:
        path = vendor_packet_path(packet_id)
        with open_packet(path) as reader:
            return reader.header, list(reader)

    return read
