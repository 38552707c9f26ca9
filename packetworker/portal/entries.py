"""Pull-list entries and the list/done body formats (pure: no I/O).

The API lists pending packets as a JSON array of objects or as XML
`<messages><message><id>…</id>…</message></messages>`; both map onto `PullEntry`. The done
call takes the `{id, receiptHandle}` pairs back in either format.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from lxml import etree

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
_REQUIRED = ("id", "url", "receiptHandle")

# No DTDs, no entities, no network: list bodies come from the network and are parsed as data.
_SAFE_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, dtd_validation=False
)


class ListFormatError(ValueError):
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
        """Build from an API object; raises `ListFormatError` without id/url/receiptHandle."""
        missing = [k for k in _REQUIRED if not isinstance(d.get(k), str) or not d.get(k)]
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


def parse_list(body: bytes) -> list[PullEntry]:
    """Parse a pull-list body in either format (sniffed, so a mislabelled answer still works)."""
    text = body.lstrip()
    if text.startswith(b"<"):
        return [PullEntry.from_json(d) for d in _xml_messages(text)]
    try:
        data = orjson.loads(text or b"[]")
    except orjson.JSONDecodeError as exc:
        raise ListFormatError(f"pull list is neither JSON nor XML: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("messages"), list):
        data = data["messages"]
    if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
        raise ListFormatError("pull list is not a JSON array of objects")
    return [PullEntry.from_json(d) for d in data]


def parse_xml_messages(body: bytes) -> list[dict[str, str]]:
    """`<messages><message><field>value</field>…` → one dict per message (safe parse)."""
    return _xml_messages(body)


def _xml_messages(body: bytes) -> list[dict[str, str]]:
    try:
        root = etree.fromstring(body, parser=_SAFE_PARSER)
    except etree.XMLSyntaxError as exc:
        raise ListFormatError(f"XML list is not well-formed: {exc}") from None
    if root.getroottree().docinfo.internalDTD is not None:
        raise ListFormatError("XML list carries a DTD; refused")
    if etree.QName(root).localname != "messages":
        raise ListFormatError(f"XML list root is <{root.tag}>, expected <messages>")
    messages = []
    for message in root:
        if not isinstance(message.tag, str) or etree.QName(message).localname != "message":
            continue
        messages.append(
            {
                etree.QName(child).localname: (child.text or "").strip()
                for child in message
                if isinstance(child.tag, str)
            }
        )
    return messages


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
