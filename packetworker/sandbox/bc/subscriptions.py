"""Webhook subscriptions as BC keeps them: `/subscriptions` routes (create and renew only
after the validation handshake, If-Match on change, a three-day lifetime, at most
`MAX_SUBSCRIPTIONS`), the runtime API's `webhookSupportedResources`, and the notifications
queued for committed changes (`webhooks.py` delays, merges, sends and retries them)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

from packetworker.sandbox.bc.clock import isoformat
from packetworker.sandbox.bc.entities import ENTITY_SETS
from packetworker.sandbox.bc.errors import ODataError
from packetworker.sandbox.bc.odata import API, path_segments
from packetworker.sandbox.bc.store import Change, Store, new_etag
from packetworker.sandbox.bc.webhooks import (
    NOTIFICATION_DELAY,
    Handshake,
    Notice,
    Notifier,
    handshake,
    require_handshake,
)

# business-central.md §6.3: at most 200 subscriptions per environment.
MAX_SUBSCRIPTIONS = 200
# business-central.md §6.3: a subscription expires three days after creation or renewal.
SUBSCRIPTION_LIFETIME = timedelta(days=3)
# business-central.md §6.5: the documented webhook-supported v2.0 entities. The live list
# comes from `webhookSupportedResources`; tests change `supported` to mimic another tenant.
SUPPORTED_RESOURCES = frozenset(
    {
        "accounts",
        "companyInformation",
        "countriesRegions",
        "currencies",
        "customerPaymentJournals",
        "customers",
        "dimensions",
        "employees",
        "generalLedgerEntries",
        "itemCategories",
        "items",
        "journals",
        "paymentMethods",
        "paymentTerms",
        "purchaseInvoices",
        "salesCreditMemos",
        "salesInvoices",
        "salesOrders",
        "salesQuotes",
        "shipmentMethods",
        "unitsOfMeasure",
        "vendors",
    }
)
# business-central.md §6.5: the runtime API route that lists them (company-scoped).
RUNTIME_API = "api/microsoft/runtime/beta"
# business-central.md §6.3: the documented renewal body carries these three fields.
RENEWAL_FIELDS = ("notificationUrl", "resource", "clientState")


class Subscriptions:
    def __init__(
        self,
        db: Store,
        *,
        clock: Callable[[], datetime],
        handshake_method: str,
        handshake_timeout: float,
        notification_delay: float = NOTIFICATION_DELAY,
        full_renewal_body: bool = True,
    ) -> None:
        self.db = db  # its lock also guards `items`
        self.clock = clock
        self.handshake_method = handshake_method
        self.handshake_timeout = handshake_timeout
        # Whether a renewal PATCH must carry the documented body (business-central.md §6.3
        # shows it; whether BC refuses less is unconfirmed, so this is switchable).
        self.full_renewal_body = full_renewal_body
        self.supported: set[str] = set(SUPPORTED_RESOURCES)
        self.items: dict[str, dict] = {}
        self.handshakes: list[Handshake] = []
        self.notifier = Notifier(clock=clock, on_gone=self.delete_url, delay=notification_delay)

    def expire(self, subscription_id: str) -> None:
        with self.db.lock:
            sub = self.items[subscription_id]
            sub["expirationDateTime"] = isoformat(self.clock() - timedelta(seconds=1))

    def delete(self, subscription_id: str) -> None:
        with self.db.lock:
            self.items.pop(subscription_id, None)

    def delete_url(self, url: str) -> None:
        """Delete every subscription notifying `url` (what a refused send does)."""
        with self.db.lock:
            for key in [k for k, s in self.items.items() if s["notificationUrl"] == url]:
                del self.items[key]

    def supported_resources(self, method: str, path: str) -> tuple[int, dict, dict]:
        """`GET companies({id})/webhookSupportedResources` of the runtime API."""
        segments = path_segments(path)
        if (
            len(segments) != 2
            or segments[0][0] != "companies"
            or segments[0][1] is None
            or segments[1] != ("webhookSupportedResources", None)
        ):
            raise ODataError(404, "BadRequest_NotFound", "No HTTP resource was found.")
        if method != "GET":
            raise ODataError(405, "BadRequest_MethodNotAllowed", f"'{method}' not allowed.")
        with self.db.lock:
            self.db.company(segments[0][1])  # 404 for an unknown company
            names = sorted(n for n in self.supported if n in ENTITY_SETS)
        # business-central.md §6.5: entries name the route, e.g. `v2.0/accounts`.
        return 200, {}, {"value": [{"resource": f"v2.0/{name}"} for name in names]}

    def handle(self, method, path, headers, body):
        segments = path_segments(path)
        key = segments[0][1]
        if key is None:
            if method == "GET":
                with self.db.lock:
                    now = self.clock()
                    live = [dict(s) for s in self.items.values() if not _expired(s, now)]
                return 200, {}, {"value": live}
            if method == "POST":
                return 201, {}, self._create(body)
            raise ODataError(405, "BadRequest_MethodNotAllowed", f"'{method}' not allowed.")
        with self.db.lock:
            sub = self.items.get(key)
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
            self.delete(key)
            return 204, {}, None
        if method == "PATCH":
            updates = self._check_body(body or {}, partial=not self.full_renewal_body)
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
                self.items[key] = merged
                return 200, {}, dict(merged)
        raise ODataError(405, "BadRequest_MethodNotAllowed", f"'{method}' not allowed.")

    def _check_body(self, body: dict, *, partial: bool) -> dict:
        allowed = {"notificationUrl", "resource", "clientState"}
        extra = set(body) - allowed - {"subscriptionId", "@odata.etag", "expirationDateTime"}
        if extra:
            raise ODataError(400, "BadRequest", f"Could not find a property named '{extra.pop()}'.")
        if not partial:
            for name in ("notificationUrl", "resource"):
                # business-central.md §6.1 (create) and §6.3 (the renewal's documented body).
                if not body.get(name):
                    raise ODataError(
                        400, "BadRequest_RequiredParamNotProvided", f"'{name}' is required."
                    )
        out = {k: v for k, v in body.items() if k in allowed}
        if "resource" in out:
            self.target(out["resource"])
        return out

    def target(self, resource: str) -> tuple[str, str]:
        """(company id, entity set) of a resource, or 400 when BC would refuse it."""
        path = resource.split("://", 1)[-1]
        tail = path.split(f"{API}/", 1)[-1] if f"{API}/" in path else path.strip("/")
        segments = path_segments(tail.split("?", 1)[0])
        if len(segments) != 2 or segments[0][0] != "companies" or segments[0][1] is None:
            raise ODataError(400, "BadRequest_InvalidRequestUrl", f"Invalid resource '{resource}'.")
        with self.db.lock:
            company = self.db.company(segments[0][1])
        set_name = segments[1][0]
        # business-central.md §6.5: only the supported resources take subscriptions.
        if set_name not in self.supported or set_name not in ENTITY_SETS or segments[1][1]:
            raise ODataError(
                400,
                "BadRequest",
                f"The resource '{set_name}' does not support webhook subscriptions.",
            )
        return company["id"], set_name

    def _create(self, body) -> dict:
        if not isinstance(body, dict):
            raise ODataError(400, "BadRequest", "A JSON object body is required.")
        fields = self._check_body(body, partial=False)
        with self.db.lock:
            if len(self.items) >= MAX_SUBSCRIPTIONS:
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
            self.items[sub["subscriptionId"]] = sub
        return dict(sub)

    def notify(self, changes: list[Change]) -> None:
        """Queue notifications of committed `changes` for every live subscription."""
        if not changes:
            return
        by_url: dict[str, list[Notice]] = {}
        with self.db.lock:
            now = self.clock()
            for sub in self.items.values():
                if _expired(sub, now):
                    continue
                try:
                    cid, set_name = self.target(sub["resource"])
                except ODataError:
                    continue
                for change in changes:
                    if change.company_id != cid or change.entity_set != set_name:
                        continue
                    by_url.setdefault(sub["notificationUrl"], []).append(
                        Notice(
                            dict(sub),
                            cid,
                            set_name,
                            change.entity_id,
                            change.change_type,
                            change.at,
                        )
                    )
        for url, notices in by_url.items():
            self.notifier.add(url, notices)


def _expired(sub: dict, now: datetime) -> bool:
    return datetime.fromisoformat(sub["expirationDateTime"].replace("Z", "+00:00")) <= now
