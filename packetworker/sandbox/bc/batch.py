"""JSON `$batch`: up to `MAX_BATCH` operations in one request, each answered on its own;
`Isolation: snapshot` makes the batch all-or-nothing, `Prefer: continue-on-error` keeps going
after a failed operation."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from packetworker.sandbox.bc.errors import ODataError
from packetworker.sandbox.bc.odata import API
from packetworker.sandbox.bc.routes import EntityRoutes
from packetworker.sandbox.bc.store import Change

MAX_BATCH = 100


def run_batch(routes: EntityRoutes, body, headers) -> tuple[dict, list[Change]]:
    """The batch's answer, and the changes it committed (to notify)."""
    requests = (body or {}).get("requests")
    if not isinstance(requests, list):
        raise ODataError(400, "BadRequest", "The batch body must have a 'requests' array.")
    if len(requests) > MAX_BATCH:
        raise ODataError(
            400,
            "BadRequest",
            f"The batch contains {len(requests)} operations; the maximum is {MAX_BATCH}.",
        )
    atomic = headers.get("Isolation", "").lower() == "snapshot"
    keep_going = "continue-on-error" in headers.get("Prefer", "")
    responses, committed = [], []
    db = routes.db
    with db.lock:
        before = db.snapshot() if atomic else None
        failed = False
        for item in requests:
            response, changes = _one(routes, item)
            responses.append(response)
            if 200 <= response["status"] < 300:
                committed.extend(changes)
                continue
            failed = True
            if not keep_going:
                break
        if atomic and failed:
            db.restore(before)
            committed = []
    return {"responses": responses}, committed


def _one(routes: EntityRoutes, item: dict) -> tuple[dict, list[Change]]:
    rid = item.get("id")
    method = str(item.get("method", "GET")).upper()
    url = str(item.get("url", ""))
    if "://" in url:
        url = urlsplit(url).path + ("?" + urlsplit(url).query if urlsplit(url).query else "")
        url = url.split(f"/{API}/", 1)[-1]
    path, _, query = url.partition("?")
    args = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
    args = {unquote(k): unquote(v) for k, v in args.items()}
    headers = dict(item.get("headers") or {})
    try:
        if path.lower().startswith("subscriptions"):
            raise ODataError(400, "BadRequest", "Subscriptions cannot be batched.")
        status, out_headers, payload, changes = routes.committed(
            method, path.strip("/"), args, headers, item.get("body")
        )
    except ODataError as exc:
        return {"id": rid, "status": exc.status, "headers": {}, "body": exc.body()}, []
    response = {"id": rid, "status": status, "headers": out_headers}
    if payload is not None:
        response["body"] = payload
    return response, changes
