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
VENDOR_RETURN_ORDER = "438a12ad-d3cf-43e3-aa5e-f6dbea35224a"
VENDOR_VISIT_START = "5e9c9c7d-7802-462e-89e9-862f604d09ef"
VENDOR_VISIT_END = "4418ef1a-340a-4aa1-864c-48e94fc1ee88"
VENDOR_SERIES_UPDATE = "5bb216a7-977c-4a2f-95d7-ee20e09b4f21"


def rec(table: str, status: Status = Status.INSERT, /, **fields: str) -> Record:
    """A record of `table` with `fields` (keyword names are the packet's field names)."""
    return Record(table=Table(table, {"name": table}), status=status, fields=dict(fields))


def run(name: str, records: list[Record], header: PacketHeader = HEADER) -> list[MappedItem]:
    """Map `records` with the shipped mapping `name`."""
    return list(Mapper(load_mapping(name)).map_packet(header, records))


MapVendorPacket = Callable[[str, str], list[MappedItem]]


@pytest.fixture
def map_vendor_packet() -> MapVendorPacket:
    """Map one vendor packet, read by id with the project's own reader, with a shipped mapping."""

    def map_packet(mapping: str, packet_id: str) -> list[MappedItem]:
        with open_packet(vendor_packet_path(packet_id)) as reader:
            return run(mapping, list(reader), reader.header)

    return map_packet
