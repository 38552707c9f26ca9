"""Validation that reports every problem it can as `ValidationIssue`s instead of raising.

A packet is first read with the hardened reader (which refuses DTDs, oversize bodies and
malformed structure before a schema validator ever parses it), then checked against the
shipped schema: xmlschema for XML (streamed, `lazy=True`, on the same hardened lxml parser),
jsonschema for JSON bodies up to `SMALL_BODY_BYTES`. Larger JSON bodies rely on the
streaming reader, whose checks mirror the JSON Schema, so memory stays flat.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

import orjson
from lxml import etree

from .detect import PacketFormat, scan_prolog
from .errors import Location, PacketError, nested_field
from .json_shape import SMALL_BODY_BYTES
from .limits import Limits
from .reader import Source, open_packet, source_name
from .schemas import (
    DONE_JSON,
    DONE_XSD,
    PACKET_JSON,
    PACKET_XSD,
    PULL_LIST_JSON,
    PULL_LIST_XSD,
    json_validator,
    xml_schema,
)
from .xml_reader import SAFE_OPTIONS, safe_parser

if TYPE_CHECKING:
    import xmlschema

# Pull lists and done bodies are small; anything bigger is not one.
MAX_LIST_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class ValidationIssue:
    """One problem: where (file and line, or JSON path) and a plain sentence."""

    location: Location
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


def validate_packet(
    source: Source,
    *,
    format: PacketFormat | None = None,
    name: str | None = None,
    limits: Limits | None = None,
) -> list[ValidationIssue]:
    """Every issue found in a sync packet; `[]` when it is valid."""
    name = source_name(source, name)
    limits = limits or Limits()
    with _replayable(source, max_bytes=limits.max_body_bytes) as reopen:
        try:
            with open_packet(reopen(), format=format, limits=limits, name=name) as reader:
                for _ in reader:
                    pass
                fmt, size = reader.format, reader.bytes_read
        except PacketError as exc:
            return [ValidationIssue(exc.location, exc.message)]
        if fmt == "xml":
            return _xml_packet_issues(reopen, size, name)
        if size <= SMALL_BODY_BYTES:
            return _json_issues(PACKET_JSON, orjson.loads(reopen().read()), name)
        return []


def validate_pull_list(source: Source | bytes, *, format: PacketFormat) -> list[ValidationIssue]:
    """Issues in a pull-list body (`<messages><message>…` or a JSON array of entries)."""
    return _validate_small(source, format=format, xsd=PULL_LIST_XSD, json_schema=PULL_LIST_JSON)


def validate_done_body(source: Source | bytes, *, format: PacketFormat) -> list[ValidationIssue]:
    """Issues in a done body (`messages/message/{id,receiptHandle}` in XML or JSON)."""
    return _validate_small(source, format=format, xsd=DONE_XSD, json_schema=DONE_JSON)


# -- helpers -----------------------------------------------------------------------------------
def _safe_iterparse(source: Any, events: Any = None) -> Iterator[tuple[str, Any]]:
    return etree.iterparse(source, events=events or ("end",), **SAFE_OPTIONS)


_ASSERTION = "assertion test is false"


def _xml_packet_issues(
    reopen: Callable[[], BinaryIO], size: int, name: str | None
) -> list[ValidationIssue]:
    import xmlschema

    schema = xml_schema(PACKET_XSD)
    if size > SMALL_BODY_BYTES:
        # Lazy: xmlschema prunes the tree as it goes, so memory stays flat for big packets.
        try:
            resource = xmlschema.XMLResource(reopen(), lazy=True, iterparse=_safe_iterparse)
            return _xml_issues(schema, resource, name)
        except KeyError:
            pass  # xmlschema's lazy mode trips over a root without children; redo it whole
    resource = xmlschema.XMLResource(reopen(), lazy=False, iterparse=_safe_iterparse)
    return _xml_issues(schema, resource, name)


def _xml_issues(
    schema: xmlschema.XMLSchema11, resource: Any, name: str | None
) -> list[ValidationIssue]:
    issues = []
    for error in schema.iter_errors(resource):
        reason = error.reason or error.message
        if reason == _ASSERTION:
            reason = nested_field()
        where = f" (at {error.path})" if error.path else ""
        issues.append(
            ValidationIssue(Location(file=name, line=error.sourceline), f"{reason}{where}")
        )
    return issues


def _json_issues(schema_name: str, doc: Any, name: str | None) -> list[ValidationIssue]:
    validator = json_validator(schema_name)
    return [
        ValidationIssue(Location(file=name, path=error.json_path), error.message)
        for error in validator.iter_errors(doc)
    ]


def _validate_small(
    source: Source | bytes, *, format: PacketFormat, xsd: str, json_schema: str
) -> list[ValidationIssue]:
    name = None if isinstance(source, bytes) else source_name(source, None)
    data = _read_small(source)
    if data is None:
        return [
            ValidationIssue(
                Location(file=name), f"the body is larger than the {MAX_LIST_BYTES}-byte limit"
            )
        ]
    if format == "json":
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            return [ValidationIssue(Location(file=name), f"not well-formed JSON: {exc}")]
        return _json_issues(json_schema, doc, name)
    try:
        scan_prolog(data, name=name, complete=True)
        tree = etree.fromstring(data, safe_parser())
    except PacketError as exc:
        return [ValidationIssue(exc.location, exc.message)]
    except etree.XMLSyntaxError as exc:
        detail = (exc.msg or "").split(", line ")[0]
        return [
            ValidationIssue(
                Location(file=name, line=exc.lineno or None), f"not well-formed XML: {detail}"
            )
        ]
    return _xml_issues(xml_schema(xsd), tree, name)


def _read_small(source: Source | bytes) -> bytes | None:
    if isinstance(source, bytes):
        data = source
    elif isinstance(source, str | os.PathLike):
        with open(source, "rb") as f:
            data = f.read(MAX_LIST_BYTES + 1)
    else:
        data = source.read(MAX_LIST_BYTES + 1)
    return None if len(data) > MAX_LIST_BYTES else data


@contextmanager
def _replayable(source: Source, *, max_bytes: int) -> Iterator[Callable[[], BinaryIO]]:
    """A way to read `source` from the start more than once (paths, seekable or spooled files).

    A one-way stream is spooled, but never more than `max_bytes + 1` bytes of it: enough for
    the reader to report it too large.
    """
    if isinstance(source, str | os.PathLike):
        opened: list[BinaryIO] = []

        def reopen_path() -> BinaryIO:
            f = open(source, "rb")  # noqa: SIM115 - closed on exit below
            opened.append(f)
            return f

        try:
            yield reopen_path
        finally:
            for f in opened:
                f.close()
        return
    if _seekable(source):
        start = source.tell()

        def rewind() -> BinaryIO:
            source.seek(start)
            return _Unclosable(source)

        yield rewind
        return
    with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as spool:
        left = max_bytes + 1
        while left > 0 and (chunk := source.read(min(left, 1024 * 1024))):
            spool.write(chunk)
            left -= len(chunk)

        def respool() -> BinaryIO:
            spool.seek(0)
            return _Unclosable(spool)  # type: ignore[arg-type]

        yield respool


def _seekable(stream: BinaryIO) -> bool:
    try:
        return stream.seekable()
    except (AttributeError, ValueError):
        return False


class _Unclosable(io.RawIOBase):
    """A view of a caller's stream that readers may 'close' without closing the stream."""

    def __init__(self, inner: BinaryIO) -> None:
        self._inner = inner

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return _seekable(self._inner)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._inner.seek(offset, whence)

    def tell(self) -> int:
        return self._inner.tell()

    def close(self) -> None:
        """Deliberately nothing: the stream belongs to the caller (or to `_replayable`)."""

    def read(self, size: int = -1) -> bytes:
        return self._inner.read(size)

    def readinto(self, buffer: Any) -> int:
        data = self._inner.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)
