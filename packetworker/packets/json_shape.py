"""The JSON packet shape, in one place: reader (streaming and small-body) and writer.

The vendor's JSON layout is not public (docs §4.4), so ours is a direct mirror of the XML,
also described by `schemas/navmobilesync.schema.json`::

    {"salesmancode": "u1", "attributes": {"k": "v"},
     "tables": [{"tablename": "T", "attributes": {"name": "T"},
                 "records": [{"status": "insert", "fields": {"no": "SO-1"}}]}]}

Field values are strings, exactly the XML text. Header keys come before "tables" and a
table's keys before "records", so a stream reader knows the header and the table before the
first record. Large bodies are read with ijson (flat memory); bodies under
`SMALL_BODY_BYTES` are loaded with orjson, which is faster.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any, BinaryIO

import ijson
import orjson

from .errors import (
    Location,
    MalformedPacket,
    PacketError,
    PacketTooLarge,
    duplicate_field,
    duplicate_table,
    field_too_long,
    unknown_status,
)
from .limits import CountingStream, Limits, over_field_limit
from .model import PacketHeader, Record, Status, Table, parse_status

SMALL_BODY_BYTES = 4 * 1024 * 1024

SALESMANCODE = "salesmancode"
ATTRIBUTES = "attributes"
TABLES = "tables"
TABLENAME = "tablename"
RECORDS = "records"
STATUS = "status"
FIELDS = "fields"

_HEADER_KEYS = (SALESMANCODE, ATTRIBUTES)
_TABLE_KEYS = (TABLENAME, ATTRIBUTES)
_KINDS = {
    "start_map": "an object",
    "start_array": "an array",
    "string": "a string",
    "number": "a number",
    "boolean": "a boolean",
    "null": "null",
}
_IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")


def key_path(path: str, key: str) -> str:
    """`$.tables[0]` + `fields` → `$.tables[0].fields`; other keys are quoted: `$["a b"]`."""
    return (
        f"{path}.{key}" if _IDENTIFIER.fullmatch(key) else f"{path}[{orjson.dumps(key).decode()}]"
    )


class _Events:
    """Pulls (event, value) pairs and remembers the JSON path for messages."""

    __slots__ = ("_it", "_name", "path")

    def __init__(self, events: Iterator[tuple[str, Any]], name: str | None) -> None:
        self._it = events
        self._name = name
        self.path = "$"

    def next(self) -> tuple[str, Any]:
        return next(self._it)

    def error(self, message: str, path: str | None = None) -> MalformedPacket:
        return MalformedPacket(message, Location(file=self._name, path=path or self.path))

    def objects(self, path: str, what: str) -> Iterator[str]:
        """The path of each object in the array just opened at `path`, as the caller reaches
        it; an item that is not an object is an error naming `what`."""
        index = 0
        while True:
            event, _ = self.next()
            if event == "end_array":
                return
            item = f"{path}[{index}]"
            if event != "start_map":
                raise self.error(f"{what} must be an object, not {_KINDS.get(event, event)}", item)
            yield item
            index += 1

    def keys(self, path: str) -> Iterator[tuple[str, str]]:
        """(key, its path) for each key of the object just opened at `path`; the caller reads
        the value. A key that appears twice is an error."""
        seen: set[str] = set()
        while True:
            event, key = self.next()
            if event == "end_map":
                return
            kpath = key_path(path, key)
            if key in seen:
                raise self.error(f"key {key!r} appears twice", kpath)
            seen.add(key)
            yield key, kpath


class JsonPacket:
    """Reads one JSON packet. The header is read on construction; records on iteration."""

    def __init__(self, stream: CountingStream, *, limits: Limits, name: str | None) -> None:
        self._stream = stream
        self._limits = limits
        self._name = name
        self.tables: list[Table] = []
        self._statuses: dict[str | None, Status] = {}
        self._path: str | None = None
        self._keys = -1
        head = stream.peek(SMALL_BODY_BYTES + 1)
        if len(head) <= SMALL_BODY_BYTES:
            body = stream.read()
            self._walk = self._walk_small(body)
        else:
            self._walk = self._walk_events(self._stream_events(stream))
        first = next(self._walk)
        assert isinstance(first, PacketHeader)
        self.header = first

    def __iter__(self) -> Iterator[Record]:
        return self._walk  # type: ignore[return-value]  # the header was taken on open

    # -- sources of events ----------------------------------------------------------------
    def _stream_events(self, source: BinaryIO | CountingStream) -> Iterator[tuple[str, Any]]:
        # use_float: the C backend then refuses over-long numbers instead of building them.
        events = ijson.basic_parse(source, use_float=True)
        try:
            yield from events
        except ijson.JSONError as exc:
            raise self._syntax_error(exc) from None

    def _syntax_error(self, exc: Exception) -> PacketError:
        detail = str(exc).splitlines()[0].removeprefix("b'").removeprefix('b"')
        where = Location(file=self._name, path=self._path)
        if "overflow" in detail:
            return MalformedPacket(
                "a number is too large; values in sync packets are strings", where
            )
        if "UTF8" in detail or "UTF-8" in detail:
            return MalformedPacket("the packet is not valid UTF-8", where)
        if "premature EOF" in detail or "Incomplete JSON" in detail:
            return MalformedPacket("the packet is truncated: the JSON ends early", where)
        if "trailing garbage" in detail:
            return MalformedPacket("unexpected content after the JSON packet", where)
        return MalformedPacket(f"the packet is not well-formed JSON: {detail}", where)

    def _walk_small(self, body: bytes) -> Iterator[PacketHeader | Record]:
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            # The streaming walker gives the same message a large body would get.
            yield from self._walk_events(self._stream_events(_BytesSource(body)))
            raise MalformedPacket(  # pragma: no cover - ijson and orjson disagree
                f"the packet is not well-formed JSON: {exc}", Location(file=self._name)
            ) from None
        if self._looks_valid(doc) and self._keys == _count_keys(body):
            yield from self._walk_doc(doc)
        else:  # the streaming walker is the authority: it names the problem, or reads the packet
            yield from self._walk_events(self._stream_events(_BytesSource(body)))

    # -- the fast path for loaded documents ---------------------------------------------------
    def _looks_valid(self, doc: Any) -> bool:
        """A quick full check; when it fails, the event walker finds and names the problem.

        Also counts the keys it saw (`self._keys`): orjson keeps only the last of duplicate
        keys, so a count lower than the body's means something would be lost.
        """
        if type(doc) is not dict or type(doc.get(SALESMANCODE)) is not str:
            return False
        keys_seen = len(doc) + len(doc.get(ATTRIBUTES, ()))
        keys = list(doc)
        if not set(keys) <= {SALESMANCODE, ATTRIBUTES, TABLES}:
            return False
        if (TABLES in doc and keys[-1] != TABLES) or not doc[SALESMANCODE].strip():
            return False
        if not _str_map(doc.get(ATTRIBUTES, {})) or type(doc.get(TABLES, [])) is not list:
            return False
        names: set[str] = set()
        cheap = self._limits.max_field_bytes // 4
        for table in doc.get(TABLES, []):
            if type(table) is not dict or type(table.get(TABLENAME)) is not str:
                return False
            tkeys = list(table)
            if not set(tkeys) <= {TABLENAME, ATTRIBUTES, RECORDS}:
                return False
            if (RECORDS in table and tkeys[-1] != RECORDS) or not table[TABLENAME].strip():
                return False
            if table[TABLENAME] in names or not _str_map(table.get(ATTRIBUTES, {})):
                return False
            names.add(table[TABLENAME])
            keys_seen += len(table) + len(table.get(ATTRIBUTES, ()))
            records = table.get(RECORDS, [])
            if type(records) is not list:
                return False
            for record in records:
                if type(record) is not dict or not set(record) <= {STATUS, FIELDS}:
                    return False
                fields = record.get(FIELDS)
                if type(fields) is not dict or not _str_map(fields):
                    return False
                if fields and max(map(len, fields.values())) > cheap:
                    return False
                raw = record.get(STATUS)
                if raw is not None and (type(raw) is not str or self._status_or_none(raw) is None):
                    return False
                keys_seen += len(record) + len(fields)
        self._keys = keys_seen
        return True

    def _status_or_none(self, raw: str | None) -> Status | None:
        status = self._statuses.get(raw)
        if status is None:
            try:
                status = self._statuses[raw] = parse_status(raw)
            except ValueError:
                return None
        return status

    def _walk_doc(self, doc: dict[str, Any]) -> Iterator[PacketHeader | Record]:
        yield PacketHeader(salesmancode=doc[SALESMANCODE], attributes=dict(doc.get(ATTRIBUTES, {})))
        for t in doc.get(TABLES, []):
            table = Table(name=t[TABLENAME], attributes=dict(t.get(ATTRIBUTES, {})))
            self.tables.append(table)
            statuses = self._statuses
            for r in t.get(RECORDS, []):
                raw = r.get(STATUS)
                status = statuses.get(raw) or self._status_or_none(raw)
                yield Record(table, status, r[FIELDS], raw)  # type: ignore[arg-type]

    # -- the event walker: streaming, precise messages ----------------------------------------
    def _walk_events(self, source: Iterator[tuple[str, Any]]) -> Iterator[PacketHeader | Record]:
        ev = _Events(source, self._name)
        event, _ = ev.next()
        if event != "start_map":
            raise ev.error(f"a JSON packet must be an object, not {_KINDS.get(event, event)}")
        salesmancode: str | None = None
        attributes: dict[str, str] = {}
        tables_done = False
        for key, path in ev.keys("$"):
            if key in _HEADER_KEYS and tables_done:
                raise ev.error(
                    f'header key {key!r} comes after "tables"; header keys come first', path
                )
            if key == SALESMANCODE:
                salesmancode = self._string(ev, path, SALESMANCODE)
                if not salesmancode.strip():
                    raise ev.error("salesmancode is empty", path)
            elif key == ATTRIBUTES:
                attributes = self._string_map(ev, path, ATTRIBUTES)
            elif key == TABLES:
                if salesmancode is None:
                    raise ev.error(
                        'salesmancode is missing or comes after "tables"; '
                        'header keys come before "tables"',
                        "$",
                    )
                yield PacketHeader(salesmancode=salesmancode, attributes=attributes)
                yield from self._tables(ev, path)
                tables_done = True
            else:
                raise ev.error(f"unknown key {key!r} in the packet", path)
        if salesmancode is None:
            raise ev.error("salesmancode is missing", "$")
        if not tables_done:
            yield PacketHeader(salesmancode=salesmancode, attributes=attributes)
        for _ in source:  # the parser reports trailing garbage on the way
            pass  # pragma: no cover

    def _tables(self, ev: _Events, path: str) -> Iterator[Record]:
        self._expect(ev, "start_array", path, TABLES, "an array")
        names: set[str] = set()
        for tpath in ev.objects(path, "a table"):
            name: str | None = None
            attributes: dict[str, str] = {}
            table: Table | None = None
            for key, kpath in ev.keys(tpath):
                if key in _TABLE_KEYS and table is not None:
                    raise ev.error(
                        f'table key {key!r} comes after "records"; table keys come first', kpath
                    )
                if key == TABLENAME:
                    name = self._string(ev, kpath, TABLENAME)
                elif key == ATTRIBUTES:
                    attributes = self._string_map(ev, kpath, ATTRIBUTES)
                elif key == RECORDS:
                    table = self._table(ev, tpath, name, attributes, names)
                    yield from self._records(ev, kpath, table)
                else:
                    raise ev.error(f"unknown key {key!r} in a table", kpath)
            if table is None:
                self._table(ev, tpath, name, attributes, names)

    def _table(
        self, ev: _Events, path: str, name: str | None, attributes: dict[str, str], names: set[str]
    ) -> Table:
        if name is None:
            raise ev.error(
                'tablename is missing or comes after "records"; table keys come before "records"',
                path,
            )
        if not name.strip():
            raise ev.error("a table has an empty tablename", key_path(path, TABLENAME))
        if name in names:
            raise ev.error(duplicate_table(name), key_path(path, TABLENAME))
        names.add(name)
        table = Table(name=name, attributes=attributes)
        self.tables.append(table)
        return table

    def _records(self, ev: _Events, path: str, table: Table) -> Iterator[Record]:
        self._expect(ev, "start_array", path, RECORDS, "an array")
        for rpath in ev.objects(path, "a record"):
            raw: str | None = None
            fields: dict[str, str] | None = None
            for key, kpath in ev.keys(rpath):
                if key == STATUS:
                    raw = self._string(ev, kpath, STATUS)
                    if self._status_or_none(raw) is None:
                        raise ev.error(unknown_status(raw), kpath)
                elif key == FIELDS:
                    fields = self._fields(ev, kpath)
                else:
                    raise ev.error(f"unknown key {key!r} in a record", kpath)
            if fields is None:
                raise ev.error("a record has no fields", rpath)
            yield Record(table, self._status_or_none(raw), fields, raw)  # type: ignore[arg-type]

    def _fields(self, ev: _Events, path: str) -> dict[str, str]:
        self._expect(ev, "start_map", path, FIELDS, "an object")
        limit = self._limits.max_field_bytes
        fields: dict[str, str] = {}
        while True:
            event, key = ev.next()
            if event == "end_map":
                return fields
            fpath = key_path(path, key)
            if key in fields:
                raise ev.error(duplicate_field(key), fpath)
            value = self._string(ev, fpath, key)
            if over_field_limit(value, limit):
                raise PacketTooLarge(field_too_long(limit), Location(file=self._name, path=fpath))
            fields[key] = value

    def _string_map(self, ev: _Events, path: str, what: str) -> dict[str, str]:
        self._expect(ev, "start_map", path, what, "an object")
        result: dict[str, str] = {}
        while True:
            event, key = ev.next()
            if event == "end_map":
                return result
            result[key] = self._string(ev, key_path(path, key), key)

    def _string(self, ev: _Events, path: str, what: str) -> str:
        self._path = path  # for parser errors (e.g. an over-long number) raised on the way
        event, value = ev.next()
        if event != "string":
            raise ev.error(f"{what} must be a string, not {_KINDS.get(event, event)}", path)
        return value

    def _expect(self, ev: _Events, want: str, path: str, what: str, kind: str) -> None:
        self._path = path
        event, _ = ev.next()
        if event != want:
            raise ev.error(f"{what} must be {kind}, not {_KINDS.get(event, event)}", path)


# A JSON string followed by a colon is an object key; string values are never followed by one.
_KEY = re.compile(rb'"(?:[^"\\]|\\.)*"\s*:')


def _count_keys(body: bytes) -> int:
    return sum(1 for _ in _KEY.finditer(body))


def _str_map(value: Any) -> bool:
    return type(value) is dict and all(type(v) is str for v in value.values())


class _BytesSource:
    """A minimal binary file over bytes (ijson reads with `.read(n)`)."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)
        self._pos = 0

    def read(self, size: int = -1) -> bytes:
        end = len(self._data) if size < 0 else self._pos + size
        chunk = bytes(self._data[self._pos : end])
        self._pos += len(chunk)
        return chunk


# -- writer ------------------------------------------------------------------------------------
def write_json(
    sink: BinaryIO,
    header: PacketHeader,
    records: Iterable[Record | Table],
    *,
    status_word: Callable[[Record], str | None],
) -> None:
    """Write a JSON packet incrementally: one orjson call per record, one record per line."""
    head: dict[str, Any] = {SALESMANCODE: header.salesmancode}
    if header.attributes:
        head[ATTRIBUTES] = header.attributes
    sink.write(orjson.dumps(head)[:-1] + b',"tables":[')
    current: Table | None = None
    done: set[str] = set()
    first_record = True
    for record in records:
        table = record if isinstance(record, Table) else record.table
        if table is not current and table != current:
            if current is not None:
                sink.write(b"\n]},")
            if table.name in done:
                raise ValueError(f"records of table {table.name!r} are not contiguous")
            done.add(table.name)
            current = table
            thead: dict[str, Any] = {TABLENAME: table.name}
            if table.attributes:
                thead[ATTRIBUTES] = table.attributes
            sink.write(b"\n" + orjson.dumps(thead)[:-1] + b',"records":[')
            first_record = True
        if isinstance(record, Table):  # a Table only announces itself
            continue
        body: dict[str, Any] = {}
        word = status_word(record)
        if word is not None:
            body[STATUS] = word
        body[FIELDS] = {k: v for k, v in record.fields.items() if v is not None}
        sink.write((b"\n" if first_record else b",\n") + orjson.dumps(body))
        first_record = False
    if current is not None:
        sink.write(b"\n]}")
    sink.write(b"\n]}\n")
