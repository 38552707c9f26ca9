"""Streaming, hardened XML reader: lxml `iterparse`, one `<r>` at a time, memory flat.

Hardening, in order: the prolog is checked in raw bytes so a DOCTYPE (and with it any entity
or external reference) is refused before libxml2 sees it; the parser runs with entities,
DTD loading and network access off and libxml2's own size limits on (`huge_tree=False`);
the body limit is enforced by the stream wrapper as bytes are read; every record is
cleared and dropped from the tree as soon as it has been turned into a `Record`.
"""

from __future__ import annotations

from collections.abc import Iterator

from lxml import etree

from .detect import MAX_PROLOG_BYTES, scan_prolog
from .errors import (
    Location,
    MalformedPacket,
    PacketError,
    PacketTooLarge,
    duplicate_field,
    duplicate_table,
    field_too_long,
    nested_field,
    unknown_status,
)
from .limits import CountingStream, Limits, over_field_limit
from .model import PacketHeader, Record, Status, Table, parse_status

ROOT = "NavMobileSync"
TABLE = "table"
RECORD = "r"

# lxml options for every parse of untrusted XML (iterparse and XMLParser take the same ones).
SAFE_OPTIONS = {
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "dtd_validation": False,
    "huge_tree": False,
    "remove_comments": True,
    "remove_pis": True,
}
_CHUNK = 32768  # lxml iterparse's read size


def safe_parser() -> etree.XMLParser:
    """A non-incremental lxml parser with the same hardening, for small documents."""
    return etree.XMLParser(**SAFE_OPTIONS)


class XmlPacket:
    """Reads one XML packet. The header is parsed on construction; records on iteration."""

    def __init__(self, stream: CountingStream, *, limits: Limits, name: str | None) -> None:
        self._stream = stream
        self._limits = limits
        self._name = name
        self.tables: list[Table] = []
        self._last_table: etree._Element | None = None
        self._self_closed = False
        self.header = self._read_header()

    def _where(self, line: int | None = None) -> Location:
        return Location(file=self._name, line=line)

    # -- header -------------------------------------------------------------------------
    def _read_header(self) -> PacketHeader:
        size = 4096
        while True:
            data = self._stream.peek(size)
            complete = len(data) < size or self._stream.at_end
            prolog = scan_prolog(data, name=self._name, complete=complete)
            if prolog is not None:
                break
            if size >= MAX_PROLOG_BYTES:
                raise MalformedPacket(
                    f"the root element does not start within the first {MAX_PROLOG_BYTES} bytes",
                    self._where(1),
                )
            size *= 2
        if prolog.root != ROOT:
            shown = f"<{prolog.root}>" if prolog.root else "not an element"
            raise MalformedPacket(
                f"the root element is {shown}; a sync packet's root is <{ROOT}>", self._where(1)
            )
        # Parse the root start tag alone, closed, to read its attributes before any record.
        tag = prolog.start_tag
        self._self_closed = tag.endswith(b"/>")
        tiny = tag if self._self_closed else tag + b"</" + ROOT.encode() + b">"
        try:
            root = etree.fromstring(tiny, safe_parser())
        except etree.XMLSyntaxError as exc:
            raise self._syntax_error(exc, at_end=False) from None
        if root.nsmap:
            raise MalformedPacket("sync packets do not use XML namespaces", self._where(1))
        attributes = dict(root.attrib)
        key = next((k for k in attributes if k.lower() == "salesmancode"), None)
        if key is None:
            raise MalformedPacket(
                f"the <{ROOT}> root has no salesmancode attribute", self._where(1)
            )
        salesmancode = attributes.pop(key)
        if not salesmancode.strip():
            raise MalformedPacket("the salesmancode attribute is empty", self._where(1))
        return PacketHeader(salesmancode=salesmancode, attributes=attributes)

    # -- records ------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Record]:
        # Events for <r> only: tables are found through their records' parents, which keeps
        # the per-record work to a minimum (see bench/bench_read.py).
        events = etree.iterparse(
            self._stream, events=("end",), tag=RECORD, chunk_size=_CHUNK, **SAFE_OPTIONS
        )
        return self._records(events)

    def _records(self, events: etree.iterparse) -> Iterator[Record]:
        # One flat generator on purpose: each extra generator layer costs per record.
        seen: set[str] = set()
        stream = self._stream
        max_field = self._limits.max_field_bytes
        # A field longer than the limit needs that many bytes of input since the last check
        # (minus what the parser may have read ahead), so most records skip the exact check.
        window = max(0, max_field - 2 * _CHUNK)
        mark = 0
        statuses: dict[str | None, Status] = {}
        table_elem = None
        table: Table | None = None
        nested = self._nested
        try:
            for _event, elem in events:
                parent = elem.getparent()
                if parent is not table_elem:
                    table = self._enter_table(parent, seen)
                    table_elem = parent
                raw = elem.get("status")
                status = statuses.get(raw)
                if status is None:
                    status = statuses[raw] = self._status(raw, elem)
                fields = {c.tag: (nested(c) if len(c) else c.text) for c in elem}
                if len(fields) != len(elem):
                    self._duplicate_field(elem)
                if not all(fields.values()):  # <f/> is an empty string, not a null
                    fields = {k: v or "" for k, v in fields.items()}
                if stream.bytes_read - mark > window:
                    mark = stream.bytes_read
                    self._check_field_size(fields, max_field, elem)
                record = Record(table, status, fields, raw)  # type: ignore[arg-type]
                # Free the record and everything before it: memory stays flat.
                elem.clear()
                prev = elem.getprevious()
                while prev is not None:
                    if prev.tag != RECORD:
                        self._unexpected(prev, TABLE)
                    del parent[0]
                    prev = elem.getprevious()
                yield record
            root = events.root
        except etree.XMLSyntaxError as exc:
            raise self._syntax_error(exc, at_end=self._stream.at_end) from None
        if root is not None:
            self._flush_tables(root, None, seen)

    def _enter_table(self, elem: etree._Element, seen: set[str]) -> Table:
        line = elem.sourceline
        root = elem.getparent()
        if elem.tag != TABLE:
            raise MalformedPacket(
                f"a <{RECORD}> record must be inside a <{TABLE}>, not <{elem.tag}>",
                self._where(line),
            )
        if root is None or root.getparent() is not None:
            raise MalformedPacket(
                f"a <{TABLE}> must be a direct child of <{ROOT}>", self._where(line)
            )
        self._flush_tables(root, elem, seen)
        return self._register(elem, seen)

    def _flush_tables(
        self, root: etree._Element, upto: etree._Element | None, seen: set[str]
    ) -> None:
        """Check and drop the tables before `upto` (all, if None); register empty ones."""
        for child in list(root):
            if child is upto:
                return
            if child.tag != TABLE:
                self._unexpected(child, ROOT)
            if not self._registered(child):
                self._register(child, seen)
            self._check_children(child, RECORD)
            root.remove(child)

    def _registered(self, elem: etree._Element) -> bool:
        # A table is registered when its first record arrives; records are cleared as read,
        # so a registered table holds at most its last, empty, <r>.
        return elem is self._last_table

    def _register(self, elem: etree._Element, seen: set[str]) -> Table:
        line = elem.sourceline
        attributes = dict(elem.attrib)
        name = attributes.pop("tablename", None)
        if name is None:
            raise MalformedPacket(f"a <{TABLE}> has no tablename attribute", self._where(line))
        if not name.strip():
            raise MalformedPacket(f"a <{TABLE}> has an empty tablename", self._where(line))
        if name in seen:
            raise MalformedPacket(duplicate_table(name), self._where(line))
        seen.add(name)
        table = Table(name=name, attributes=attributes)
        self.tables.append(table)
        self._last_table = elem
        return table

    def _status(self, raw: str | None, elem: etree._Element) -> Status:
        try:
            return parse_status(raw)
        except ValueError:
            raise MalformedPacket(unknown_status(raw), self._where(elem.sourceline)) from None

    def _nested(self, field: etree._Element) -> str:
        raise MalformedPacket(nested_field(), self._where(field[0].sourceline))

    def _duplicate_field(self, elem: etree._Element) -> None:
        names: set[str] = set()
        for child in elem:
            if child.tag in names:
                raise MalformedPacket(duplicate_field(child.tag), self._where(child.sourceline))
            names.add(child.tag)

    def _check_field_size(self, fields: dict[str, str], limit: int, elem: etree._Element) -> None:
        for value in fields.values():
            if over_field_limit(value, limit):
                raise PacketTooLarge(field_too_long(limit), self._where(elem.sourceline))

    def _check_children(self, elem: etree._Element, allowed: str) -> None:
        for child in elem:
            if child.tag != allowed:
                self._unexpected(child, elem.tag)

    def _unexpected(self, elem: etree._Element, parent: str) -> None:
        raise MalformedPacket(
            f"unexpected element <{elem.tag}> inside <{parent}>", self._where(elem.sourceline)
        )

    def _syntax_error(self, exc: etree.XMLSyntaxError, *, at_end: bool) -> PacketError:
        """Turn libxml2's message into a plain sentence and the right error class."""
        detail = (exc.msg or "").split(", line ")[0]
        where = self._where(exc.lineno or None)
        if at_end and not _ends_like_a_packet(self._stream.tail, self._self_closed):
            return MalformedPacket(f"the packet is truncated: it ends before </{ROOT}>", where)
        if "Invalid bytes in character encoding" in detail or "UTF-8" in detail:
            return MalformedPacket("the packet is not valid UTF-8", where)
        if "Excessive depth" in detail:
            return MalformedPacket(nested_field(), where)
        if "Text node too long" in detail:
            return PacketTooLarge(field_too_long(self._limits.max_field_bytes), where)
        if "Resource limit exceeded" in detail or "huge" in detail.lower():
            return PacketTooLarge(f"the packet exceeds a parser limit ({detail})", where)
        if "Extra content at the end" in detail:
            return MalformedPacket(f"unexpected content after </{ROOT}>", where)
        return MalformedPacket(f"the packet is not well-formed XML: {detail}", where)


def _ends_like_a_packet(tail: bytes, self_closed: bool) -> bool:
    """A complete packet ends with its root's end tag (or is one self-closed root element),
    perhaps followed by a comment or processing instruction."""
    tail = tail.rstrip(b" \t\r\n")
    if self_closed and tail.endswith(b"/>"):
        return True
    return tail.endswith((b"</" + ROOT.encode() + b">", b"-->", b"?>"))
