"""A thin, typed client for the Business Central API v2.0 (no business rules).

One shared `httpx.Client` (`packetworker.http`); auth by `BCAuth`; at most `max_concurrency`
requests in flight (BC processes 5 per user at a time and queues or refuses the rest);
429/502/503/504 retried on the shared policy, honouring `Retry-After`; server-driven paging
via `@odata.nextLink`; JSON `$batch` split at 100 operations; webhook subscriptions. Every
failure is a `BCError`: a request that got no answer is `NotSent` (it certainly did not run)
or `NoAnswer` (it may have).

Entity paths are relative to the company: `items`, `salesOrders(<id>)/salesOrderLines`.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from urllib.parse import quote

import httpx

from packetworker.http import open_client, resend_policy
from packetworker.request_budget import (
    WINDOW_SECONDS,
    LocalLimiter,
    RequestLimiter,
    SlotUnavailable,
    limiter_for,
)
from packetworker.retrying import parse_retry_after
from packetworker.targets.bc.auth import BCAuth
from packetworker.targets.bc.batch import (
    MAX_BATCH_OPERATIONS,
    BatchRequest,
    BatchResponse,
    build_payload,
    chunks,
    parse_responses,
)
from packetworker.targets.bc.errors import (
    BCError,
    NoAnswer,
    NotFound,
    NotSent,
    error_from_response,
)
from packetworker.targets.bc.metadata import Metadata, parse_metadata
from packetworker.targets.bc.odata import literal
from packetworker.targets.http_errors import transport_error

API_PATH = "api/v2.0"


def _odata_key(value: str) -> str:
    return f"({value})"


def _not_run(error: BaseException) -> bool:
    """Retrying a POST after BC may have run it would create a second record, so writes that
    are not idempotent are only retried when BC certainly did not run them: throttled (429),
    or never sent. A 502/503/504 or a timeout after the request was sent leaves its outcome
    unknown (business-central.md §5.3): the caller decides, by a look-up once BC's longest
    request time has passed (see `targets.base.WriteJournal`)."""
    return isinstance(error, NotSent) or getattr(error, "status", None) == 429


class BCClient:
    """Business Central API v2.0 for one tenant, environment and (optionally) company."""

    def __init__(
        self,
        *,
        api_url: str,
        tenant: str,
        environment: str,
        auth: httpx.Auth,
        company: str | None = None,
        max_concurrency: int = 5,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30.0,
        retries: int = 5,
        sleep: Callable[[float], None] = time.sleep,
        max_backoff: float = 60.0,
        page_size: int | None = None,
        limiter: RequestLimiter | None = None,
    ) -> None:
        self.base_url = f"{api_url.rstrip('/')}/{tenant}/{environment}/{API_PATH}"
        self.company = company
        self.page_size = page_size
        self._auth = auth
        self._retries = max(1, retries)
        self._sleep = sleep
        self._max_backoff = max_backoff
        # One slot per request in flight: this process's own by default, or the budget every
        # process of the app registration shares (`packetworker.pipeline.limits`).
        self.limiter = limiter or LocalLimiter(max_concurrency)
        self._company_id: str | None = None
        self._company_lock = threading.Lock()
        self._borrowed = False  # `for_company` clients share what their parent closes
        self._http = open_client(
            service="bc",
            transport=transport,
            limiter=self.limiter,
            limits=httpx.Limits(max_connections=max_concurrency),
            auth=auth,
            timeout=timeout,
            headers={"Accept": "application/json"},
        )

    @classmethod
    def from_settings(cls, settings, *, transport: httpx.BaseTransport | None = None) -> BCClient:
        """A client configured by `packetworker.settings.Settings` (the `bc_*` fields), on the
        injected `"bc"` request budget if there is one (`request_budget.using_limiters`)."""
        auth = BCAuth.from_settings(settings, transport=transport)
        return cls(
            api_url=settings.bc_api_url,
            tenant=settings.bc_tenant,
            environment=settings.bc_environment,
            auth=auth,
            company=settings.bc_company or None,
            max_concurrency=settings.bc_max_concurrency,
            transport=transport,
            timeout=settings.bc_http_timeout,
            limiter=limiter_for("bc")
            or LocalLimiter(
                settings.bc_max_concurrency,
                per_window=settings.bc_requests_per_5_min,
                window=WINDOW_SECONDS,
                wait=settings.request_slot_wait,
            ),
        )

    # --- lifecycle -----------------------------------------------------------------------

    def for_company(self, company: str) -> BCClient:
        """A client for another company (id or name) of the same environment, sharing this
        one's token, connection pool and concurrency limit: BC counts requests per user, not
        per company (business-central.md §5.4). Closing it leaves them to this client."""
        other = copy.copy(self)
        other.company = company
        other._company_id = None
        other._company_lock = threading.Lock()
        other._borrowed = True
        return other

    def close(self) -> None:
        if self._borrowed:
            return
        self._http.close()
        close = getattr(self._auth, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> BCClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- companies -----------------------------------------------------------------------

    def companies(self) -> list[dict]:
        """All companies of the environment."""
        return list(self._pages(f"{self.base_url}/companies", params=None))

    @property
    def company_id(self) -> str:
        """The configured company's GUID, resolved once (by id, name or display name)."""
        with self._company_lock:
            if self._company_id is None:
                self._company_id = self._resolve_company()
            return self._company_id

    def _resolve_company(self) -> str:
        companies = self.companies()
        wanted = self.company
        if wanted is None:
            if len(companies) == 1:
                return companies[0]["id"]
            raise BCError(
                400, "Client_CompanyRequired", "several companies: set one", transient=False
            )
        for field in ("id", "name", "displayName"):
            for company in companies:
                if str(company.get(field, "")).lower() == wanted.lower():
                    return company["id"]
        raise NotFound(404, "Internal_CompanyNotFound", f"no company {wanted!r}", transient=False)

    def company_url(self, path: str = "") -> str:
        """Absolute URL of `path` under the company."""
        url = f"{self.base_url}/companies({self.company_id})"
        return f"{url}/{path.lstrip('/')}" if path else url

    def resource(self, entity_set: str) -> str:
        """The webhook `resource` string for an entity set of the company."""
        return f"/{API_PATH}/companies({self.company_id})/{entity_set}"

    # --- entities ------------------------------------------------------------------------

    def list(
        self,
        entity_set: str,
        *,
        filter: str | None = None,
        select: Sequence[str] | str | None = None,
        expand: Sequence[str] | str | None = None,
        top: int | None = None,
        orderby: str | None = None,
    ) -> Iterator[dict]:
        """Entities of `entity_set`, following `@odata.nextLink` across pages, lazily."""
        params = _query(filter=filter, select=select, expand=expand, top=top, orderby=orderby)
        return self._pages(self.company_url(entity_set), params=params)

    def find_one(
        self, entity_set: str, filter: str, *, select: Sequence[str] | str | None = None
    ) -> dict | None:
        """The first entity matching `filter`, or None."""
        return next(iter(self.list(entity_set, filter=filter, select=select, top=1)), None)

    def get(
        self,
        entity_set: str,
        id: str,
        *,
        select: Sequence[str] | str | None = None,
        expand: Sequence[str] | str | None = None,
    ) -> dict:
        url = self.company_url(f"{entity_set}{_odata_key(id)}")
        return self._json("GET", url, params=_query(select=select, expand=expand))

    def create(
        self, entity_set: str, body: dict, *, expand: Sequence[str] | str | None = None
    ) -> dict:
        """POST a new entity; nested arrays (e.g. `salesOrderLines`) are a deep insert."""
        return self._json(
            "POST",
            self.company_url(entity_set),
            params=_query(expand=expand),
            json=body,
            idempotent=False,
        )

    def update(self, entity_set: str, id: str, body: dict, *, etag: str) -> dict:
        """PATCH changed fields; `etag` is the entity's `@odata.etag` (or `*` to overwrite)."""
        url = self.company_url(f"{entity_set}{_odata_key(id)}")
        return self._json("PATCH", url, json=body, headers={"If-Match": etag})

    def delete(self, entity_set: str, id: str, *, etag: str) -> None:
        url = self.company_url(f"{entity_set}{_odata_key(id)}")
        self._request("DELETE", url, headers={"If-Match": etag})

    def action(self, entity_set: str, id: str, name: str) -> None:
        """Run the bound action `Microsoft.NAV.<name>` on one entity (BC answers 204), e.g.
        `shipAndInvoice` on a sales order or `post` on a draft invoice."""
        url = self.company_url(f"{entity_set}{_odata_key(id)}/Microsoft.NAV.{name}")
        self._request("POST", url, idempotent=False)

    # --- read-only look-ups (preflight) --------------------------------------------------

    def metadata(self) -> Metadata:
        """The environment's entity sets and their fields (`$metadata`, EDMX)."""
        response = self._request(
            "GET", f"{self.base_url}/$metadata", headers={"Accept": "application/xml"}
        )
        return parse_metadata(response.content)

    def customer_payment_journal(self, code: str) -> dict | None:
        """The company's customer payment journal with `code`, or None."""
        return self.find_one(
            "customerPaymentJournals", f"code eq {literal(code)}", select=["id", "code"]
        )

    # --- $batch --------------------------------------------------------------------------

    def batch(
        self,
        requests: Sequence[BatchRequest],
        *,
        atomic: bool = False,
        continue_on_error: bool = False,
    ) -> list[BatchResponse]:
        """Run `requests` through JSON `$batch`, 100 per call; one response per request.

        `atomic` sends `Isolation: snapshot` so BC commits all or nothing; an atomic list
        cannot be split, so more than 100 operations is refused. Without `continue_on_error`
        BC stops at the first failure and later operations come back with `status=None`.
        """
        if atomic and len(requests) > MAX_BATCH_OPERATIONS:
            raise ValueError(f"an atomic batch holds at most {MAX_BATCH_OPERATIONS} operations")
        headers = {"Content-Type": "application/json"}
        if atomic:
            headers["Isolation"] = "snapshot"
        if continue_on_error:
            headers["Prefer"] = "odata.continue-on-error"
        prefix = f"companies({self.company_id})/"
        results: list[BatchResponse] = []
        for chunk in chunks(requests):
            payload = build_payload(chunk, url_prefix=prefix, first_id=len(results) + 1)
            answer = self._json(
                "POST", f"{self.base_url}/$batch", json=payload, headers=headers, idempotent=False
            )
            results.extend(parse_responses(answer, payload, atomic=atomic))
        return results

    # --- webhook subscriptions (environment-wide, not under a company) -------------------

    def create_subscription(
        self, *, notification_url: str, resource: str, client_state: str | None = None
    ) -> dict:
        """Register a webhook; BC first calls `notification_url` to validate it (handshake)."""
        body = {"notificationUrl": notification_url, "resource": resource}
        if client_state is not None:
            body["clientState"] = client_state
        return self._json("POST", f"{self.base_url}/subscriptions", json=body, idempotent=False)

    def renew_subscription(self, subscription: dict, *, client_state: str | None = None) -> dict:
        """Extend `subscription` (as BC listed it) by three days; BC handshakes again.

        Sends the body Microsoft's renewal example sends — `notificationUrl`, `resource`,
        `clientState` — with `If-Match: <its etag>` (business-central.md §6.3)."""
        body = {
            "notificationUrl": subscription["notificationUrl"],
            "resource": subscription["resource"],
            "clientState": subscription.get("clientState", "")
            if client_state is None
            else client_state,
        }
        url = self._subscription_url(subscription["subscriptionId"])
        etag = subscription.get("@odata.etag") or "*"
        return self._json("PATCH", url, json=body, headers={"If-Match": etag})

    def webhook_supported_resources(self) -> set[str]:
        """The v2.0 entity sets this tenant sends webhooks for (business-central.md §6.5:
        `webhookSupportedResources` of the runtime API, entries like `v2.0/items`)."""
        runtime = self.base_url[: -len(API_PATH)] + "api/microsoft/runtime/beta"
        url = f"{runtime}/companies({self.company_id})/webhookSupportedResources"
        names = (entry.get("resource", "") for entry in self._pages(url, params=None))
        return {name.split("/", 1)[1] for name in names if name.startswith("v2.0/")}

    def delete_subscription(self, subscription_id: str, *, etag: str = "*") -> None:
        self._request("DELETE", self._subscription_url(subscription_id), headers={"If-Match": etag})

    def list_subscriptions(self) -> list[dict]:
        return list(self._pages(f"{self.base_url}/subscriptions", params=None))

    def get_subscription(self, subscription_id: str) -> dict:
        return self._json("GET", self._subscription_url(subscription_id))

    def _subscription_url(self, subscription_id: str) -> str:
        return f"{self.base_url}/subscriptions('{quote(subscription_id, safe='')}')"

    # --- transport -----------------------------------------------------------------------

    def _pages(self, url: str, *, params: dict | None) -> Iterator[dict]:
        headers = {"Prefer": f"odata.maxpagesize={self.page_size}"} if self.page_size else None
        next_url: str | None = url
        while next_url is not None:
            page = self._json("GET", next_url, params=params, headers=headers)
            yield from page.get("value", [])
            next_url = page.get("@odata.nextLink")
            params = None  # the next link already carries every query option

    def _json(self, method: str, url: str, **kwargs: Any) -> dict:
        response = self._request(method, url, **kwargs)
        return response.json() if response.content else {}

    def _request(
        self,
        method: str,
        url: str,
        *,
        params: dict | None = None,
        json: Any = None,
        headers: dict | None = None,
        idempotent: bool = True,
    ) -> httpx.Response:
        policy = resend_policy(
            idempotent=idempotent,
            worth_retrying=lambda error: isinstance(error, BCError) and error.transient,
            not_run=_not_run,
            attempts=self._retries,
            backoff_base=0.5,
            backoff_max=self._max_backoff,
            sleep=self._sleep,
            long_waits="cap",  # a longer Retry-After is waited out up to `max_backoff`
        )
        return policy(self._send_once, method, url, params, json, headers)

    def _send_once(self, method, url, params, json, headers) -> httpx.Response:
        try:
            response = self._http.request(method, url, params=params, json=json, headers=headers)
        except SlotUnavailable:
            raise  # not sent, and not an attempt: the caller reschedules
        except httpx.TransportError as exc:
            where = f"{method} {url.split('?', 1)[0]}"
            raise transport_error(exc, where, not_sent=NotSent, unavailable=NoAnswer) from None
        if response.is_success:
            return response
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        try:
            body: Any = response.json()
        except ValueError:
            body = response.content
        raise error_from_response(response.status_code, body, retry_after=retry_after)


def _query(
    *,
    filter: str | None = None,
    select: Sequence[str] | str | None = None,
    expand: Sequence[str] | str | None = None,
    top: int | None = None,
    orderby: str | None = None,
) -> dict | None:
    params: dict[str, str] = {}
    if filter:
        params["$filter"] = filter
    if select:
        params["$select"] = select if isinstance(select, str) else ",".join(select)
    if expand:
        params["$expand"] = expand if isinstance(expand, str) else ",".join(expand)
    if top is not None:
        params["$top"] = str(top)
    if orderby:
        params["$orderby"] = orderby
    return params or None
