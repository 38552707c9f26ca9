"""What the sandbox remembers for tests to assert on."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DoneCall:
    """One done call: every id it named, and those whose receipt handle was not accepted."""

    packet_type: str
    format: str
    ids: tuple[str, ...]
    rejected_ids: tuple[str, ...]


@dataclass(frozen=True)
class Upload:
    """A pushed packet whose bytes reached storage through its presigned PUT."""

    user: str
    packet_unique_id: str
    packet_type: str
    body: bytes
    declared_size: int = 0
    sync_log_id: str = ""
