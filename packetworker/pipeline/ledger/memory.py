"""`MemoryLedger`: the Redis ledger's behaviour in one process (replay without Redis, tests)."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from packetworker.pipeline.ledger.base import (
    ACTIVE,
    LISTING_FIELDS,
    MAX_EVENTS,
    PENDING,
    Ledger,
    PacketEntry,
    PacketEvent,
    PacketState,
    clean_fields,
)
from packetworker.pipeline.locks import MemoryLocks
from packetworker.targets.base import PendingWrite


class MemoryLedger(Ledger):
    """The same behaviour in one process: replay without Redis, and unit tests."""

    def __init__(
        self, *, retention: float = 30 * 86400, clock: Callable[[], float] = time.time
    ) -> None:
        self.retention = retention
        self.clock = clock
        self.locks = MemoryLocks(clock=clock)
        self._mutex = threading.RLock()
        self._packets: dict[str, PacketEntry] = {}
        self._expires: dict[str, float] = {}
        self._links: dict[str, dict[str, str]] = {}
        self._target_refs: dict[str, dict[str, str]] = {}
        self._claims: dict[tuple[str, str], tuple[str, float]] = {}
        self._acks: dict[tuple[str, str], set[str]] = {}
        self._quarantine: dict[str, dict[str, float]] = {}
        self._doubts: dict[str, tuple[dict[str, PendingWrite], float]] = {}  # writes, expiry
        self._events: dict[str, list[PacketEvent]] = {}
        self._polls: dict[str, dict[str, Any]] = {}

    def _live(self, packet_id: str) -> PacketEntry | None:
        expires = self._expires.get(packet_id)
        if expires is not None and expires <= self.clock():
            self._packets.pop(packet_id, None)
            self._links.pop(packet_id, None)
            self._events.pop(packet_id, None)
            self._expires.pop(packet_id, None)
        return self._packets.get(packet_id)

    def get(self, packet_id: str) -> PacketEntry | None:
        with self._mutex:
            entry = self._live(packet_id)
            return dataclasses.replace(entry) if entry else None

    def record_listed(self, entry: PacketEntry) -> tuple[PacketEntry, bool]:
        with self._mutex:
            stored = self._live(entry.packet_id)
            if stored is not None:
                for name in LISTING_FIELDS:
                    if (value := getattr(entry, name)) is not None:
                        setattr(stored, name, value)
                return dataclasses.replace(stored), False
            now = self.clock()
            stored = dataclasses.replace(
                entry, state=PacketState.LISTED, listed_at=now, updated_at=now
            )
            self._packets[entry.packet_id] = stored
            self._events[entry.packet_id] = [PacketEvent("listed", now)]
            return dataclasses.replace(stored), True

    def update(
        self,
        packet_id: str,
        *,
        state: PacketState | None = None,
        note: str | None = None,
        **fields: Any,
    ) -> PacketEntry:
        clean_fields(fields)
        with self._mutex:
            stored = self._live(packet_id)
            if stored is None:
                raise KeyError(packet_id)
            old_state = stored.state
            for name, value in fields.items():
                setattr(stored, name, None if value == "" else value)
            if state is not None:
                stored.state = PacketState(state)
            stored.updated_at = self.clock()
            error = fields.get("last_error") or None
            if stored.state != old_state or error:
                name = str(stored.state) if stored.state != old_state else "error"
                if name == "applied" and stored.result == "duplicate":
                    name = "duplicate"
                step = PacketEvent(name, stored.updated_at, stored.attempts, error or note)
                self.add_events(packet_id, [step])
            quarantine = self._quarantine.setdefault(stored.app_area, {})
            if stored.state is PacketState.QUARANTINED:
                quarantine[packet_id] = stored.updated_at
            elif stored.state is not PacketState.ACKNOWLEDGED:
                quarantine.pop(packet_id, None)
            if stored.terminal and stored.result != "quarantined":
                self._expires[packet_id] = stored.updated_at + self.retention
            else:
                self._expires.pop(packet_id, None)
            return dataclasses.replace(stored)

    def claim_content(self, app_area: str, sha256: str, packet_id: str) -> str:
        with self._mutex:
            claim = self._claims.get((app_area, sha256))
            if claim is not None and claim[1] > self.clock():
                return claim[0]
            self._claims[(app_area, sha256)] = (packet_id, self.clock() + self.retention)
            return packet_id

    def replace_claim(self, app_area: str, sha256: str, *, old: str, new: str) -> bool:
        with self._mutex:
            if self.claim_content(app_area, sha256, new) == new:
                return True
            if self._claims[(app_area, sha256)][0] != old:
                return False
            self._claims[(app_area, sha256)] = (new, self.clock() + self.retention)
            return True

    def queue_ack(self, app_area: str, list_type: str, packet_id: str) -> None:
        with self._mutex:
            self._acks.setdefault((app_area, list_type), set()).add(packet_id)

    def pending_acks(self, app_area: str, list_type: str) -> list[str]:
        with self._mutex:
            return sorted(self._acks.get((app_area, list_type), ()))

    def mark_acknowledged(self, app_area: str, list_type: str, packet_ids: Sequence[str]) -> None:
        with self._mutex:
            for packet_id in packet_ids:
                entry = self._live(packet_id)
                if entry is not None and entry.terminal:
                    self.update(packet_id, state=PacketState.ACKNOWLEDGED)
            self._acks.get((app_area, list_type), set()).difference_update(packet_ids)

    def links(self, packet_id: str, keys: Iterable[str]) -> dict[str, str]:
        with self._mutex:
            self._live(packet_id)
            known = self._links.get(packet_id, {})
            return {k: known[k] for k in keys if k in known}

    def add_links(self, packet_id: str, links: Mapping[str, str]) -> None:
        with self._mutex:
            self._links.setdefault(packet_id, {}).update(links)

    def writes_in_doubt(self, packet_id: str) -> dict[str, PendingWrite]:
        with self._mutex:
            writes, expires = self._doubts.get(packet_id, ({}, 0.0))
            return dict(writes) if expires > self.clock() else {}

    def record_in_doubt(self, packet_id: str, writes: Sequence[PendingWrite]) -> None:
        if not writes:
            return
        with self._mutex:
            known = self.writes_in_doubt(packet_id)
            known.update((w.key, w) for w in writes)
            self._doubts[packet_id] = (known, self.clock() + self.retention)

    def clear_in_doubt(self, packet_id: str, keys: Iterable[str]) -> None:
        with self._mutex:
            writes, _ = self._doubts.get(packet_id, ({}, 0.0))
            for key in keys:
                writes.pop(key, None)
            if not writes:
                self._doubts.pop(packet_id, None)

    def target_refs(self, scope: str, keys: Sequence[str]) -> dict[str, str]:
        with self._mutex:
            known = self._target_refs.get(scope, {})
            return {k: known[k] for k in keys if known.get(k)}

    def add_target_refs(self, scope: str, refs: Mapping[str, str]) -> None:
        with self._mutex:
            self._target_refs.setdefault(scope, {}).update(refs)

    def _in_area(self, app_area: str) -> list[PacketEntry]:
        for packet_id in list(self._packets):
            self._live(packet_id)
        return [e for e in self._packets.values() if e.app_area == app_area]

    def ids(self, app_area: str, state: PacketState) -> list[str]:
        with self._mutex:
            entries = [e for e in self._in_area(app_area) if e.state == state]
            return [e.packet_id for e in sorted(entries, key=lambda e: e.updated_at)]

    def stale(self, app_area: str, *, before: float) -> list[str]:
        with self._mutex:
            return [
                e.packet_id
                for e in self._in_area(app_area)
                if e.state in ACTIVE and e.updated_at < before
            ]

    def counts(self, app_area: str) -> dict[str, int]:
        with self._mutex:
            counts = {str(s): 0 for s in PacketState}
            for e in self._in_area(app_area):
                counts[e.state] += 1
            return counts

    def oldest_pending(self, app_area: str) -> float | None:
        with self._mutex:
            pending = [e.listed_at for e in self._in_area(app_area) if e.state in PENDING]
            return min(pending, default=None)

    def quarantine(self, app_area: str) -> list[str]:
        with self._mutex:
            items = self._quarantine.get(app_area, {})
            return sorted(items, key=items.__getitem__)

    def app_areas(self) -> list[str]:
        with self._mutex:
            return sorted({e.app_area for e in self._packets.values()})

    def result_counts(self, app_area: str) -> dict[str, int]:
        with self._mutex:
            counts: dict[str, int] = {}
            for e in self._in_area(app_area):
                if e.result:
                    counts[e.result] = counts.get(e.result, 0) + 1
            return counts

    def events(self, packet_id: str) -> list[PacketEvent]:
        with self._mutex:
            self._live(packet_id)
            return list(self._events.get(packet_id, ()))

    def add_events(self, packet_id: str, events: Sequence[PacketEvent]) -> None:
        with self._mutex:
            if self._live(packet_id) is not None:
                kept = [*self._events.get(packet_id, ()), *events]
                self._events[packet_id] = kept[-MAX_EVENTS:]

    def note_poll(self, app_area: str, result: str) -> None:
        with self._mutex:
            self._polls[app_area] = {"at": self.clock(), "result": result[:500]}

    def last_poll(self, app_area: str) -> dict[str, Any] | None:
        with self._mutex:
            poll = self._polls.get(app_area)
            return dict(poll) if poll else None

    def all_links(self, packet_id: str) -> dict[str, str]:
        with self._mutex:
            self._live(packet_id)
            return dict(self._links.get(packet_id, {}))

    def prune(self, app_area: str) -> int:
        with self._mutex:
            before = len(self._packets)
            self._in_area(app_area)
            return before - len(self._packets)
