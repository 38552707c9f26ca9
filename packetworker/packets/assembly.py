"""Documents assembled from a packet without holding it in memory.

A document spans tables: a `SalesHeader` record and the `SalesLine` records whose
`documentNo` names it. A packet lists its tables one after the other, so a header's lines
may come long before or after it. `assemble` turns the packet into a stream of documents,
each one contiguous: a parent followed by all its children, standalone records in their
source order, and children whose parent is not in the packet at the end (one by one), so
that whoever maps them can say so.

It reads the packet twice. The first pass stores the child records in a temporary SQLite
file (in `directory`, removed afterwards) keyed by (child table, join key); the second pass
yields every other record and, after each parent, its children taken from that file. Memory
holds one document at a time, whatever the size of the packet. Each record comes with its
position in the packet, which is stable for the same bytes.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import orjson

from packetworker.packets.model import Record, Status, Table

#: Child records written to the file per statement.
_CHUNK = 100
#: SQLite's page cache, in KiB.
_CACHE_KIB = 256

#: (position in the packet, record)
Positioned = tuple[int, Record]


@dataclass(frozen=True, slots=True)
class Join:
    """How the records of one child table join their parent: the value of the child's first
    `child_key` field present equals the value of the parent's first `parent_key` field."""

    parent: str
    parent_key: tuple[str, ...]
    child_key: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DocumentShape:
    """Which tables are children of which (child table → its `Join`), in the order a
    parent collects them. No joins: every record is a document of its own."""

    joins: dict[str, Join]

    def children_of(self, table: str) -> list[tuple[str, Join]]:
        return [(child, join) for child, join in self.joins.items() if join.parent == table]


def join_value(record: Record, names: Iterable[str]) -> str | None:
    """The value of the first of `names` present in `record`; None when absent or empty."""
    for name in names:
        if name in record.fields:
            value = record.fields[name]
            return value if value else None
    return None


def assemble(
    read: Callable[[], Iterator[Record]], shape: DocumentShape, directory: Path
) -> Iterator[list[Positioned]]:
    """The documents of the packet `read()` streams (called once per pass), each a list of
    (position, record): parent first, then its children in packet order per child table."""
    if not shape.joins:
        yield from ([pair] for pair in enumerate(read()))
        return
    with _ChildFile(directory) as children:
        children.fill(_children(enumerate(read()), shape))
        for position, record in enumerate(read()):
            name = record.table.name
            join = shape.joins.get(name)
            if join is not None and join_value(record, join.child_key) is not None:
                continue  # stored by the first pass; comes after its parent
            document = [(position, record)]
            for child, join in shape.children_of(name):
                key = join_value(record, join.parent_key)
                if key is not None:
                    document += children.take(child, key)
            yield document
        yield from ([orphan] for orphan in children.rest())


def _children(records: Iterator[Positioned], shape: DocumentShape) -> Iterator[tuple]:
    """Rows of the child file for the records of child tables that name their parent."""
    for position, record in records:
        join = shape.joins.get(record.table.name)
        if join is not None and (key := join_value(record, join.child_key)) is not None:
            yield record.table.name, key, position, _dump(record)


class _ChildFile:
    """A temporary SQLite file of child records, each taken once."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="documents.", suffix=".sqlite", dir=directory)
        os.close(fd)
        self.path = Path(name)
        self.db = sqlite3.connect(name, isolation_level=None)
        # A scratch file: nothing to recover after a crash, so no journal and no fsync.
        self.db.execute("PRAGMA journal_mode = OFF")
        self.db.execute("PRAGMA synchronous = OFF")
        # A small page cache: the file is written once and read by key, and SQLite's default
        # (2 MB) still let its memory grow by tens of MB over a 200 MB packet.
        self.db.execute(f"PRAGMA cache_size = -{_CACHE_KIB}")
        self.db.execute("CREATE TABLE child (tbl TEXT, key TEXT, pos INTEGER, body BLOB)")
        self._tables: dict[bytes, Table] = {}

    def __enter__(self) -> _ChildFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.db.close()
        self.path.unlink(missing_ok=True)

    def fill(self, rows: Iterator[tuple]) -> None:
        insert = "INSERT INTO child VALUES (?, ?, ?, ?)"
        self.db.execute("BEGIN")
        while chunk := list(islice(rows, _CHUNK)):
            self.db.executemany(insert, chunk)
        self.db.execute("COMMIT")
        # Indexed once filled: cheaper than keeping the index up to date on every insert.
        self.db.execute("CREATE INDEX child_key ON child (tbl, key, pos)")

    def take(self, table: str, key: str) -> list[Positioned]:
        """The children of `table` joined by `key`, in packet order; removed from the file
        (a second parent of the same key gets none, as the mapper gives it none)."""
        where = "FROM child WHERE tbl = ? AND key = ?"
        rows = self.db.execute(f"SELECT pos, body {where} ORDER BY pos", (table, key)).fetchall()
        if rows:
            self.db.execute(f"DELETE {where}", (table, key))
        return [(pos, self._load(body)) for pos, body in rows]

    def rest(self) -> Iterator[Positioned]:
        """The children no parent took, in packet order."""
        for pos, body in self.db.execute("SELECT pos, body FROM child ORDER BY pos"):
            yield pos, self._load(body)

    def _load(self, body: bytes) -> Record:
        table, status, raw_status, fields = orjson.loads(body)
        key = orjson.dumps(table)
        if (shared := self._tables.get(key)) is None:
            shared = self._tables[key] = Table(table[0], table[1])
        return Record(shared, Status(status), fields, raw_status)


def _dump(record: Record) -> bytes:
    table = [record.table.name, record.table.attributes]
    return orjson.dumps([table, str(record.status), record.raw_status, record.fields])


__all__ = ["DocumentShape", "Join", "Positioned", "assemble", "join_value"]
