"""`PlanTarget`: a dry run. Writes the operations it would perform as JSON lines.

Useful for replaying packets against nothing, reviewing what a packet would do before
pointing the worker at a real system, and as the default target of a fresh install.
"""

from __future__ import annotations

import fcntl
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import orjson

from packetworker.packets.model import Record, Status
from packetworker.targets.base import (
    ApplyContext,
    Outcome,
    RecordOutcome,
    Target,
    record_key,
)

_OPS = {
    Status.INSERT: "create",
    Status.UPDATE: "update",
    Status.DELETE: "delete",
    Status.UPSERT: "upsert",
}


class PlanTarget(Target):
    """Appends one line per operation to `output` (a path, or `-` for stdout)."""

    name = "plan"

    def __init__(self, *, output: str | Path = "-") -> None:
        self.output = str(output)
        self._file: IO[bytes] | None = None
        self._lock = threading.Lock()  # worker threads share the target; flock is per process

    def _stream(self) -> IO[bytes]:
        if self.output == "-":
            return sys.stdout.buffer
        if self._file is None:
            path = Path(self.output)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = path.open("ab")
        return self._file

    def apply(self, records: Sequence[Record], *, ctx: ApplyContext) -> list[RecordOutcome]:
        lines: list[bytes] = []
        outcomes: list[RecordOutcome] = []
        for record in records:
            table, rowid = record.table.name, record.dms_rowid
            op = _OPS.get(record.status)
            if op is None:  # `read` records ask for data; there is nothing to write
                outcomes.append(RecordOutcome(table, rowid, Outcome.SKIPPED, None, "read"))
                continue
            key = record_key(record)
            line = {
                "op": op,
                "table": table,
                "key": key,
                "fields": record.fields,
                "packet_id": ctx.packet_id,
            }
            lines.append(orjson.dumps(line) + b"\n")
            outcomes.append(RecordOutcome(table, rowid, Outcome.APPLIED, key))
        if lines:
            with self._lock:
                stream = self._stream()
                # One write per batch under an exclusive lock: worker processes share the file.
                locked = stream is self._file
                if locked:
                    fcntl.flock(stream.fileno(), fcntl.LOCK_EX)
                try:
                    stream.write(b"".join(lines))
                    stream.flush()
                finally:
                    if locked:
                        fcntl.flock(stream.fileno(), fcntl.LOCK_UN)
        return outcomes

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
