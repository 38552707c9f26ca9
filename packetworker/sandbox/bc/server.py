"""`BCSandbox`: a Business Central API v2.0 emulator on a real HTTP port (werkzeug, threaded).

Routes (`api_url` = `http://127.0.0.1:<port>/v2.0`, like BC's):
- `GET /{tenant}/oauth2/v2.0/authorize` and `POST /{tenant}/oauth2/v2.0/token` — the
  authorization-code sign-in, client_credentials and rotating refresh_token grants (`auth.py`);
- `/v2.0/{tenant}/{environment}/api/v2.0/...` — companies, company-scoped entity sets with
  OData query options and server-driven paging, bound actions that post documents
  (`routes.py`), JSON `$batch` (`batch.py`), and `subscriptions` (`subscriptions.py`), all
  within BC's request limits (`limits.py`).

Its `/_sandbox/` admin API (`admin.py`) seeds and reads it from another process.
Tests read and seed the in-memory store, inspect the request log, and flip fault switches
(a 429 storm, expiring every token, holding requests in flight, writes that commit late).
Where the sources leave BC's behaviour open (business-central.md §9) the emulator has a
switch, so the client is tested against each reading: the order line fields are validated
in, whether a 0 price on a new line registers, read-only writes refused or ignored, 409 or
412 for a stale etag, Retry-After on 429, and whether work cut off by a time limit commits.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from decimal import Decimal
from typing import Any

from werkzeug.wrappers import Request, Response

from packetworker.sandbox.base import LoggedRequest, RequestLog, ServerThread
from packetworker.sandbox.bc.admin import PREFIX, BCAdmin
from packetworker.sandbox.bc.auth import Tokens
from packetworker.sandbox.bc.batch import run_batch
from packetworker.sandbox.bc.clock import isoformat, utcnow
from packetworker.sandbox.bc.errors import ODataError
from packetworker.sandbox.bc.late import LateCommits
from packetworker.sandbox.bc.limits import RequestLimits
from packetworker.sandbox.bc.metadata import edmx
from packetworker.sandbox.bc.odata import API, json_response
from packetworker.sandbox.bc.routes import EntityRoutes
from packetworker.sandbox.bc.store import Store
from packetworker.sandbox.bc.subscriptions import RUNTIME_API, Subscriptions
from packetworker.sandbox.faults import Faults


def _setting(part: str, name: str) -> property:
    """A setting one of the sandbox's parts keeps, read and set through the sandbox."""
    return property(
        lambda self: getattr(getattr(self, part), name),
        lambda self, value: setattr(getattr(self, part), name, value),
    )


class BCSandbox:
    """A local Business Central; use as a context manager."""

    client_id = _setting("_auth", "client_id")
    client_secret = _setting("_auth", "client_secret")
    token_ttl = _setting("_auth", "ttl")
    signed_in_user = _setting("_auth", "user")
    sign_in_error = _setting("_auth", "sign_in_error")
    refuse_used_refresh_tokens = _setting("_auth", "refuse_used_refresh_tokens")
    max_concurrent = _setting("_limits", "max_concurrent")
    max_connections = _setting("_limits", "max_connections")
    rate_limit = _setting("_limits", "rate_limit")
    queue_timeout = _setting("_limits", "queue_timeout")
    operation_timeout = _setting("_limits", "operation_timeout")
    request_timeout = _setting("_limits", "request_timeout")
    retry_after_on_429 = _setting("_limits", "retry_after_on_429")  # unconfirmed (§5.4)
    timeouts_commit = _setting("_limits", "timeouts_commit")  # unconfirmed (§5.3)
    latency = _setting("_limits", "latency")  # seconds each API request takes (benchmarks)
    page_size = _setting("_routes", "page_size")
    handshake_timeout = _setting("_subs", "handshake_timeout")
    handshake_method = _setting("_subs", "handshake_method")
    # Behaviours the sources leave open (business-central.md §9), switchable per test:
    line_field_order = _setting("_line_rules", "order")  # "json" | "page" (§3.5.1)
    unchanged_fires = _setting("_line_rules", "unchanged_fires")  # 0 on a new line (§3.5.1)
    readonly_writes = _setting("db", "readonly_writes")  # "refuse" | "ignore" (§3.4.1)
    etag_conflict_status = _setting("db", "etag_conflict_status")  # 409 | 412 (§4.3)
    blocked_payments = _setting("db", "blocked_payments")  # "refuse" | "accept" (store.py)
    webhook_resources = _setting("_subs", "supported")
    full_renewal_body = _setting("_subs", "full_renewal_body")

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
        max_connections: int = 100,
        token_ttl: int = 3600,
        clock: Callable[[], datetime] | None = None,
        rate_limit: tuple[int, float] | None = (6000, 300.0),
        handshake_timeout: float = 5.0,
        handshake_method: str = "POST",
        notification_delay: float = 30.0,
        latency: float = 0.0,
    ) -> None:
        self.tenant = tenant
        self.environment = environment
        self.clock = clock or utcnow
        self.db = Store(clock=self.clock)
        self._line_rules = self.db.line_rules
        for name in companies:
            self.db.add_company(name)
        self._auth = Tokens(
            client_id=client_id, client_secret=client_secret, ttl=token_ttl, clock=self.clock
        )
        self.faults = Faults()
        self._limits = RequestLimits(
            clock=self.clock,
            faults=self.faults,
            max_concurrent=max_concurrent,
            max_connections=max_connections,
            rate_limit=rate_limit,
        )
        self._limits.latency = latency
        self._routes = EntityRoutes(self.db, page_size=page_size, base_url=lambda: self.base_url)
        self._subs = Subscriptions(
            self.db,
            clock=self.clock,
            handshake_method=handshake_method,
            handshake_timeout=handshake_timeout,
            notification_delay=notification_delay,
        )
        self._late = LateCommits()
        self.requests = RequestLog()
        self.token_grants = self._auth.grants
        self.used_refresh_tokens = self._auth.used_refresh_tokens
        self.handshakes = self._subs.handshakes
        self.subscriptions = self._subs.items
        self._admin = BCAdmin(self)
        self._server: ServerThread | None = None

    # --- lifecycle -----------------------------------------------------------------------

    def __enter__(self) -> BCSandbox:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._server = ServerThread(self._wsgi)
        self._server.start()
        self._subs.notifier.start()

    def stop(self) -> None:
        self.faults.release()
        self._late.close()
        self._subs.notifier.stop()
        if self._server is not None:
            self._server.stop()

    @property
    def root(self) -> str:
        return self._server.base_url

    @property
    def api_url(self) -> str:
        """Use as `bc_api_url`."""
        return f"{self.root}/v2.0"

    @property
    def token_url(self) -> str:
        return f"{self.root}/{self.tenant}/oauth2/v2.0/token"

    @property
    def authorize_url(self) -> str:
        return f"{self.root}/{self.tenant}/oauth2/v2.0/authorize"

    def register_redirect_uri(self, uri: str) -> None:
        """Add a redirect URI to the emulated app registration (the authorize endpoint
        redirects only to these)."""
        self._auth.redirect_uris.add(uri)

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

    def add_item(
        self, company: str | None = None, *, units: dict[str, float] | None = None, **fields: Any
    ) -> dict:
        """Seed an item; `units` are its units besides the base one (code → qty per unit)."""
        fields.setdefault("displayName", f"Item {secrets.token_hex(3)}")
        fields.setdefault("baseUnitOfMeasureCode", "PCS")
        item = self.add("items", company, **fields)
        for code, per_unit in (units or {}).items():
            self.add_item_unit(item["number"], code, per_unit, company=company)
        return item

    def add_item_unit(
        self, item_number: str, code: str, per_unit: float = 1, *, company: str | None = None
    ) -> None:
        """Give an item another unit of measure (BC's Item Unit of Measure)."""
        with self.db.lock:
            cid = self.company(company)["id"]
            item = next(
                i for i in self.db.table(cid, "items").values() if i["number"] == item_number
            )
            self.db.item_units.setdefault(item["id"], {})[code] = Decimal(str(per_unit))

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

    def post_document(self, entity_set: str, entity_id: str, company: str | None = None) -> None:
        """Post a document as BC's bound actions do: a sales order is shipped and invoiced
        (`Microsoft.NAV.shipAndInvoice`: the order goes, a posted shipment and invoice carry
        its `externalDocumentNumber`); a draft invoice or credit memo is posted in place
        (`Microsoft.NAV.post`: status Open). Webhooks are sent as for the HTTP action."""
        action = "shipAndInvoice" if entity_set == "salesOrders" else "post"
        path = f"companies({self.company(company)['id']})/{entity_set}({entity_id})"
        *_, changes = self._routes.committed("POST", f"{path}/Microsoft.NAV.{action}", {}, {}, None)
        self._subs.notify(changes)

    # --- test helpers: faults, tokens, subscriptions -------------------------------------

    def throttle(self, times: int, *, retry_after: int | None = 1) -> None:
        """The next `times` API requests get 429 with `Retry-After: retry_after` (None: no
        Retry-After header)."""
        self.faults.storm(times, retry_after=retry_after)

    def expire_tokens(self) -> None:
        """Every access token issued so far is now expired."""
        self._auth.expire_all()

    def issue_refresh_token(self) -> str:
        """A refresh token, as the authorization-code flow would hand out."""
        return self._auth.issue_refresh_token()

    def holding_requests(self) -> AbstractContextManager[None]:
        """API requests wait inside the server until the block exits (to observe concurrency)."""
        return self.faults.holding()

    def commit_late(self, times: int = 1) -> None:
        """The next `times` write requests (`$batch`, POST, PATCH, DELETE) are accepted and
        held, not yet run, until `release_late`: the caller times out, a look-up meanwhile
        does not see them, and they commit when released."""
        self._late.arm(times)

    def wait_held(self, count: int = 1, timeout: float = 10.0) -> bool:
        """Wait until `count` late writes are held."""
        return self._late.wait_held(count, timeout)

    @property
    def held(self) -> int:
        """Late writes held now."""
        return self._late.held

    def release_late(self, *, commit: bool = True) -> int:
        """Run and commit the held writes (or drop them, answering 504, with `commit=False`);
        returns once they have finished, with how many there were."""
        return self._late.release(commit=commit)

    def wait_in_flight(self, count: int, timeout: float = 10.0) -> bool:
        """Wait until `count` API requests run at once."""
        return self._limits.wait_in_flight(count, timeout)

    def wait_queued(self, count: int, timeout: float = 10.0) -> bool:
        """Wait until `count` API requests wait in BC's queue (past `max_concurrent`)."""
        return self._limits.wait_queued(count, timeout)

    @property
    def max_in_flight(self) -> int:
        """Most API requests that ran at once."""
        return self._limits.max_in_flight

    @property
    def max_queued(self) -> int:
        """Most API requests that waited in the queue at once."""
        return self._limits.max_queued

    def wait_for_deliveries(self, count: int, timeout: float = 10.0):
        return self._subs.notifier.wait(count, timeout)

    @property
    def deliveries(self):
        return list(self._subs.notifier.deliveries)

    def flush_notifications(self) -> None:
        """Send waiting notifications now, as if their delay or retry wait had passed."""
        self._subs.notifier.flush()

    @property
    def pending_notifications(self) -> int:
        return self._subs.notifier.pending

    @property
    def next_notification_due(self) -> datetime | None:
        """When the notifier sends (or retries) next, on the emulator clock."""
        return self._subs.notifier.next_due

    @property
    def collection_threshold(self) -> int:
        """Entities of one subscription in one window above which BC sends a `collection`."""
        return self._subs.notifier.collection_threshold

    @collection_threshold.setter
    def collection_threshold(self, value: int) -> None:
        self._subs.notifier.collection_threshold = value

    def expire_subscription(self, subscription_id: str) -> None:
        self._subs.expire(subscription_id)

    def delete_subscription(self, subscription_id: str) -> None:
        self._subs.delete(subscription_id)

    # --- WSGI ----------------------------------------------------------------------------

    def _wsgi(self, environ, start_response):
        request = Request(environ)
        if request.path.startswith(PREFIX):  # not logged: it is not BC traffic
            return self._admin(request)(environ, start_response)
        user: str | None = None
        try:
            if request.path == f"/{self.tenant}/oauth2/v2.0/token":
                response = self._auth.endpoint(request)
            elif request.path == f"/{self.tenant}/oauth2/v2.0/authorize":
                response = self._auth.authorize(request)
            else:
                user = self._auth.authenticate(request)
                response = self._limits.run(
                    user, lambda: self._late_or_now(request), path=request.path
                )
        except ODataError as exc:
            response = json_response(exc.status, exc.body(), exc.headers)
        self.requests.add(
            LoggedRequest(
                request.method,
                request.path,
                request.query_string.decode(),
                status=response.status_code,
                user=user,
            )
        )
        return response(environ, start_response)

    def _late_or_now(self, request: Request) -> Response:
        if request.method == "GET" or "subscriptions" in request.path.lower():
            return self._api(request)
        return self._late.run(lambda: self._api(request))

    def _api(self, request: Request) -> Response:
        runtime = f"/v2.0/{self.tenant}/{self.environment}/{RUNTIME_API}/"
        if request.path.startswith(runtime):
            status, headers, payload = self._subs.supported_resources(
                request.method, request.path[len(runtime) :]
            )
            return json_response(status, payload, headers)
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
        if path == "$metadata":
            # business-central.md §2: the service metadata is EDMX, read with GET only.
            if request.method != "GET":
                raise ODataError(405, "BadRequest_MethodNotAllowed", "$metadata needs GET.")
            headers = {"OData-Version": "4.0"}
            return Response(edmx(), content_type="application/xml", headers=headers)
        if path == "$batch":
            if request.method != "POST":
                raise ODataError(405, "BadRequest_MethodNotAllowed", "$batch needs POST.")
            payload, changes = run_batch(self._routes, body, request.headers)
            self._subs.notify(changes)
            return json_response(200, payload)
        if path.lower().startswith("subscriptions"):
            # Outside the store lock: the handshake calls out and may take seconds.
            status, headers, payload = self._subs.handle(
                request.method, path, dict(request.headers), body
            )
            changes = []
        else:
            status, headers, payload, changes = self._routes.committed(
                request.method, path, request.args.to_dict(), dict(request.headers), body
            )
        self._subs.notify(changes)
        return json_response(status, payload, headers)
