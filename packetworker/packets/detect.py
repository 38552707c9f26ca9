"""Format sniffing and the XML prolog check that runs before any XML parser sees the bytes."""

from __future__ import annotations

from typing import Literal

from .errors import Location, MalformedPacket, UnsafePacket

PacketFormat = Literal["xml", "json"]

UTF8_BOM = b"\xef\xbb\xbf"
_WHITESPACE = b" \t\r\n"
# A prolog (declaration, comments, PIs) longer than this is not a sync packet.
MAX_PROLOG_BYTES = 64 * 1024
DOCTYPE_REFUSED = "DOCTYPE declarations are not allowed in sync packets"


def detect_format(head: bytes, *, name: str | None = None) -> PacketFormat:
    """Sniff the first bytes: `<` is XML, `{` or `[` is JSON (a UTF-8 BOM and blanks are fine)."""
    where = Location(file=name)
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or head[:2] in (b"<\x00", b"\x00<"):
        raise MalformedPacket("sync packets must be encoded in UTF-8, not UTF-16 or UTF-32", where)
    text = head.removeprefix(UTF8_BOM).lstrip(_WHITESPACE)
    if not text:
        raise MalformedPacket("the packet is empty", where)
    if text[:1] == b"<":
        return "xml"
    if text[:1] in (b"{", b"["):
        return "json"
    raise MalformedPacket("the packet is neither XML nor JSON", where)


def _is_name_byte(byte: int) -> bool:
    # Bytes that may continue an XML name: ASCII name characters and any non-ASCII byte.
    return byte >= 0x80 or chr(byte).isalnum() or byte in b"_-.:"


class Prolog:
    """What the prolog check learned: the root element's name and its complete start tag."""

    __slots__ = ("root", "start_tag")

    def __init__(self, root: str, start_tag: bytes) -> None:
        self.root = root
        self.start_tag = start_tag


def scan_prolog(data: bytes, *, name: str | None = None, complete: bool) -> Prolog | None:
    """Walk the XML prolog in raw bytes, refusing any DOCTYPE before a parser can expand it.

    Returns the root's name and start tag, or None when `data` ends before the start tag does
    and more bytes may come (`complete=False`). Raises `UnsafePacket` for `<!DOCTYPE` and
    `MalformedPacket` for anything that cannot start a sync packet.
    """
    where = Location(file=name, line=1)
    pos = len(UTF8_BOM) if data.startswith(UTF8_BOM) else 0
    end = len(data)
    while True:
        while pos < end and data[pos] in _WHITESPACE:
            pos += 1
        if pos >= end:
            break
        if data[pos] != 0x3C:  # "<"
            raise MalformedPacket("the packet does not start with an XML element", where)
        if data.startswith(b"<?", pos):
            close = data.find(b"?>", pos)
            if close < 0:
                break
            if data[pos : pos + 6].rstrip(_WHITESPACE) == b"<?xml":
                _check_declaration(data[pos : close + 2], where)
            pos = close + 2
        elif data.startswith(b"<!--", pos):
            close = data.find(b"-->", pos + 4)
            if close < 0:
                break
            pos = close + 3
        elif data.startswith(b"<!", pos):
            if end - pos < 9 and not complete:
                break
            if data[pos : pos + 9].upper() == b"<!DOCTYPE":
                raise UnsafePacket(DOCTYPE_REFUSED, where)
            raise MalformedPacket("the packet does not start with an XML element", where)
        else:
            stop = pos + 1
            while stop < end and _is_name_byte(data[stop]):
                stop += 1
            tag_end = _find_tag_end(data, stop)
            if tag_end < 0:
                break
            root = data[pos + 1 : stop].decode("utf-8", "replace")
            return Prolog(root, data[pos:tag_end])
    if complete:
        raise MalformedPacket("the packet ends before its root element starts", where)
    return None


def _find_tag_end(data: bytes, pos: int) -> int:
    """Index just past the `>` closing a start tag, skipping quoted attribute values; -1 if none."""
    quote = 0
    for i in range(pos, len(data)):
        byte = data[i]
        if quote:
            if byte == quote:
                quote = 0
        elif byte in (0x22, 0x27):
            quote = byte
        elif byte == 0x3E:
            return i + 1
    return -1


def _check_declaration(declaration: bytes, where: Location) -> None:
    lowered = declaration.lower()
    at = lowered.find(b"encoding")
    if at < 0:
        return
    rest = lowered[at + len(b"encoding") :].lstrip(_WHITESPACE + b"=").lstrip(_WHITESPACE)
    value = rest[1:].split(rest[:1], 1)[0] if rest[:1] in (b'"', b"'") else rest
    if value not in (b"utf-8", b"utf8"):
        raise MalformedPacket(
            f"sync packets must be encoded in UTF-8, not {value.decode('ascii', 'replace')}",
            where,
        )
