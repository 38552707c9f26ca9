"""How the emulated portal stores one data packet: both renditions, listed by the JSON one.

The real pull list names `push-done/json/prod/<APPAREA>/<yyyyMMdd>/<user>/<id>.json` for every
data packet (dynamics-mobile.md §3.2.1, all seven vendor `.meta` files) and the cloud keeps an
XML rendition at `push-done/xml/…/<id>.xml` beside it (§3.3, §4.4). The JSON rendition's
layout is not public (§4.4, §8 gap 9), so the sandbox serves one of its own invention there:
an xmltodict-style mirror that packetworker's reader does not know and must never need.
"""

from __future__ import annotations

import hashlib
import io
from typing import Any, Literal
from urllib.parse import quote

import orjson
from lxml import etree

_SAFE_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
# Object names stay short enough for S3 (keys up to 1,024 bytes) whatever the id.
_MAX_NAME = 200


def object_name(packet_id: str) -> str:
    """The file-name part of a packet's storage key: the id itself (real ids are GUIDs),
    percent-encoded so no id can add path segments, or a hash when it would be too long."""
    name = quote(packet_id, safe="")
    if len(name) > _MAX_NAME:
        name = hashlib.sha256(packet_id.encode("utf-8", "surrogatepass")).hexdigest()
    return name


def _tail(app_area: str, day: str, user: str, packet_id: str) -> str:
    return f"prod/{app_area}/{day}/{quote(user, safe='')}/{object_name(packet_id)}"


def data_keys(app_area: str, day: str, user: str, packet_id: str) -> tuple[str, str]:
    """(listed JSON key, XML rendition key) of a data packet."""
    tail = _tail(app_area, day, user, packet_id)
    return f"push-done/json/{tail}.json", f"push-done/xml/{tail}.xml"


def file_key(app_area: str, day: str, user: str, packet_id: str) -> str:
    """The key of a file (attachment) entry; files keep their own path."""
    return f"push-done/file/{_tail(app_area, day, user, packet_id)}.jpg"


def renditions(body: bytes, sent_as: Literal["xml", "json"]) -> tuple[bytes, bytes]:
    """(JSON rendition, XML rendition) of a packet the device sent as `sent_as`.

    A body that cannot be converted (a deliberately broken packet) is stored as sent in
    both places, so it reaches the worker as it would from a buggy device.
    """
    xml = body if sent_as == "xml" else (_to_xml(body) or body)
    return _vendor_json(xml) or body, xml


def _to_xml(body: bytes) -> bytes | None:
    from packetworker.packets import convert

    sink = io.BytesIO()
    try:
        convert(io.BytesIO(body), sink, to="xml")
    except Exception:  # a deliberately broken packet is stored as sent
        return None
    return sink.getvalue()


def _vendor_json(xml: bytes) -> bytes | None:
    """`{"NavMobileSync": {"@salesmancode": …, "table": [{"@tablename": …, "r": [{"@status":
    …, "<field>": "<value>"}]}]}}` — invented, and deliberately not packetworker's layout."""
    try:
        root = etree.fromstring(xml, parser=_SAFE_PARSER)
    except (etree.XMLSyntaxError, ValueError):
        return None
    if not isinstance(root.tag, str):
        return None

    def element(node: Any) -> dict[str, Any]:
        out: dict[str, Any] = {f"@{k}": v for k, v in node.attrib.items()}
        for child in node:
            if not isinstance(child.tag, str):
                continue
            value: Any = element(child) if len(child) or child.attrib else (child.text or "")
            name = etree.QName(child).localname
            if name in ("table", "r"):
                out.setdefault(name, []).append(value)
            else:
                out[name] = value
        return out

    return orjson.dumps({etree.QName(root).localname: element(root)})
