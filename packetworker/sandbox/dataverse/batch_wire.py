"""The Web API's multipart `$batch` wire format: reading the request envelope and its
`application/http` parts, writing the response parts (change sets nested in their own
boundary). What each part does is the emulator's business."""

from __future__ import annotations

import email
import email.message
import email.policy
import json
import uuid
from urllib.parse import urlsplit

from werkzeug.datastructures import Headers
from werkzeug.wrappers import Request

API_PREFIX = "/api/data/v9.2/"


def parse_batch(request: Request) -> email.message.Message:
    """The batch body as a MIME message (its Content-Type header carries the boundary)."""
    content_type = request.headers.get("Content-Type", "")
    envelope = f"Content-Type: {content_type}\r\n\r\n".encode() + request.get_data()
    return email.message_from_bytes(envelope, policy=email.policy.compat32)


def parse_request(part) -> tuple[str, str, Headers, bytes]:
    raw = part.get_payload(decode=True) or b""
    head, _, body = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
    request_line, *header_lines = head.decode("latin-1").split("\n")
    method, url, _version = request_line.split(" ", 2)
    headers = Headers()
    for line in header_lines:
        name, sep, value = line.partition(":")
        if sep:
            headers.add(name.strip(), value.strip())
    target = urlsplit(url)
    path = target.path
    if API_PREFIX in path:
        path = path.split(API_PREFIX, 1)[1]
    if target.query:
        path = f"{path}?{target.query}"
    return method.upper(), path, headers, body.strip()


def response_part(boundary: str, content_id, status: int, headers, payload) -> str:
    lines = [f"--{boundary}", "Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if content_id:
        lines.append(f"Content-ID: {content_id}")
    lines += ["", f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if payload is not None:
        lines.append("Content-Type: application/json; odata.metadata=minimal")
    lines += ["", json.dumps(payload) if payload is not None else "", ""]
    return "\r\n".join(lines)


_REASONS = {
    200: "OK",
    201: "Created",
    204: "No Content",
    400: "Bad Request",
    404: "Not Found",
    412: "Precondition Failed",
    500: "Internal Server Error",
}


def changeset_part(boundary: str, answers: list[tuple]) -> str:
    """A change set's answers, nested under their own boundary."""
    cs = f"changesetresponse_{uuid.uuid4()}"
    inner = "".join(response_part(cs, *a) for a in answers)
    return (
        f"--{boundary}\r\nContent-Type: multipart/mixed; boundary={cs}\r\n\r\n{inner}--{cs}--\r\n"
    )
