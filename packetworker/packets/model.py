"""The sync-packet model: a header, tables, and records with ordered fields.

A packet is `NavMobileSync` (salesmancode + other root attributes) → `table` (tablename +
other attributes) → `r` (status + fields). Readers yield `Record`s lazily, each pointing at
its `Table`, so a consumer never needs the whole packet in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Status(StrEnum):
    """Normalised record status. Real packets say `insert` or `inserted`, or nothing."""

    INSERT = "insert"
    UPDATE = "update"
    DELETE = "delete"
    READ = "read"
    UPSERT = "upsert"  # no status attribute: the receiver decides (the vendor's "no CRUD type")


_STATUS_ALIASES = {
    "insert": Status.INSERT,
    "inserted": Status.INSERT,
    "update": Status.UPDATE,
    "updated": Status.UPDATE,
    "delete": Status.DELETE,
    "deleted": Status.DELETE,
    "read": Status.READ,
    "upsert": Status.UPSERT,
}


def parse_status(raw: str | None) -> Status:
    """Map a raw `status` attribute to `Status`; raises `ValueError` for unknown values."""
    if raw is None:
        return Status.UPSERT
    try:
        return _STATUS_ALIASES[raw.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown record status {raw!r}") from None


@dataclass(frozen=True, slots=True)
class PacketHeader:
    """Root of a packet: the mobile user and any other root attributes, kept verbatim."""

    salesmancode: str
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Table:
    """One `<table>`: its name and its other attributes (real packets repeat it as `name`)."""

    name: str
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Record:
    """One `<r>`: normalised status, the raw status as written, and fields in document order."""

    table: Table
    status: Status
    fields: dict[str, str]
    raw_status: str | None = None

    @property
    def dms_rowid(self) -> str | None:
        """The record's Dynamics Mobile row id (a GUID), when it has one."""
        return self.fields.get("DMS_ROWID")

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.fields.get(name, default)
