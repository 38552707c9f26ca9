"""Errors raised for packets that cannot be read. Each carries where and a plain sentence."""

from __future__ import annotations

from dataclasses import dataclass

from packetworker.errors import PacketworkerError


@dataclass(frozen=True, slots=True)
class Location:
    """Where a problem is: a file, and a line (XML) or a JSON path such as `$.tables[2]`."""

    file: str | None = None
    line: int | None = None
    path: str | None = None

    def __str__(self) -> str:
        where = self.file or "<packet>"
        if self.line is not None:
            where += f":{self.line}"
        if self.path:
            where += f" at {self.path}"
        return where


class PacketError(PacketworkerError):
    """A packet is malformed, unsafe or too large. Permanent: retrying will not help."""

    def __init__(self, message: str, location: Location | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.location = location or Location()

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


class MalformedPacket(PacketError):
    """Not a well-formed sync packet (syntax, wrong root, wrong types, bad encoding)."""


class UnsafePacket(PacketError):
    """Refused on sight: DTDs, entities, external references."""


class PacketTooLarge(PacketError):
    """Body, field or nesting beyond the configured limits."""


# Messages shared by the XML and JSON readers, so both formats say the same thing.
def unknown_status(raw: str | None) -> str:
    return (
        f"record status {raw!r} is unknown; expected insert, inserted, update, updated, "
        "delete, deleted, read, or no status"
    )


def field_too_long(limit: int) -> str:
    return f"a field value is longer than the {limit}-byte limit"


def duplicate_table(name: str) -> str:
    return f"table {name!r} appears more than once; all records of a table belong together"


def nested_field() -> str:
    return "an element is nested inside a field; fields hold text only"


def duplicate_field(name: str) -> str:
    return f"field <{name}> appears twice in one record"
