"""`RecordingTarget`: an idempotent record store for tests, demos and end-to-end checks.

Each record is stored once under its idempotency key (table + DMS_ROWID, or table + a
document number for rows without one); applying the same key again answers `unchanged`,
as a real target does when its idempotency key (e.g. BC `externalDocumentNumber`) hits.

Two stores: in memory (one process) and a JSON-lines file shared by several worker
processes — check-then-append happens under an exclusive `fcntl.flock`, so two processes
applying the same key concurrently still store it once.
"""

from __future__ import annotations

import fcntl
import hashlib
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import orjson

from packetworker.packets.model import Record, Status
from packetworker.targets.base import (
    ApplyContext,
    Outcome,
    RecordOutcome,
    Target,
    TargetError,
    record_key,
)


class SimulatedCrash(RuntimeError):
    """Raised by the `crash_after` fault hook: stands in for a worker dying mid-batch."""


class RecordingStore(ABC):
    @abstractmethod
    def put_many(self, items: Sequence[dict[str, Any]]) -> list[bool]:
        """Store items whose `key` is new; return, per item, whether it was stored now."""

    @abstractmethod
    def entries(self) -> list[dict[str, Any]]:
        """Everything stored, in insertion order."""


class MemoryStore(RecordingStore):
    def __init__(self) -> None:
        self._items: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def put_many(self, items: Sequence[dict[str, Any]]) -> list[bool]:
        stored = []
        with self._lock:
            for item in items:
                new = item["key"] not in self._items
                if new:
                    self._items[item["key"]] = item
                stored.append(new)
        return stored

    def entries(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._items.values())


class JsonlStore(RecordingStore):
    """A JSON-lines file; keys seen are cached and only new lines are read under the lock."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.touch(exist_ok=True)
        self._keys: set[str] = set()
        self._offset = 0
        self._lock = threading.Lock()  # flock is per open file, not per thread

    def _catch_up(self, f: Any) -> None:
        f.seek(self._offset)
        for line in f:
            if line.endswith(b"\n"):
                self._keys.add(orjson.loads(line)["key"])
                self._offset += len(line)

    def put_many(self, items: Sequence[dict[str, Any]]) -> list[bool]:
        with self._lock, self.path.open("r+b") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            try:
                self._catch_up(f)
                stored, lines = [], []
                for item in items:
                    new = item["key"] not in self._keys
                    if new:
                        self._keys.add(item["key"])
                        lines.append(orjson.dumps(item) + b"\n")
                    stored.append(new)
                if lines:
                    f.seek(0, 2)
                    data = b"".join(lines)
                    f.write(data)
                    f.flush()
                    self._offset += len(data)
                return stored
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)

    def entries(self) -> list[dict[str, Any]]:
        with self.path.open("rb") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_SH)
            try:
                return [orjson.loads(line) for line in f if line.endswith(b"\n")]
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _content_key(record: Record) -> str:
    digest = hashlib.sha256(orjson.dumps(record.fields, option=orjson.OPT_SORT_KEYS))
    return "sha256=" + digest.hexdigest()[:32]


class RecordingTarget(Target):
    """Stores each record once per idempotency key.

    Fault hooks (tests): `fail_transient` raises a transient `TargetError` on that many
    calls; `fail_tables` answers `failed` for records of those tables; `crash_after` raises
    `SimulatedCrash` once, right after that many records have been stored.
    """

    name = "recording"

    def __init__(
        self,
        *,
        path: str | Path | None = None,
        store: RecordingStore | None = None,
        fail_transient: int = 0,
        fail_tables: Iterable[str] = (),
        crash_after: int | None = None,
    ) -> None:
        self.store = store or (JsonlStore(path) if path else MemoryStore())
        self.fail_transient = fail_transient
        self.fail_tables = set(fail_tables)
        self.crash_after = crash_after
        self.calls = 0
        self._stored = 0

    def apply(self, records: Sequence[Record], *, ctx: ApplyContext) -> list[RecordOutcome]:
        self.calls += 1
        if self.fail_transient > 0:
            self.fail_transient -= 1
            raise TargetError("recording target unavailable (fault hook)", transient=True)
        outcomes: list[RecordOutcome | None] = [None] * len(records)
        pending: list[tuple[int, dict[str, Any]]] = []
        for i, record in enumerate(records):
            table = record.table.name
            if table in self.fail_tables:
                outcomes[i] = RecordOutcome(
                    table, record.dms_rowid, Outcome.FAILED, None, f"table {table} refused"
                )
            elif record.status is Status.READ:
                outcomes[i] = RecordOutcome(table, record.dms_rowid, Outcome.SKIPPED, None, "read")
            else:
                key = f"{table}/{record_key(record) or _content_key(record)}"
                item = {
                    "key": key,
                    "table": table,
                    "dms_rowid": record.dms_rowid,
                    "status": str(record.status),
                    "fields": record.fields,
                    "packet_id": ctx.packet_id,
                    "app_area": ctx.app_area,
                }
                pending.append((i, item))
        # Without a crash hook, one store call per batch; with one, record by record so
        # the crash lands between two records exactly as a killed worker would.
        step = 1 if self.crash_after is not None else max(len(pending), 1)
        for start in range(0, len(pending), step):
            chunk = pending[start : start + step]
            stored = self.store.put_many([item for _, item in chunk])
            for (i, item), new in zip(chunk, stored, strict=True):
                outcome = Outcome.APPLIED if new else Outcome.UNCHANGED
                outcomes[i] = RecordOutcome(item["table"], item["dms_rowid"], outcome, item["key"])
                self._stored += 1
            if self.crash_after is not None and self._stored >= self.crash_after:
                self.crash_after = None
                raise SimulatedCrash(f"simulated crash after {self._stored} records")
        return [o for o in outcomes if o is not None]

    def entries(self) -> list[dict[str, Any]]:
        return self.store.entries()
