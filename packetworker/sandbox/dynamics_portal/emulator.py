"""An emulator of the Dynamics portal proxy (seed 000) over real HTTP.

It serves the contract's five endpoints under its doubled prefix, issues session tokens
that expire (on `clock`, which tests move with `clock.advance()`), refuses unknown client
ids, scopes and expired or unknown tokens with 401, checks that writes name a Dynamics
Web API endpoint, and (via `faults`) answers 429 storms. Records live in `records`.

Seed 000 shows success bodies only; what the proxy answers for a duplicate is not
documented, and Dataverse behind it runs no duplicate detection unless asked (crm.md A.9).
So by default nothing is refused as a duplicate; `unique_columns` switch a duplicate rule
on, answered as `duplicate_status` 409 (a proxy's own conflict) or 500 (Dataverse's
`0x80040333` passed through), both with Dataverse's error body.
"""

from __future__ import annotations

import re
import secrets
import threading
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from werkzeug.wrappers import Request, Response

from packetworker.sandbox.base import Clock
from packetworker.sandbox.crm_http import Emulator, json_response

PREFIX = "/api/v1/dynamics-portal/api/v1/dynamics-portal"
DUPLICATE = (
    "A record was not created or updated because a duplicate of the current record already exists."
)
ENDPOINT_RE = re.compile(r"^/api/data/v9\.\d/[a-z_]+$")


class DynamicsPortalEmulator(Emulator):
    """`with DynamicsPortalEmulator(clients={"svc": "Dynamics365.ReadWrite"}) as proxy: ...`"""

    def __init__(
        self,
        *,
        clients: Mapping[str, str] | None = None,
        tenant: str = "hlf-ireland.crm4.dynamics.com",
        session_lifetime: float = 3600.0,
        unique_columns: tuple[str, ...] = (),
        duplicate_status: int = 409,
        clock: Clock | None = None,
    ) -> None:
        super().__init__()
        self.clients = dict(clients or {"service-account": "Dynamics365.ReadWrite"})
        self.tenant = tenant
        self.session_lifetime = session_lifetime
        self.unique_columns = unique_columns
        self.duplicate_status = duplicate_status
        self.clock = clock or Clock()
        self.sessions: dict[str, float] = {}  # token -> expiry (clock seconds)
        self.authentications: list[dict[str, Any]] = []
        self.records: dict[str, dict[str, Any]] = {}  # id -> {"endpoint": ..., "fields": {...}}
        self._store = threading.Lock()

    def expire_sessions(self) -> None:
        """Drop every session, as a proxy restart would."""
        self.sessions.clear()

    def is_api(self, request: Request) -> bool:
        return not request.path.endswith("/authenticate")

    def late_dropped(self) -> Response:
        # seed 000 documents no error answers; the proxy passes Dataverse's error shape on.
        return json_response(504, {"error": {"code": "", "message": "Gateway Timeout"}})

    def dispatch(self, request: Request) -> Response:
        if not request.path.startswith(PREFIX + "/"):
            return json_response(404, {"error": {"code": "NotFound", "message": "No such route"}})
        path = request.path[len(PREFIX) :]
        body = request.get_json(silent=True) or {}
        if path == "/authenticate" and request.method == "POST":
            return self._authenticate(body)
        if not self._authorized(request):
            return json_response(
                401, {"error": {"code": "Unauthorized", "message": "Invalid or expired session"}}
            )
        with self._store:
            if path == "/records" and request.method == "POST":
                return self._create(body)
            match = re.fullmatch(r"/records/([^/]+)", path)
            if match:
                record_id = match.group(1)
                if record_id not in self.records:
                    return json_response(
                        404,
                        {"error": {"code": "NotFound", "message": f"Record {record_id} not found"}},
                    )
                if request.method == "GET":
                    stored = self.records[record_id]
                    return json_response(200, {"dynamics_record_id": record_id, **stored["fields"]})
                if request.method == "PUT":
                    return self._update(record_id, body)
                if request.method == "DELETE":
                    del self.records[record_id]
                    return json_response(
                        200,
                        {
                            "deleted": True,
                            "dynamics_record_id": record_id,
                            "deleted_at": self._stamp(),
                        },
                    )
        return json_response(
            405, {"error": {"code": "MethodNotAllowed", "message": request.method}}
        )

    def _authenticate(self, body: dict[str, Any]) -> Response:
        self.authentications.append(
            {"client_id": body.get("client_id"), "scope": body.get("scope")}
        )
        client_id, scope = body.get("client_id"), body.get("scope")
        if client_id not in self.clients or self.clients[client_id] != scope:
            return json_response(401, {"authenticated": False, "error": "unknown client or scope"})
        token = secrets.token_urlsafe(24)
        expires = self.clock.now() + self.session_lifetime
        self.sessions[token] = expires
        return json_response(
            200,
            {
                "authenticated": True,
                "session_token": token,
                "expires_at": _iso(expires),
                "tenant": self.tenant,
            },
        )

    def _authorized(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        expiry = self.sessions.get(token)
        return scheme.lower() == "bearer" and expiry is not None and expiry > self.clock.now()

    def _create(self, body: dict[str, Any]) -> Response:
        endpoint, payload = body.get("endpoint"), body.get("payload")
        problem = self._check(endpoint, payload, record_id=None)
        if problem is not None:
            return problem
        record_id = str(uuid.uuid4())
        self.records[record_id] = {"endpoint": endpoint, "fields": dict(payload)}
        return json_response(
            201,
            {
                "dynamics_record_id": record_id,
                "endpoint": endpoint,
                "status": "created",
                "created_at": self._stamp(),
            },
        )

    def _update(self, record_id: str, body: dict[str, Any]) -> Response:
        endpoint, payload = body.get("endpoint"), body.get("payload")
        problem = self._check(endpoint, payload, record_id=record_id)
        if problem is not None:
            return problem
        stored = self.records[record_id]
        if stored["endpoint"] != endpoint:
            return json_response(
                400,
                {
                    "error": {
                        "code": "BadRequest",
                        "message": f"Record {record_id} is not in {endpoint}",
                    }
                },
            )
        stored["fields"].update(payload)
        return json_response(
            200,
            {
                "dynamics_record_id": record_id,
                "endpoint": endpoint,
                "status": "updated",
                "updated_at": self._stamp(),
            },
        )

    def _check(self, endpoint: Any, payload: Any, *, record_id: str | None) -> Response | None:
        if not isinstance(endpoint, str) or not ENDPOINT_RE.match(endpoint):
            return json_response(
                400, {"error": {"code": "BadRequest", "message": f"Invalid endpoint {endpoint!r}"}}
            )
        if not isinstance(payload, dict):
            return json_response(
                400, {"error": {"code": "BadRequest", "message": "payload must be an object"}}
            )
        for column in self.unique_columns:
            value = payload.get(column)
            if value in (None, ""):
                continue
            for other_id, other in self.records.items():
                same = str(other["fields"].get(column, "")).casefold() == str(value).casefold()
                if other_id != record_id and other["endpoint"] == endpoint and same:
                    return json_response(  # undocumented (seed 000): a switchable variant
                        self.duplicate_status,
                        {
                            "error": {
                                "code": "0x80040333",
                                "message": DUPLICATE,
                            }
                        },
                    )
        return None

    def _stamp(self) -> str:
        return _iso(self.clock.now())


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
