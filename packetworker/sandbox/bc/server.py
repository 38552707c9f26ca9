"""`BCSandbox`: a Business Central API v2.0 emulator on a real HTTP port (werkzeug, threaded).

Routes (`api_url` = `http://127.0.0.1:<port>/v2.0`, like BC's):
- `POST /{tenant}/oauth2/v2.0/token` — client_credentials and rotating refresh_token grants;
- `/v2.0/{tenant}/{environment}/api/v2.0/...` — companies, company-scoped entity sets with
  OData query options and server-driven paging, JSON `$batch`, and `subscriptions`.

Tests read and seed the in-memory store, inspect the request log, and flip fault switches
(a 429 storm, expiring every token, holding requests in flight).
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import unquote, urlencode, urlsplit

from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from packetworker.sandbox.bc.clock import isoformat, utcnow
from packetworker.sandbox.bc.entities import ENTITY_SETS
from packetworker.sandbox.bc.errors import ODataError
from packetworker.sandbox.bc.filters import FilterError, compile_filter
from packetworker.sandbox.bc.store import Change, Store, new_etag
from packetworker.sandbox.bc.webhooks import Handshake, Notifier, handshake, require_handshake

API = "api/v2.0"
MAX_BATCH = 100
MAX_SUBSCRIPTIONS = 200
SUBSCRIPTION_LIFETIME = timedelta(days=3)
_SEGMENT = re.compile(r"^([A-Za-z$][\w.$]*)(?:\((.*)\))?$")


@dataclass(frozen=True, slots=True)
class LoggedRequest:
    method: str
    path: str
    query: str
    status: int
    user: str | None


@dataclass
class _Token:
    user: str
    expires: datetime


class BCSandbox:
    """A local Business Central; use as a context manager."""

    def __init__(
        self,
        *,
        tenant: str = "sandbox-tenant",
        environment: str = "production",
        client_id: str = "pw-client",
        client_secret: str = "pw-secret",  # noqa: S107 - emulator default
        companies: tuple[str, ...] = ("CRONUS",),
        page_size: int = 50,
        max_concurrent: int = 5,
        token_ttl: int = 3600,
        clock: Callable[[], datetime] | None = None,
        rate_limit: tuple[int, float] | None = None,
        handshake_timeout: float = 5.0,
        handshake_method: str = "POST",
    ) -> None:
        self.tenant = tenant
        self.environment = environment
        self.client_id = client_id
        self.client_secret = client_secret
        self.page_size = page_size
        self.max_concurrent = max_concurrent
        self.token_ttl = token_ttl
        self.clock = clock or utcnow
        self.rate_limit = rate_limit
        self.handshake_timeout = handshake_timeout
        self.handshake_method = handshake_method
        self.db = Store(clock=self.clock)
        for name in companies:
            self.db.add_company(name)
        self.requests: list[LoggedRequest] = []
        self.token_grants: list[str] = []
        self.handshakes: list[Handshake] = []
        self.subscriptions: dict[str, dict] = {}
        self.max_in_flight = 0
        self._tokens: dict[str, _Token] = {}
        self._refresh_tokens: dict[str, str] = {}
        self._in_flight: dict[str, int] = {}
        self._window: dict[str, deque] = {}
        self._throttle_left = 0
        self._throttle_retry_after = 1
        self._gate = threading.Event()
        self._gate.set()
        self._state = threading.Condition()
        self._notifier = Notifier(on_gone=self.delete_subscription)
        self._server = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -----------------------------------------------------------------------

    def __enter__(self) -> BCSandbox:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._server = make_server(
            "127.0.0.1", 0, self._wsgi, threaded=True, request_handler=_QuietHandler
        )
        self._server.daemon_threads = True
        # A short poll interval keeps shutdown (and so every test using a sandbox) quick.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        self._notifier.start()

    def stop(self) -> None:
        self._gate.set()
        self._notifier.stop()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    @property
    def api_url(self) -> str:
        """Use as `bc_api_url`."""
        return f"{self.root}/v2.0"

    @property
    def token_url(self) -> str:
        return f"{self.root}/{self.tenant}/oauth2/v2.0/token"

    @property
    def base_url(self) -> str:
        return f"{self.api_url}/{self.tenant}/{self.environment}/{API}"

    # --- test helpers: data --------------------------------------------------------------

    def company(self, key: str | None = None) -> dict:
        """A company by id or name; the first one when `key` is None."""
        with self.db.lock:
            if key is None:
                return dict(next(iter(self.db.companies.values())))
            return dict(self.db.company(key))

    def add_company(self, name: str) -> dict:
        with self.db.lock:
            return dict(self.db.add_company(name))

    def store(self, company: str | None, entity_set: str) -> list[dict]:
        """Copies of every entity of `entity_set` in `company` (id or name)."""
        with self.db.lock:
            cid = self.company(company)["id"]
            return [dict(row) for row in self.db.table(cid, entity_set).values()]

    def add(self, entity_set: str, company: str | None = None, **fields: Any) -> dict:
        """Seed an entity (no validation of read-only fields; no webhooks)."""
        with self.db.lock:
            cid = self.company(company)["id"]
            return dict(self.db.insert(cid, entity_set, fields, seed=True))

    def add_item(self, company: str | None = None, **fields: Any) -> dict:
        fields.setdefault("displayName", f"Item {secrets.token_hex(3)}")
        fields.setdefault("baseUnitOfMeasureCode", "PCS")
        return self.add("items", company, **fields)

    def add_customer(self, company: str | None = None, **fields: Any) -> dict:
        fields.setdefault("displayName", f"Customer {secrets.token_hex(3)}")
        return self.add("customers", company, **fields)

    def add_shipment(
        self, *, customer_number: str, lines: list[dict], company: str | None = None, **fields
    ) -> dict:
        """A posted sales shipment with `salesShipmentLines`."""
        with self.db.lock:
            cid = self.company(company)["id"]
            customer = next(
                c
                for c in self.db.table(cid, "customers").values()
                if c["number"] == customer_number
            )
            fields.setdefault("postingDate", isoformat(self.clock())[:10])
            header = self.db.insert(
                cid,
                "salesShipments",
                {
                    "customerId": customer["id"],
                    "customerNumber": customer_number,
                    "customerName": customer["displayName"],
                    **fields,
                },
                seed=True,
            )
            for n, line in enumerate(lines, start=1):
                line = {"sequence": n * 10000, "documentNo": header["number"], **line}
                self.db.insert(cid, "salesShipmentLines", line, parent_id=header["id"], seed=True)
            return dict(header)

    def add_invoice(
        self,
        *,
        customer_number: str,
        lines: list[dict],
        company: str | None = None,
        status: str = "Open",
        **fields,
    ) -> dict:
        """A posted sales invoice (status Open by default) with `salesInvoiceLines`."""
        with self.db.lock:
            cid = self.company(company)["id"]
            fields.setdefault("invoiceDate", isoformat(self.clock())[:10])
            header = self.db.insert(
                cid,
                "salesInvoices",
                {
                    "customerNumber": customer_number,
                    "status": status,
                    "salesInvoiceLines": lines,
                    **fields,
                },
                seed=True,
            )
            return dict(header)

    # --- test helpers: faults, tokens, subscriptions -------------------------------------

    def throttle(self, times: int, *, retry_after: int = 1) -> None:
        """The next `times` API requests get 429 with `Retry-After: retry_after`."""
        with self._state:
            self._throttle_left = times
            self._throttle_retry_after = retry_after

    def expire_tokens(self) -> None:
        """Every access token issued so far is now expired."""
        with self._state:
            past = self.clock() - timedelta(seconds=1)
            for token in self._tokens.values():
                token.expires = past

    def issue_refresh_token(self) -> str:
        """A refresh token, as the authorization-code flow would hand out."""
        token = secrets.token_urlsafe(32)
        with self._state:
            self._refresh_tokens[token] = self.client_id
        return token

    @contextmanager
    def holding_requests(self) -> Iterator[None]:
        """API requests wait inside the server until the block exits (to observe concurrency)."""
        self._gate.clear()
        try:
            yield
        finally:
            self._gate.set()

    def wait_in_flight(self, count: int, timeout: float = 10.0) -> bool:
        with self._state:
            return self._state.wait_for(
                lambda: sum(self._in_flight.values()) >= count, timeout=timeout
            )

    def wait_for_deliveries(self, count: int, timeout: float = 10.0):
        return self._notifier.wait(count, timeout)

    @property
    def deliveries(self):
        return list(self._notifier.deliveries)

    def expire_subscription(self, subscription_id: str) -> None:
        with self.db.lock:
            sub = self.subscriptions[subscription_id]
            sub["expirationDateTime"] = isoformat(self.clock() - timedelta(seconds=1))

    def delete_subscription(self, subscription_id: str) -> None:
        with self.db.lock:
            self.subscriptions.pop(subscription_id, None)

    # --- WSGI ----------------------------------------------------------------------------

    def _wsgi(self, environ, start_response):
        request = Request(environ)
        user: str | None = None
        try:
            if request.path == f"/{self.tenant}/oauth2/v2.0/token":
                response = self._token_endpoint(request)
            else:
                user = self._authenticate(request)
                response = self._limited(user, request)
        except ODataError as exc:
            response = _json_response(exc.status, exc.body(), exc.headers)
        with self._state:
            self.requests.append(
                LoggedRequest(
                    request.method,
                    request.path,
                    request.query_string.decode(),
                    response.status_code,
                    user,
                )
            )
        return response(environ, start_response)

    def _token_endpoint(self, request: Request) -> Response:
        form = request.form
        client_id, secret = form.get("client_id"), form.get("client_secret")
        if request.authorization and request.authorization.type == "basic":
            client_id = request.authorization.username
            secret = request.authorization.password
        grant = form.get("grant_type", "")
        if client_id != self.client_id or secret != self.client_secret:
            return _oauth_error("invalid_client", "AADSTS7000215: Invalid client secret provided.")
        body: dict[str, Any] = {"token_type": "Bearer", "expires_in": self.token_ttl}
        with self._state:
            if grant == "client_credentials":
                if not form.get("scope", "").endswith("/.default"):
                    return _oauth_error("invalid_scope", "AADSTS1002012: scope must be /.default")
            elif grant == "refresh_token":
                old = form.get("refresh_token", "")
                if self._refresh_tokens.pop(old, None) is None:
                    return _oauth_error("invalid_grant", "AADSTS70008: refresh token expired.")
                new = secrets.token_urlsafe(32)
                self._refresh_tokens[new] = client_id
                body["refresh_token"] = new
            else:
                return _oauth_error("unsupported_grant_type", f"grant {grant!r} unsupported")
            token = _jwt_like(client_id)
            self._tokens[token] = _Token(
                client_id, self.clock() + timedelta(seconds=self.token_ttl)
            )
            self.token_grants.append(grant)
        body["access_token"] = token
        return _json_response(200, body)

    def _authenticate(self, request: Request) -> str:
        header = request.headers.get("Authorization", "")
        token = header[7:] if header.lower().startswith("bearer ") else ""
        with self._state:
            known = self._tokens.get(token)
            if known is None or known.expires <= self.clock():
                raise ODataError(
                    401,
                    "Authentication_InvalidCredentials",
                    "The server has rejected the client credentials.",
                    headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
                )
            return known.user

    def _limited(self, user: str, request: Request) -> Response:
        with self._state:
            if self._throttle_left > 0:
                self._throttle_left -= 1
                raise _too_many(self._throttle_retry_after)
            if self.rate_limit is not None:
                self._check_window(user)
            if self._in_flight.get(user, 0) >= self.max_concurrent:
                raise _too_many(1)
            self._in_flight[user] = self._in_flight.get(user, 0) + 1
            self.max_in_flight = max(self.max_in_flight, sum(self._in_flight.values()))
            self._state.notify_all()
        try:
            self._gate.wait(timeout=30)
            return self._api(request)
        finally:
            with self._state:
                self._in_flight[user] -= 1
                self._state.notify_all()

    def _check_window(self, user: str) -> None:
        limit, seconds = self.rate_limit
        now = self.clock().timestamp()
        window = self._window.setdefault(user, deque())
        while window and window[0] <= now - seconds:
            window.popleft()
        if len(window) >= limit:
            raise _too_many(max(1, int(window[0] + seconds - now + 0.999)))
        window.append(now)

    # --- API routing ---------------------------------------------------------------------

    def _api(self, request: Request) -> Response:
        prefix = f"/v2.0/{self.tenant}/{self.environment}/{API}"
        if not request.path.startswith(prefix):
            raise ODataError(404, "BadRequest_NotFound", "No HTTP resource was found.")
        path = request.path[len(prefix) :].strip("/")
        body = None
        if request.data:
            try:
                body = json.loads(request.data)
            except ValueError:
                raise ODataError(400, "BadRequest", "The request body is not valid JSON.") from None
        if path == "$batch":
            if request.method != "POST":
                raise ODataError(405, "BadRequest_MethodNotAllowed", "$batch needs POST.")
            return _json_response(200, self._batch(body, request.headers))
        status, headers, payload, changes = self._dispatch_committed(
            request.method, path, request.args.to_dict(), dict(request.headers), body
        )
        self._notify(changes)
        return _json_response(status, payload, headers)

    def _dispatch_committed(self, method, path, args, headers, body):
        """Run one operation; return its result and the changes it committed."""
        if path.lower().startswith("subscriptions"):
            # Outside the store lock: the handshake calls out and may take seconds.
            status, out_headers, payload = self._subscriptions(method, path, headers, body)
            return status, out_headers, payload, []
        with self.db.lock:
            mark = len(self.db.changes)
            status, out_headers, payload = self._dispatch(method, path, args, headers, body)
            changes = self.db.changes[mark:]
            del self.db.changes[mark:]
        return status, out_headers, payload, changes

    def _dispatch(self, method, path, args, headers, body) -> tuple[int, dict, Any]:
        segments = _segments(path)
        if not segments:
            sets = [{"name": name, "kind": "EntitySet", "url": name} for name in ENTITY_SETS]
            return 200, {}, {"value": [{"name": "companies", "url": "companies"}, *sets]}
        name, key = segments[0]
        if name == "companies":
            if key is None:
                if len(segments) > 1:
                    raise ODataError(
                        400, "BadRequest_InvalidRequestUrl", "A company key is needed."
                    )
                companies = list(self.db.companies.values())
                return self._collection("companies", companies, args, headers, path)
            company = self.db.company(key)
            rest = segments[1:]
        else:
            company_key = args.get("company") or headers.get("Company")
            if not company_key:
                raise ODataError(
                    400, "BadRequest_InvalidRequestUrl", "A company must be specified."
                )
            company = self.db.company(company_key)
            rest = segments
        if not rest:
            return 200, {}, dict(company)
        return self._entity(method, company["id"], rest, args, headers, body, path)

    def _entity(self, method, cid, rest, args, headers, body, path):
        db = self.db
        (set_name, key), *nav = rest
        if set_name not in ENTITY_SETS:
            raise ODataError(
                404,
                "BadRequest_NotFound",
                f"No HTTP resource was found that matches the request URI '{set_name}'.",
            )
        spec = ENTITY_SETS[set_name]
        parent_id = None
        if nav:
            if key is None or len(nav) > 1 or nav[0][0] not in spec.children:
                raise ODataError(400, "BadRequest_InvalidRequestUrl", f"Unsupported path {path}.")
            db.get(cid, set_name, key)  # 404 if the parent is missing
            parent_id = key.lower()
            set_name, key = spec.children[nav[0][0]], nav[0][1]
            spec = ENTITY_SETS[set_name]
        if_match = headers.get("If-Match") or headers.get("if-match")
        if key is None:
            if method == "GET":
                rows = list(db.table(cid, set_name).values())
                if parent_id:
                    rows = [r for r in rows if r.get(spec.parent_key) == parent_id]
                return self._collection(set_name, rows, args, headers, path, cid=cid)
            if method == "POST":
                if not isinstance(body, dict):
                    raise ODataError(400, "BadRequest", "A JSON object body is required.")
                row = db.insert(cid, set_name, body, parent_id=parent_id)
                return (
                    201,
                    {"Location": f"{set_name}({row['id']})"},
                    self._shape(cid, spec, row, args),
                )
            raise ODataError(
                405, "BadRequest_MethodNotAllowed", f"'{method}' on a collection is not allowed."
            )
        if method == "GET":
            return 200, {}, self._shape(cid, spec, db.get(cid, set_name, key), args)
        if method == "PATCH":
            if not isinstance(body, dict):
                raise ODataError(400, "BadRequest", "A JSON object body is required.")
            row = db.update(cid, set_name, key, body, if_match)
            return 200, {}, self._shape(cid, spec, row, args)
        if method == "DELETE":
            db.delete(cid, set_name, key, if_match)
            return 204, {}, None
        raise ODataError(405, "BadRequest_MethodNotAllowed", f"'{method}' is not allowed.")

    def _collection(self, set_name, rows, args, headers, path, *, cid=None):
        unknown = set(args) - {
            "$filter", "$select", "$expand", "$top", "$skip", "$skiptoken", "$orderby",
            "company", "$count", "$schemaversion",
        }  # fmt: skip
        if unknown:
            raise ODataError(400, "BadRequest_NotFound", f"Unsupported query option {unknown}.")
        if "$filter" in args:
            try:
                predicate = compile_filter(args["$filter"])
                rows = [r for r in rows if predicate(r)]
            except FilterError as exc:
                raise ODataError(400, "BadRequest_NotFound", str(exc)) from None
        if "$orderby" in args:
            for part in reversed(args["$orderby"].split(",")):
                field, _, direction = part.strip().partition(" ")
                rows.sort(
                    key=lambda r, f=field: (r.get(f) is None, r.get(f)), reverse=direction == "desc"
                )
        start = _int_arg(args, "$skip") + _int_arg(args, "$skiptoken")
        end = len(rows)
        if "$top" in args:
            end = min(end, _int_arg(args, "$skip") + _int_arg(args, "$top"))
        page = self.page_size
        prefer = headers.get("Prefer", "")
        match = re.search(r"odata\.maxpagesize=(\d+)", prefer)
        if match:
            page = min(page, max(1, int(match.group(1))))
        chunk = rows[start : min(end, start + page)]
        spec = ENTITY_SETS.get(set_name)
        value = [self._shape(cid, spec, r, args, envelope=False) for r in chunk]
        result: dict[str, Any] = {
            "@odata.context": f"{self.base_url}/$metadata#{set_name}",
            "value": value,
        }
        if start + page < end:
            query = {k: v for k, v in args.items() if k != "$skiptoken"}
            query["$skiptoken"] = str(start + page - _int_arg(args, "$skip"))
            result["@odata.nextLink"] = f"{self.base_url}/{path}?{urlencode(query)}"
        return 200, {}, result

    def _shape(self, cid, spec, row, args, *, envelope=True) -> dict:
        out = dict(row)
        if spec is not None and "$expand" in args:
            for nav in filter(None, (n.strip() for n in args["$expand"].split(","))):
                if nav not in spec.children:
                    raise ODataError(400, "BadRequest_NotFound", f"Cannot expand '{nav}'.")
                child = ENTITY_SETS[spec.children[nav]]
                out[nav] = [
                    dict(r)
                    for r in self.db.table(cid, child.name).values()
                    if r.get(child.parent_key) == row["id"]
                ]
        if "$select" in args:
            keep = {s.strip() for s in args["$select"].split(",")} | {"@odata.etag"}
            if spec is not None:
                keep |= set(spec.children)
            out = {k: v for k, v in out.items() if k in keep}
        return out

    # --- $batch --------------------------------------------------------------------------

    def _batch(self, body, headers) -> dict:
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
        lock = self.db.lock
        with lock:
            before = self.db.snapshot() if atomic else None
            failed = False
            for item in requests:
                response, changes = self._batch_one(item)
                responses.append(response)
                if 200 <= response["status"] < 300:
                    committed.extend(changes)
                    continue
                failed = True
                if not keep_going:
                    break
            if atomic and failed:
                self.db.restore(before)
                committed = []
        self._notify(committed)
        return {"responses": responses}

    def _batch_one(self, item: dict) -> tuple[dict, list[Change]]:
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
            mark = len(self.db.changes)
            status, out_headers, payload = self._dispatch(
                method, path.strip("/"), args, headers, item.get("body")
            )
            changes = self.db.changes[mark:]
            del self.db.changes[mark:]
        except ODataError as exc:
            return {"id": rid, "status": exc.status, "headers": {}, "body": exc.body()}, []
        response = {"id": rid, "status": status, "headers": out_headers}
        if payload is not None:
            response["body"] = payload
        return response, changes

    # --- subscriptions -------------------------------------------------------------------

    def _subscriptions(self, method, path, headers, body):
        segments = _segments(path)
        key = segments[0][1]
        if key is None:
            if method == "GET":
                with self.db.lock:
                    now = self.clock()
                    live = [dict(s) for s in self.subscriptions.values() if not _expired(s, now)]
                return 200, {}, {"value": live}
            if method == "POST":
                return 201, {}, self._create_subscription(body)
            raise ODataError(405, "BadRequest_MethodNotAllowed", f"'{method}' not allowed.")
        with self.db.lock:
            sub = self.subscriptions.get(key)
            if sub is None or _expired(sub, self.clock()):
                raise ODataError(404, "BadRequest_NotFound", f"Subscription '{key}' not found.")
            sub = dict(sub)
        if method == "GET":
            return 200, {}, sub
        if_match = headers.get("If-Match")
        if if_match is None:
            raise ODataError(400, "BadRequest_InvalidToken", "If-Match is required.")
        if if_match != "*" and if_match != sub["@odata.etag"]:
            raise ODataError(
                412, "Request_EntityChanged", "Another user has already changed the record."
            )
        if method == "DELETE":
            self.delete_subscription(key)
            return 204, {}, None
        if method == "PATCH":
            updates = self._check_subscription_body(body or {}, partial=True)
            merged = {**sub, **updates}
            result = handshake(
                merged["notificationUrl"],
                method=self.handshake_method,
                timeout=self.handshake_timeout,
            )
            self.handshakes.append(result)
            require_handshake(result)
            with self.db.lock:
                merged["expirationDateTime"] = isoformat(self.clock() + SUBSCRIPTION_LIFETIME)
                merged["lastModifiedDateTime"] = isoformat(self.clock())
                merged["@odata.etag"] = new_etag()
                self.subscriptions[key] = merged
                return 200, {}, dict(merged)
        raise ODataError(405, "BadRequest_MethodNotAllowed", f"'{method}' not allowed.")

    def _check_subscription_body(self, body: dict, *, partial: bool) -> dict:
        allowed = {"notificationUrl", "resource", "clientState"}
        extra = set(body) - allowed - {"subscriptionId", "@odata.etag", "expirationDateTime"}
        if extra:
            raise ODataError(400, "BadRequest", f"Could not find a property named '{extra.pop()}'.")
        if not partial:
            for name in ("notificationUrl", "resource"):
                if not body.get(name):
                    raise ODataError(
                        400, "BadRequest_RequiredParamNotProvided", f"'{name}' is required."
                    )
        out = {k: v for k, v in body.items() if k in allowed}
        if "resource" in out:
            self._webhook_target(out["resource"])
        return out

    def _webhook_target(self, resource: str) -> tuple[str, str]:
        """(company id, entity set) of a resource, or 400 when BC would refuse it."""
        path = resource.split("://", 1)[-1]
        tail = path.split(f"{API}/", 1)[-1] if f"{API}/" in path else path.strip("/")
        segments = _segments(tail.split("?", 1)[0])
        if len(segments) != 2 or segments[0][0] != "companies" or segments[0][1] is None:
            raise ODataError(400, "BadRequest_InvalidRequestUrl", f"Invalid resource '{resource}'.")
        with self.db.lock:
            company = self.db.company(segments[0][1])
        set_name = segments[1][0]
        spec = ENTITY_SETS.get(set_name)
        if spec is None or not spec.webhooks or segments[1][1] is not None:
            raise ODataError(
                400,
                "BadRequest",
                f"The resource '{set_name}' does not support webhook subscriptions.",
            )
        return company["id"], set_name

    def _create_subscription(self, body) -> dict:
        if not isinstance(body, dict):
            raise ODataError(400, "BadRequest", "A JSON object body is required.")
        fields = self._check_subscription_body(body, partial=False)
        with self.db.lock:
            if len(self.subscriptions) >= MAX_SUBSCRIPTIONS:
                raise ODataError(
                    400, "BadRequest", "The maximum number of subscriptions is reached."
                )
        result = handshake(
            fields["notificationUrl"], method=self.handshake_method, timeout=self.handshake_timeout
        )
        self.handshakes.append(result)
        require_handshake(result)
        now = self.clock()
        sub = {
            "@odata.etag": new_etag(),
            "subscriptionId": secrets.token_hex(16),
            "notificationUrl": fields["notificationUrl"],
            "resource": fields["resource"],
            "userId": "00000000-0000-0000-0000-000000000001",
            "lastModifiedDateTime": isoformat(now),
            "clientState": fields.get("clientState", ""),
            "expirationDateTime": isoformat(now + SUBSCRIPTION_LIFETIME),
            "systemCreatedAt": isoformat(now),
        }
        with self.db.lock:
            self.subscriptions[sub["subscriptionId"]] = sub
        return dict(sub)

    def _notify(self, changes: list[Change]) -> None:
        if not changes:
            return
        by_url: dict[str, list[dict]] = {}
        with self.db.lock:
            now = self.clock()
            for sub in self.subscriptions.values():
                if _expired(sub, now):
                    continue
                try:
                    cid, set_name = self._webhook_target(sub["resource"])
                except ODataError:
                    continue
                for change in changes:
                    if change.company_id != cid or change.entity_set != set_name:
                        continue
                    by_url.setdefault(sub["notificationUrl"], []).append(
                        {
                            "subscriptionId": sub["subscriptionId"],
                            "clientState": sub["clientState"],
                            "expirationDateTime": sub["expirationDateTime"],
                            "resource": f"{API}/companies({cid})/{set_name}({change.entity_id})",
                            "changeType": change.change_type,
                            "lastModifiedDateTime": change.at,
                        }
                    )
        for url, notes in by_url.items():
            self._notifier.send(url, notes)


class _QuietHandler(WSGIRequestHandler):
    """No access log on stderr: the sandbox keeps its own request log."""

    def log_request(self, *args, **kwargs) -> None:
        pass


def _segments(path: str) -> list[tuple[str, str | None]]:
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


def _expired(sub: dict, now: datetime) -> bool:
    return datetime.fromisoformat(sub["expirationDateTime"].replace("Z", "+00:00")) <= now


def _int_arg(args: dict, name: str) -> int:
    try:
        return max(0, int(args.get(name, 0)))
    except ValueError:
        raise ODataError(400, "BadRequest", f"{name} must be a non-negative integer.") from None


def _too_many(retry_after: int) -> ODataError:
    return ODataError(
        429,
        "Application_TooManyRequests",
        "Too many requests reached. Actual (6001). Maximum (6000).",
        headers={"Retry-After": str(retry_after)},
    )


def _json_response(status: int, payload: Any, headers: dict | None = None) -> Response:
    data = b"" if payload is None else json.dumps(payload).encode()
    response = Response(data, status=status, headers=headers or {})
    if payload is not None:
        response.content_type = "application/json; odata.metadata=minimal"
    response.headers["OData-Version"] = "4.0"
    return response


def _oauth_error(error: str, description: str) -> Response:
    return _json_response(400 if error != "invalid_client" else 401, {
        "error": error, "error_description": description,
    })  # fmt: skip


def _jwt_like(subject: str) -> str:
    """An opaque token shaped like a JWT (header.payload.signature), as Entra's look."""

    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    header = part({"typ": "JWT", "alg": "RS256"})
    claims = part({"aud": "https://api.businesscentral.dynamics.com", "appid": subject,
                   "iat": int(time.time()), "jti": secrets.token_hex(8)})  # fmt: skip
    return f"{header}.{claims}.{secrets.token_urlsafe(32)}"
