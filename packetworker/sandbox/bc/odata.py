"""OData plumbing shared by the emulator's routes: URL segments, integer query options,
BC's 429 and the JSON answer with its OData headers."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from werkzeug.wrappers import Response

from packetworker.sandbox import base
from packetworker.sandbox.bc.errors import ODataError

API = "api/v2.0"
_SEGMENT = re.compile(r"^([A-Za-z$][\w.$]*)(?:\((.*)\))?$")


def path_segments(path: str) -> list[tuple[str, str | None]]:
    """`companies(42)/items` → [("companies", "42"), ("items", None)]; quotes are dropped."""
    out = []
    for part in filter(None, path.split("/")):
        match = _SEGMENT.match(unquote(part))
        if not match:
            raise ODataError(400, "BadRequest_InvalidRequestUrl", f"Invalid segment '{part}'.")
        key = match.group(2)
        if key is not None:
            key = key.strip("'") or None
        out.append((match.group(1), key))
    return out


def int_arg(args: dict, name: str) -> int:
    try:
        return max(0, int(args.get(name, 0)))
    except ValueError:
        raise ODataError(400, "BadRequest", f"{name} must be a non-negative integer.") from None


def too_many(
    retry_after: int | None,
    message: str = "Too many requests reached. Actual (6001). Maximum (6000).",
) -> ODataError:
    """BC's 429; `retry_after` None sends no Retry-After (business-central.md §5.4)."""
    headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
    return ODataError(429, "Application_TooManyRequests", message, headers=headers)


def json_response(status: int, payload: Any, headers: dict | None = None) -> Response:
    """BC's JSON answer (`sandbox.base.json_response`) with its OData headers."""
    response = base.json_response(
        status, payload, headers, content_type="application/json; odata.metadata=minimal"
    )
    response.headers["OData-Version"] = "4.0"
    return response
