"""The target interface: where the records of an inbound packet are applied.

A target receives batches of records and answers with one outcome per record, in the same
order. It raises `TargetError` for a failure of the whole call; `transient=True` means
"try the batch again later" (timeouts, 429, 5xx), `False` means retrying will not help.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from packetworker.packets.model import PacketHeader, Record


class Outcome(StrEnum):
    APPLIED = "applied"
    UNCHANGED = "unchanged"  # already there: the idempotency key was found in the target
    SKIPPED = "skipped"  # no mapping, or a table the target ignores
    FAILED = "failed"


class TargetRefs(Protocol):
    """A durable map of a target's own keys to record ids in its system, shared by every
    worker process (the pipeline keeps it in the ledger). A target that cannot query its
    system remembers there what it created, so its look-ups survive restarts. `put` with
    "" forgets a key."""

    def get(self, keys: Sequence[str]) -> dict[str, str]: ...

    def put(self, refs: Mapping[str, str]) -> None: ...


@dataclass(frozen=True, slots=True)
class ApplyContext:
    """What a target knows about the packet a batch comes from. `refs`, when the pipeline
    gives one, is the target's durable reference map."""

    app_area: str
    packet_id: str
    user: str | None = None
    header: PacketHeader | None = None
    refs: TargetRefs | None = None


@dataclass(frozen=True, slots=True)
class RecordOutcome:
    table: str
    dms_rowid: str | None
    outcome: Outcome
    target_ref: str | None = None
    message: str | None = None


# Field names the vendor's apps use for a document number, for rows without a DMS_ROWID.
DOCUMENT_NUMBER_FIELDS = ("DocumentNo", "documentNo", "no", "No", "DocumentNumber", "Code", "code")


def record_key(record: Record) -> str | None:
    """The record's natural key: its DMS_ROWID, else its document number, else None."""
    if record.dms_rowid:
        return record.dms_rowid
    for name in DOCUMENT_NUMBER_FIELDS:
        value = record.fields.get(name)
        if value:
            return f"{name}={value}"
    return None


class TargetError(Exception):
    """A whole `apply` call failed. `transient` says whether a later retry may succeed."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.message = message
        self.transient = transient


class Target(ABC):
    """Applies records to one system. Implementations must be safe to call again with
    records they have already applied (answer `unchanged`), because delivery is
    at-least-once."""

    name: str = "target"
    # Documents span tables (every SalesHeader, then every SalesLine), so a target that maps
    # lines under their header needs all of a packet's records in one `apply` call. Packets
    # are bounded by the reader's body limit, which bounds that buffer too.
    whole_packet: bool = False

    @abstractmethod
    def apply(self, records: Sequence[Record], *, ctx: ApplyContext) -> list[RecordOutcome]:
        """Apply `records`; return one outcome per record, in the same order."""

    def close(self) -> None:  # noqa: B027 - most targets hold nothing to release
        """Release connections and files."""
