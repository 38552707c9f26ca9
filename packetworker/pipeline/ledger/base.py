"""The ledger's vocabulary: packet states, the per-packet entry, and the `Ledger` ABC that
both backends implement (see the package docstring for what is kept and for how long)."""

from __future__ import annotations

import dataclasses
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from packetworker.pipeline.locks import Locks
from packetworker.targets.base import PendingWrite


class PacketState(StrEnum):
    LISTED = "listed"
    DOWNLOADING = "downloading"
    ARCHIVED = "archived"
    APPLYING = "applying"
    WAITING = "waiting"  # held: refused for a reason time fixes; retried, not acknowledged
    APPLIED = "applied"
    QUARANTINED = "quarantined"
    ACKNOWLEDGED = "acknowledged"


TERMINAL = frozenset({PacketState.APPLIED, PacketState.QUARANTINED, PacketState.ACKNOWLEDGED})
PENDING = frozenset(set(PacketState) - TERMINAL)
# Unfinished and meant to progress: a packet here without progress for a while is stale. A
# waiting (held) packet is retried on its own schedule instead (`Ledger.held`).
ACTIVE = frozenset(PENDING - {PacketState.WAITING})

# Fields a new listing refreshes on a known packet (the receipt handle changes per listing).
LISTING_FIELDS = (
    "list_type",
    "url",
    "user",
    "company",
    "operation",
    "app_code",
    "on_date",
    "receipt_handle",
)


@dataclass(slots=True)
class PacketEntry:
    packet_id: str
    app_area: str
    state: PacketState = PacketState.LISTED
    list_type: str = "packet"
    url: str | None = None
    user: str | None = None
    company: str | None = None
    operation: str | None = None
    app_code: str | None = None
    on_date: str | None = None
    receipt_handle: str | None = None
    attempts: int = 0
    sha256: str | None = None
    size: int | None = None
    archive_key: str | None = None
    listed_at: float = 0.0
    updated_at: float = 0.0
    last_error: str | None = None
    duplicate_of: str | None = None
    result: str | None = None  # applied | duplicate | quarantined
    source: str = "portal"  # portal | replay
    held_since: float | None = None  # when it was first held (waiting); the hold limit counts
    held_on: str | None = None  # held: what it waits for, wake keys separated by spaces
    documents: str | None = None  # document numbers the packet holds (comma-separated)

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL

    def to_fields(self) -> dict[str, str]:
        """String fields for a Redis hash; None becomes '' (meaning absent)."""
        return {
            f.name: "" if (v := getattr(self, f.name)) is None else str(v)
            for f in dataclasses.fields(self)
        }

    @classmethod
    def from_fields(cls, raw: Mapping[str, str]) -> PacketEntry:
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            value = raw.get(f.name)
            if value is None or value == "":
                continue
            if f.name in ("attempts", "size"):
                values[f.name] = int(value)
            elif f.name in ("listed_at", "updated_at", "held_since"):
                values[f.name] = float(value)
            elif f.name == "state":
                values[f.name] = PacketState(value)
            else:
                values[f.name] = value
        return cls(**values)


#: Events a packet's timeline keeps (the oldest are dropped beyond it: a packet retried many
#: times keeps its latest story).
MAX_EVENTS = 100


@dataclass(frozen=True, slots=True)
class PacketEvent:
    """One step of a packet's story: a state it reached (`listed`, `archived`, `applied`,
    `duplicate`, `quarantined`, `acknowledged`, ...), an `error` of an attempt, or a step
    that is no state (`downloaded`, `re-driven`). `at` is ledger time; `attempt` the run."""

    event: str
    at: float
    attempt: int = 0
    detail: str | None = None

    def to_json(self) -> str:
        data = {"event": self.event, "at": self.at, "attempt": self.attempt}
        if self.detail:
            data["detail"] = self.detail
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> PacketEvent:
        data = json.loads(text)
        return cls(
            event=str(data["event"]),
            at=float(data["at"]),
            attempt=int(data.get("attempt") or 0),
            detail=data.get("detail") or None,
        )


def clean_fields(fields: Mapping[str, Any]) -> dict[str, str]:
    """`fields` as hash strings (None becomes ''); unknown names are a TypeError."""
    unknown = set(fields) - {f.name for f in dataclasses.fields(PacketEntry)}
    if unknown:
        raise TypeError(f"unknown ledger fields: {sorted(unknown)}")
    return {k: "" if v is None else str(v) for k, v in fields.items()}


class Ledger(ABC):
    """Packet bookkeeping. Every method is safe to call from several processes at once."""

    locks: Locks
    retention: float
    clock: Callable[[], float]  # the ledger's time; tests pass a clock they move by hand

    @abstractmethod
    def get(self, packet_id: str) -> PacketEntry | None: ...

    @abstractmethod
    def record_listed(self, entry: PacketEntry) -> tuple[PacketEntry, bool]:
        """Create `entry` (state listed) if unknown, else refresh its listing fields only.
        Returns the stored entry and whether it was created."""

    def record_listed_many(self, entries: Sequence[PacketEntry]) -> list[tuple[PacketEntry, bool]]:
        """`record_listed` for each entry, in order (a backend may batch the round trips)."""
        return [self.record_listed(entry) for entry in entries]

    def get_many(self, packet_ids: Sequence[str]) -> dict[str, PacketEntry]:
        """The known ones among `packet_ids`, by id (a backend may batch the round trips)."""
        entries = {packet_id: self.get(packet_id) for packet_id in packet_ids}
        return {packet_id: entry for packet_id, entry in entries.items() if entry is not None}

    @abstractmethod
    def update(
        self,
        packet_id: str,
        *,
        state: PacketState | None = None,
        note: str | None = None,
        **fields: Any,
    ) -> PacketEntry:
        """Set fields (None clears) and move to `state`, with its indexes, atomically.
        Always bumps `updated_at`. A state change or a new `last_error` is a step of the
        packet's timeline (`note` its detail when no error is). Raises KeyError for an
        unknown packet."""

    @abstractmethod
    def claim_content(self, app_area: str, sha256: str, packet_id: str) -> str:
        """Claim `sha256` for `packet_id` unless already claimed; return the holder."""

    @abstractmethod
    def replace_claim(self, app_area: str, sha256: str, *, old: str, new: str) -> bool:
        """Hand the claim from `old` to `new` if `old` still holds it."""

    @abstractmethod
    def queue_ack(self, app_area: str, list_type: str, packet_id: str) -> None: ...

    @abstractmethod
    def pending_acks(self, app_area: str, list_type: str) -> list[str]: ...

    @abstractmethod
    def mark_acknowledged(self, app_area: str, list_type: str, packet_ids: Sequence[str]) -> None:
        """Remove from the ack queue and move known packets to `acknowledged`."""

    @abstractmethod
    def links(self, packet_id: str, keys: Iterable[str]) -> dict[str, str]:
        """The already-applied subset of `keys` (record keys) with their target refs."""

    @abstractmethod
    def add_links(self, packet_id: str, links: Mapping[str, str]) -> None: ...

    # --- writes in doubt (the `WriteJournal` targets record writes in) ---------------------

    @abstractmethod
    def writes_in_doubt(self, packet_id: str) -> dict[str, PendingWrite]:
        """The packet's writes whose outcome is not known yet, by key."""

    @abstractmethod
    def record_in_doubt(self, packet_id: str, writes: Sequence[PendingWrite]) -> None:
        """Record `writes` before they are sent (a key recorded again gets its new
        `sent_at`). Kept until cleared, or `retention` after the last record."""

    @abstractmethod
    def clear_in_doubt(self, packet_id: str, keys: Iterable[str]) -> None:
        """Forget the writes `keys` (their outcome is known now)."""

    @abstractmethod
    def target_refs(self, scope: str, keys: Sequence[str]) -> dict[str, str]:
        """Known ones among `keys` in a target's reference map `scope` (see `TargetRefs`)."""

    @abstractmethod
    def add_target_refs(self, scope: str, refs: Mapping[str, str]) -> None:
        """Remember `refs` (key → target record id; "" forgets a key). Never expire: they
        describe records that exist in the target, not packets."""

    @abstractmethod
    def ids(self, app_area: str, state: PacketState) -> list[str]:
        """Ids in `state`, least recently updated first."""

    @abstractmethod
    def stale(self, app_area: str, *, before: float) -> list[str]:
        """Ids in an `ACTIVE` state whose last update is older than `before`."""

    def held(self, app_area: str) -> list[PacketEntry]:
        """The waiting (held) packets, least recently updated first."""
        ids = self.ids(app_area, PacketState.WAITING)
        entries = self.get_many(ids)
        return [entries[i] for i in ids if i in entries]

    @abstractmethod
    def counts(self, app_area: str) -> dict[str, int]: ...

    @abstractmethod
    def oldest_pending(self, app_area: str) -> float | None:
        """`listed_at` of the oldest non-terminal packet."""

    @abstractmethod
    def quarantine(self, app_area: str) -> list[str]:
        """Quarantined ids (kept after their ack), oldest first."""

    @abstractmethod
    def app_areas(self) -> list[str]: ...

    # --- the operator's view: outcomes and timelines ------------------------------------

    @abstractmethod
    def result_counts(self, app_area: str) -> dict[str, int]:
        """Packets per `result` (applied, duplicate, quarantined...), acknowledged or not."""

    @abstractmethod
    def events(self, packet_id: str) -> list[PacketEvent]:
        """The packet's timeline, oldest first. State changes and errors are recorded by
        `update` itself (in the same atomic step); other steps by `add_events`. Kept as
        long as the packet's entry."""

    @abstractmethod
    def add_events(self, packet_id: str, events: Sequence[PacketEvent]) -> None:
        """Append steps that are no state change (`downloaded`, `re-driven`)."""

    @abstractmethod
    def note_poll(self, app_area: str, result: str) -> None:
        """Remember the latest poll of `app_area`: when, and what it found or why it failed."""

    @abstractmethod
    def last_poll(self, app_area: str) -> dict[str, Any] | None:
        """`{"at": ledger time, "result": text}` of the latest poll, or None."""

    @abstractmethod
    def all_links(self, packet_id: str) -> dict[str, str]:
        """Every record link of the packet (record key -> target ref)."""

    @abstractmethod
    def prune(self, app_area: str) -> int:
        """Drop index members of expired packets; returns how many."""

    def close(self) -> None:  # noqa: B027 - the memory backend holds nothing
        pass


@dataclass(frozen=True, slots=True)
class LedgerTargetRefs:
    """A target's reference map (`targets.base.TargetRefs`) kept in the ledger: shared by
    every worker process and surviving restarts."""

    ledger: Ledger
    scope: str  # the target's name

    def get(self, keys: Sequence[str]) -> dict[str, str]:
        return self.ledger.target_refs(self.scope, keys)

    def put(self, refs: Mapping[str, str]) -> None:
        self.ledger.add_target_refs(self.scope, refs)
