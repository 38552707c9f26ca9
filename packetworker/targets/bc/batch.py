"""JSON `$batch` payloads and results (pure: no I/O).

BC accepts at most 100 operations per `$batch`. Without `Isolation: snapshot` it stops at the
first failing operation and keeps what earlier ones did; with it, a failure rolls back the
whole batch, although the responses of earlier operations still show their success statuses.
`parse_responses` turns that into one `BatchResponse` per request, in request order, with
`committed` telling the truth.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from packetworker.targets.bc.errors import BCError, error_from_response

MAX_BATCH_OPERATIONS = 100


@dataclass(frozen=True, slots=True)
class BatchRequest:
    """One operation. `path` is relative to the company (`items`, `salesOrders(<id>)`)."""

    method: str
    path: str
    body: dict[str, Any] | None = None
    etag: str | None = None  # sent as If-Match; required by BC for PATCH and DELETE
    id: str | None = None  # defaults to the position in the call
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BatchResponse:
    """The outcome of one `BatchRequest`.

    `status` is None when BC never ran the operation (an earlier one failed). `committed` is
    False when the change is not in BC: failed, not run, or rolled back by an atomic batch.
    """

    id: str
    status: int | None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    committed: bool = False

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def error(self) -> BCError | None:
        """The operation's error as a `BCError`, or None when it succeeded or never ran."""
        if self.status is None or self.ok:
            return None
        return error_from_response(self.status, self.body)


def chunks(requests: Sequence[BatchRequest], size: int = MAX_BATCH_OPERATIONS) -> Iterator[list]:
    """Split `requests` into lists BC accepts in one call."""
    for start in range(0, len(requests), size):
        yield list(requests[start : start + size])


def build_payload(
    requests: Sequence[BatchRequest], *, url_prefix: str, first_id: int = 1
) -> dict[str, Any]:
    """The `$batch` body; `url_prefix` (e.g. `companies(<id>)/`) makes paths API-relative."""
    items = []
    for n, req in enumerate(requests, start=first_id):
        headers = {"Content-Type": "application/json", **req.headers}
        if req.etag is not None:
            headers["If-Match"] = req.etag
        item: dict[str, Any] = {
            "id": req.id or str(n),
            "method": req.method.upper(),
            "url": url_prefix + req.path.lstrip("/"),
            "headers": headers,
        }
        if req.body is not None:
            item["body"] = req.body
        items.append(item)
    return {"requests": items}


def parse_responses(payload: dict[str, Any], sent: dict[str, Any], *, atomic: bool) -> list:
    """One `BatchResponse` per sent request (request order), from BC's `responses[]`."""
    by_id: dict[str, dict] = {}
    for position, resp in enumerate(payload.get("responses") or []):
        key = resp.get("id")
        # BC echoes ids; an absent id is matched by position, as BC answers in order.
        by_id[str(key) if key is not None else sent["requests"][position]["id"]] = resp
    any_failed = any(not 200 <= int(r.get("status", 0)) < 300 for r in by_id.values())
    any_missing = len(by_id) < len(sent["requests"])
    rolled_back = atomic and (any_failed or any_missing)
    out = []
    for item in sent["requests"]:
        resp = by_id.get(item["id"])
        if resp is None:
            out.append(BatchResponse(id=item["id"], status=None))
            continue
        status = int(resp.get("status", 0))
        out.append(
            BatchResponse(
                id=item["id"],
                status=status,
                body=resp.get("body"),
                headers=dict(resp.get("headers") or {}),
                committed=200 <= status < 300 and not rolled_back,
            )
        )
    return out
