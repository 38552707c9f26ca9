"""Pull-list entries and the list/done body formats (pure: no I/O).

The API lists pending packets as a JSON array of objects or as XML
`<messages><message><id>…</id>…</message></messages>`; both map onto `PullEntry` and are
read as a stream (ijson, lxml iterparse; no DTDs, entities or network), so a capped read of
a huge list holds only the entries it keeps. The done call takes the `{id, receiptHandle}`
pairs back in either format.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import ijson
import orjson
from lxml import etree

from packetworker.errors import PacketworkerError

# Field name in the API (camelCase) -> attribute name.
_FIELDS = {
    "id": "id",
    "url": "url",
    "receiptHandle": "receipt_handle",
    "userName": "user_name",
    "onDate": "on_date",
    "size": "size",
    "operation": "operation",
    "companyId": "company_id",
    "appCode": "app_code",
    "packetType": "packet_type",
}
_REQUIRED = ("url", "receiptHandle")
# Longest id taken: real ids are GUIDs (36 characters, dynamics-mobile.md §3.2).
MAX_ID_CHARS = 1024
# Real receipt handles are about 400 characters (an SQS receipt handle, §3.2).
MAX_RECEIPT_HANDLE_CHARS = 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class ListFormatError(ValueError, PacketworkerError):
    """A pull-list body that is not a list of entries."""


@dataclass(frozen=True, slots=True)
class PullEntry:
    """One pending packet (or file) as listed by the pull endpoint."""

    id: str
    url: str
    receipt_handle: str
    user_name: str | None = None
    on_date: str | None = None
    size: int | None = None
    operation: str | None = None
    company_id: str | None = None
    app_code: str | None = None
    packet_type: str | None = None
    # Fields the API may add later are kept rather than dropped (and ignored in hashing).
    extra: Mapping[str, str] = field(default_factory=dict, hash=False)

    def to_json(self) -> dict[str, Any]:
        """The entry as the API spells it (camelCase); unset fields are left out."""
        out: dict[str, Any] = dict(self.extra)
        for api_name, attr in _FIELDS.items():
            value = getattr(self, attr)
            if value is not None:
                out[api_name] = value
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> PullEntry:
        """Build from an API object; raises `ListFormatError` without url/receiptHandle or
        without a string id (an empty id is kept here and refused by `entry_problem`)."""
        missing = [k for k in _REQUIRED if not isinstance(d.get(k), str) or not d.get(k)]
        if not isinstance(d.get("id"), str):
            missing.insert(0, "id")
        if missing:
            raise ListFormatError(f"pull entry lacks {', '.join(missing)}")
        known: dict[str, Any] = {}
        extra: dict[str, str] = {}
        for key, value in d.items():
            attr = _FIELDS.get(key)
            if attr is None:
                if value is not None:
                    extra[key] = value if isinstance(value, str) else orjson.dumps(value).decode()
            elif attr == "size":
                known[attr] = _to_int(value)
            elif value is not None:
                known[attr] = str(value)
        return cls(**known, extra=extra)


@dataclass(frozen=True)
class Download:
    """What `PortalClient.download` wrote: byte count and SHA-256 (hex) of the body."""

    size: int
    sha256: str


@dataclass(frozen=True)
class PushResult:
    """The upload slot the push call handed out, after the bytes were uploaded to it."""

    sync_log_id: str | None
    packet_unique_id: str
    size: int


def _to_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def parse_list(body: bytes, *, limit: int | None = None) -> list[PullEntry]:
    """Parse a pull-list body in either format (sniffed, so a mislabelled answer still works);
    at most `limit` entries."""
    return list(iter_list([body], limit=limit))


def iter_list(chunks: Iterable[bytes], *, limit: int | None = None) -> Iterator[PullEntry]:
    """Stream the entries of a pull list arriving as `chunks`; stop after `limit` entries
    without reading further, so a huge list costs no more memory than the entries kept."""
    if limit is not None and limit < 1:
        return
    source = _ChunkStream(chunks)
    first = source.peek_first()
    messages = _xml_stream(source) if first == b"<" else _json_stream(source, first)
    for count, message in enumerate(messages, start=1):
        yield PullEntry.from_json(message)
        if limit is not None and count >= limit:
            return


def entry_problem(entry: PullEntry) -> str | None:
    """Why a listed entry cannot be taken (an id no packet could have, an absurd receipt
    handle), or None. Such entries are never downloaded nor acknowledged."""
    if not entry.id:
        return "the packet id is empty"
    if len(entry.id) > MAX_ID_CHARS:
        return f"the packet id is {len(entry.id)} characters long (limit {MAX_ID_CHARS})"
    if _CONTROL.search(entry.id):
        return "the packet id holds control characters"
    if len(entry.receipt_handle) > MAX_RECEIPT_HANDLE_CHARS:
        return (
            f"the receipt handle is {len(entry.receipt_handle)} characters long "
            f"(limit {MAX_RECEIPT_HANDLE_CHARS})"
        )
    return None


def parse_xml_messages(body: bytes) -> list[dict[str, str]]:
    """`<messages><message><field>value</field>…` → one dict per message (safe parse)."""
    return list(_xml_stream(_ChunkStream([body])))


class _ChunkStream:
    """A binary file over an iterator of chunks, read lazily (ijson and lxml call `read`)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._buffer = b""

    def peek_first(self) -> bytes:
        """The first non-blank byte (b"" for an empty body); nothing is consumed but blanks."""
        while True:
            self._buffer = self._buffer.lstrip()
            if self._buffer:
                return self._buffer[:1]
            chunk = next(self._chunks, None)
            if chunk is None:
                return b""
            self._buffer = chunk

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        if size < 0:
            size = len(self._buffer)
        out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out


def _json_stream(source: _ChunkStream, first: bytes) -> Iterator[dict[str, Any]]:
    if first == b"":
        return
    if first not in (b"[", b"{"):
        raise ListFormatError("pull list is neither JSON nor XML")
    # A bare array (what the API sends) or {"messages": [...]} (tolerated).
    prefix = "item" if first == b"[" else "messages.item"
    try:
        for item in ijson.items(source, prefix, use_float=True):
            if not isinstance(item, dict):
                raise ListFormatError("pull list is not a JSON array of objects")
            yield item
    except ijson.JSONError as exc:
        raise ListFormatError(f"pull list is not well-formed JSON: {exc}") from None


def _xml_stream(source: _ChunkStream) -> Iterator[dict[str, str]]:
    events = etree.iterparse(
        source,
        events=("start", "end"),
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )
    depth = 0
    try:
        for event, element in events:
            if event == "start":
                depth += 1
                if depth == 1:
                    if element.getroottree().docinfo.internalDTD is not None:
                        raise ListFormatError("XML list carries a DTD; refused")
                    if etree.QName(element).localname != "messages":
                        raise ListFormatError(
                            f"XML list root is <{element.tag}>, expected <messages>"
                        )
                continue
            depth -= 1
            if depth != 1:
                continue
            if etree.QName(element).localname == "message":
                yield {
                    etree.QName(child).localname: (child.text or "").strip()
                    for child in element
                    if isinstance(child.tag, str)
                }
            # Drop what was read so memory stays flat however long the list is.
            element.clear()
            while element.getprevious() is not None:
                del element.getparent()[0]
    except etree.XMLSyntaxError as exc:
        raise ListFormatError(f"XML list is not well-formed: {exc}") from None


def done_body(entries: Sequence[PullEntry], fmt: Literal["json", "xml"]) -> tuple[bytes, str]:
    """The done request body and its Content-Type."""
    if fmt == "json":
        messages = [{"id": e.id, "receiptHandle": e.receipt_handle} for e in entries]
        return orjson.dumps({"messages": messages}), "application/json"
    root = etree.Element("messages")
    for e in entries:
        message = etree.SubElement(root, "message")
        etree.SubElement(message, "id").text = e.id
        etree.SubElement(message, "receiptHandle").text = e.receipt_handle
    return etree.tostring(root, encoding="UTF-8", xml_declaration=True), "application/xml"
