"""Pure `$batch` codec: build a `multipart/mixed` request body and parse the response.

A batch is a list of HTTP requests sent as one. Writes can be grouped in a *change set*,
which Dataverse applies atomically (all or nothing); a `Content-ID` lets a later operation
of the same change set refer to an earlier one's new record as `$<id>` (in its URL or an
`@odata.bind`). Responses come back in request order, each with its own status line.
"""

from __future__ import annotations

import email
import email.policy
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from packetworker.targets.dataverse.errors import DataverseError, error_for
from packetworker.targets.dataverse.odata import entity_id

CRLF = "\r\n"


@dataclass(frozen=True, slots=True)
class BatchOperation:
    """One request inside a batch. `path` is relative to the API root (`accounts`,
    `accounts(<guid>)`) or a change-set reference such as `$1`."""

    method: str
    path: str
    body: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    content_id: str | None = None


@dataclass(frozen=True, slots=True)
class BatchResponse:
    """One answer of a batch, in the order of the operations sent."""

    status: int
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    content_id: str | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> Any:
        return json.loads(self.body) if self.body.strip() else None

    def error(self) -> DataverseError | None:
        """The typed error of a failed answer (`DuplicateRecord`, ...), None if it succeeded."""
        if self.ok:
            return None
        try:
            detail = (self.json() or {}).get("error") or {}
        except (ValueError, AttributeError):
            detail = {}
        message = str(detail.get("message") or self.body[:300].decode("utf-8", "replace"))
        return error_for(self.status, str(detail.get("code") or ""), message)

    @property
    def entity_id(self) -> str | None:
        """The new or updated record's GUID, when the answer names one."""
        uri = self.headers.get("odata-entityid") or self.headers.get("location")
        return entity_id(uri) if uri else None


def encode_batch(
    operations: Sequence[BatchOperation],
    *,
    api_path: str,
    changeset: bool,
    boundary: str | None = None,
) -> tuple[str, bytes]:
    """(`Content-Type` header, body) of a `$batch` request.

    With `changeset=True` every operation goes into one change set (so none may be a GET)
    and operations without a `Content-ID` are numbered 1, 2, ... in order.
    """
    if not operations:
        raise ValueError("a batch needs at least one operation")
    batch_boundary = boundary or f"batch_{uuid.uuid4()}"
    lines: list[str] = []
    if changeset:
        if any(op.method.upper() == "GET" for op in operations):
            raise ValueError("a change set cannot contain GET requests")
        cs_boundary = f"changeset_{uuid.uuid4()}"
        lines += [f"--{batch_boundary}", f"Content-Type: multipart/mixed; boundary={cs_boundary}"]
        lines.append("")
        for number, op in enumerate(operations, start=1):
            lines.append(f"--{cs_boundary}")
            lines += _encode_part(op, api_path=api_path, content_id=op.content_id or str(number))
        lines.append(f"--{cs_boundary}--")
    else:
        for op in operations:
            lines.append(f"--{batch_boundary}")
            lines += _encode_part(op, api_path=api_path, content_id=op.content_id)
    lines += [f"--{batch_boundary}--", ""]
    return f"multipart/mixed; boundary={batch_boundary}", CRLF.join(lines).encode()


def encode_changesets(
    groups: Sequence[Sequence[BatchOperation]],
    *,
    api_path: str,
    boundary: str | None = None,
) -> tuple[str, bytes]:
    """(`Content-Type`, body) of a `$batch` holding one change set per group.

    Each group is applied atomically on its own (one document: a header and its lines), so
    one failing group leaves the others applied when the batch asks to continue on error.
    Every operation needs a `Content-ID` unique in the batch (a group refers to its own
    earlier operations as `$<id>`).
    """
    if not groups or not all(groups):
        raise ValueError("a batch needs at least one non-empty change set")
    batch_boundary = boundary or f"batch_{uuid.uuid4()}"
    lines: list[str] = []
    for group in groups:
        if any(op.method.upper() == "GET" for op in group):
            raise ValueError("a change set cannot contain GET requests")
        if any(op.content_id is None for op in group):
            raise ValueError("every operation of a change set group needs a content_id")
        cs_boundary = f"changeset_{uuid.uuid4()}"
        lines += [f"--{batch_boundary}", f"Content-Type: multipart/mixed; boundary={cs_boundary}"]
        lines.append("")
        for op in group:
            lines.append(f"--{cs_boundary}")
            lines += _encode_part(op, api_path=api_path, content_id=op.content_id)
        lines.append(f"--{cs_boundary}--")
    lines += [f"--{batch_boundary}--", ""]
    return f"multipart/mixed; boundary={batch_boundary}", CRLF.join(lines).encode()


def _encode_part(op: BatchOperation, *, api_path: str, content_id: str | None) -> list[str]:
    lines = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if content_id is not None:
        lines.append(f"Content-ID: {content_id}")
    lines.append("")
    target = op.path if op.path.startswith("$") else api_path.rstrip("/") + "/" + op.path
    lines.append(f"{op.method.upper()} {target} HTTP/1.1")
    headers = dict(op.headers)
    if op.body is not None:
        headers.setdefault("Content-Type", "application/json; type=entry")
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append("")
    lines.append(json.dumps(op.body) if op.body is not None else "")
    return lines


def decode_batch(content_type: str, body: bytes) -> list[BatchResponse]:
    """Every answer in a `$batch` response, change sets flattened, in order."""
    envelope = f"Content-Type: {content_type}\r\n\r\n".encode() + body
    message = email.message_from_bytes(envelope, policy=email.policy.compat32)
    if not message.is_multipart():
        raise ValueError("a $batch response must be multipart/mixed")
    responses: list[BatchResponse] = []
    for part in message.get_payload():
        if part.is_multipart():
            for inner in part.get_payload():
                responses.append(_decode_part(inner))
        else:
            responses.append(_decode_part(part))
    return responses


def _decode_part(part: email.message.Message) -> BatchResponse:
    raw = part.get_payload(decode=True) or b""
    head, _, content = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
    status_line, *header_lines = head.decode("latin-1").split("\n")
    fields = status_line.split(" ", 2)
    if len(fields) < 2 or not fields[0].startswith("HTTP/") or not fields[1].isdigit():
        raise ValueError(f"not an HTTP status line: {status_line[:80]!r}")
    headers = {}
    for line in header_lines:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return BatchResponse(
        status=int(fields[1]),
        headers=headers,
        body=content.strip(b"\n"),
        content_id=part.get("Content-ID"),
    )
