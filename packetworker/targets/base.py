"""The target interface: where the records of an inbound packet are applied.

A target receives batches of records and answers with one outcome per record, in the same
order. It raises `TargetError` for a failure of the whole call; `transient=True` means
"try the batch again later" (timeouts, 429, 5xx), `False` means retrying will not help.

A write whose outcome is unknown (a timeout, a reset or a 5xx after it was sent, a worker
killed mid-request) may still commit later. Targets record each write in a `WriteJournal`
(handed to them in `ApplyContext`; the pipeline's ledger implements it) before sending it,
and re-send one still in doubt only once the service's longest request time has passed and a
fresh look-up shows it absent; until then they raise `WriteInDoubt`.

`apply_group` applies several whole packets at once, so a target can share look-ups and
writes across them; its answer is per packet, and an error stops only the packet it names.
The system targets (BC, the CRMs) run both through one flow, `targets.skeleton`.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from packetworker.errors import PacketworkerError
from packetworker.packets.assembly import DocumentShape
from packetworker.packets.model import PacketHeader, Record


class Outcome(StrEnum):
    APPLIED = "applied"
    UNCHANGED = "unchanged"  # already there: the idempotency key was found in the target
    SKIPPED = "skipped"  # no mapping, or a table the target ignores
    FAILED = "failed"
    # Refused for a reason time fixes (its customer is blocked for review, or not there yet):
    # the pipeline holds the packet and retries it, instead of quarantining it.
    HELD = "held"


class TargetRefs(Protocol):
    """A durable map of a target's own keys to record ids in its system, shared by every
    worker process (the pipeline keeps it in the ledger). A target that cannot query its
    system remembers there what it created, so its look-ups survive restarts. `put` with
    "" forgets a key."""

    def get(self, keys: Sequence[str]) -> dict[str, str]: ...

    def put(self, refs: Mapping[str, str]) -> None: ...


@dataclass(frozen=True, slots=True)
class PendingWrite:
    """A write recorded before it is sent, kept until its outcome is known."""

    key: str  # names the write within its packet, e.g. "salesCreditMemos CM-7"
    operation: str  # e.g. "POST salesCreditMemos"
    keys: Mapping[str, str] = field(default_factory=dict)  # what a look-up finds it by
    sent_at: float = 0.0  # the journal's clock when it was (last) sent

    def to_json(self) -> str:
        return json.dumps(
            {"operation": self.operation, "keys": dict(self.keys), "sent_at": self.sent_at},
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, key: str, text: str) -> PendingWrite:
        data = json.loads(text)
        keys = {str(k): str(v) for k, v in (data.get("keys") or {}).items()}
        return cls(key, str(data["operation"]), keys, float(data["sent_at"]))


@runtime_checkable
class WriteJournal(Protocol):
    """Writes in doubt, per packet: recorded before they are sent, cleared once their outcome
    is known (a definitive answer, or a look-up that finds them). Both ledger backends
    implement it; `clock` is the time `sent_at` is measured in."""

    clock: Callable[[], float]

    def writes_in_doubt(self, packet_id: str) -> dict[str, PendingWrite]:
        """The packet's writes whose outcome is not known, by key."""
        ...

    def record_in_doubt(self, packet_id: str, writes: Sequence[PendingWrite]) -> None:
        """Record (or re-record, with a new `sent_at`) `writes` before they are sent."""
        ...

    def clear_in_doubt(self, packet_id: str, keys: Iterable[str]) -> None:
        """Forget writes whose outcome is known now."""
        ...


@dataclass(frozen=True, slots=True)
class ApplyContext:
    """What a target knows about the packet a batch comes from, where it records writes
    in doubt (None: not recorded, a timed-out write is only looked up before a re-send),
    and `refs`, when the pipeline gives one, the target's durable reference map. `company`
    is the pull list's `companyId` (dynamics-mobile.md §3.2.1), None when unknown (replay)."""

    app_area: str
    packet_id: str
    user: str | None = None
    header: PacketHeader | None = None
    journal: WriteJournal | None = None
    refs: TargetRefs | None = None
    company: str | None = None


@dataclass(frozen=True, slots=True)
class RecordOutcome:
    table: str
    dms_rowid: str | None
    outcome: Outcome
    target_ref: str | None = None
    message: str | None = None
    # HELD only: what the record waits for, as a wake key (`held_key`), e.g. "customer:c-100".
    waits_for: str | None = None


def held_key(kind: str, value: str) -> str:
    """The key a held record waits on, e.g. `held_key("customer", "C-100")` → "customer:c-100"
    (case-insensitive, as BC compares codes)."""
    return f"{kind}:{value.strip().lower()}"


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


class TargetError(PacketworkerError):
    """A whole `apply` call failed. `transient` says whether a later retry may succeed."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.message = message
        self.transient = transient


class WriteInDoubt(TargetError):
    """Writes were sent whose outcome is unknown, and the target cannot tell yet whether they
    committed: retry the packet in `retry_after` seconds (not a failed attempt)."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message, transient=True)
        self.retry_after = max(0.0, retry_after)

    def __reduce__(self):
        return (_rebuild_in_doubt, (self.message, self.retry_after))


def _rebuild_in_doubt(message: str, retry_after: float) -> WriteInDoubt:
    return WriteInDoubt(message, retry_after=retry_after)


def outcome_known(status: int | None) -> bool:
    """Whether an answer with HTTP `status` says for certain if a write ran: 2xx and 4xx do
    (429 and a refusal mean it did not run); 408, 5xx and no answer (None or 0) do not
    (business-central.md §5.3: a 504 or a timeout on a write is "outcome unknown")."""
    return status is not None and 0 < status < 500 and status != 408


class Target(ABC):
    """Applies records to one system. Implementations must be safe to call again with
    records they have already applied (answer `unchanged`), because delivery is
    at-least-once."""

    name: str = "target"
    # Documents span tables (every SalesHeader, then every SalesLine). A target that maps
    # lines under their header names its documents' shape: each `apply` call then gets whole
    # documents (assembled from the packet on disk, `packets.assembly`), and small packets
    # come in groups (`apply_group`). None: records stand alone, in plain batches.
    documents: DocumentShape | None = None

    @abstractmethod
    def apply(self, records: Sequence[Record], *, ctx: ApplyContext) -> list[RecordOutcome]:
        """Apply `records`; return one outcome per record, in the same order."""

    def apply_group(
        self, packets: Sequence[tuple[Sequence[Record], ApplyContext]]
    ) -> list[list[RecordOutcome] | Exception]:
        """Apply the records of several packets (each with its own context); answer per
        packet its outcomes, or the error that stopped that packet alone. A target that can
        share requests across packets overrides this; by default each is applied in turn."""
        results: list[list[RecordOutcome] | Exception] = []
        for records, ctx in packets:
            try:
                results.append(self.apply(records, ctx=ctx))
            except Exception as exc:
                results.append(exc)
        return results

    def created(self) -> list[Any]:
        """What this target created since it started (none by default), for `describe`."""
        return []

    def describe(self) -> Iterable[str]:
        """Lines for people about what this target created (`replay` prints them)."""
        return ()

    def close(self) -> None:  # noqa: B027 - most targets hold nothing to release
        """Release connections and files."""
