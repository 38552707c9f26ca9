"""The sync-packet format: model, hardened streaming readers, writers, validation.

Pure: no network, no Redis, no Dramatiq. Readers take a binary file object (or a path) and
yield records lazily; writers take an iterable and write incrementally.
"""

from .detect import PacketFormat, detect_format
from .errors import Location, MalformedPacket, PacketError, PacketTooLarge, UnsafePacket
from .limits import Limits
from .model import PacketHeader, Record, Status, Table, parse_status
from .reader import PacketReader, open_packet
from .summary import PacketSummary, summarize
from .validate import ValidationIssue, validate_done_body, validate_packet, validate_pull_list
from .writer import convert, status_word, write_packet

__all__ = [
    "Limits",
    "Location",
    "MalformedPacket",
    "PacketError",
    "PacketFormat",
    "PacketHeader",
    "PacketReader",
    "PacketSummary",
    "PacketTooLarge",
    "Record",
    "Status",
    "Table",
    "UnsafePacket",
    "ValidationIssue",
    "convert",
    "detect_format",
    "open_packet",
    "parse_status",
    "status_word",
    "summarize",
    "validate_done_body",
    "validate_packet",
    "validate_pull_list",
    "write_packet",
]
