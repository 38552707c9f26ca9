"""A thin, typed client for the CRM as a Service REST API (TeamsWork, Azure APIM-fronted).

Endpoints and bodies follow the vendor's API reference (the user's document, seeds/003):
leads and opportunities under `/pipeline`, contacts and organizations under `/directory`,
cases under `/cases`.
Lists are paged with `page` (from 1) and `size`; answers wrap records in `item`/`items`.
The base URL is a setting: the vendor does not publish it in text (docs/crm.md B.2).

Retries: 429 waits `Retry-After`, 5xx and timeouts back off exponentially. A POST that
creates a record is resent only when it certainly did not run (429 or no connection).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import httpx

from packetworker.retrying import parse_retry_after
from packetworker.targets.crmaas.auth import SubscriptionKeyAuth
from packetworker.targets.crmaas.errors import (
    CrmaasError,
    CrmaasThrottled,
    CrmaasUnavailable,
    error_for,
)
from packetworker.targets.http_client import HTTPClient
from packetworker.targets.http_errors import error_parts

TAG_PATHS = {
    "leads": "/pipeline/tags/leads",
    "opportunities": "/pipeline/tags/opportunities",
    "contacts": "/directory/tags/contacts",
    "organizations": "/directory/tags/organizations",
    "cases": "/cases/tags/cases",
}
FORM_PATHS = {
    # Leads share the opportunities form (the API reference says so).
    "leads": "/pipeline/forms/opportunities",
    "opportunities": "/pipeline/forms/opportunities",
    "contacts": "/directory/forms/contacts",
    "organizations": "/directory/forms/organizations",
}
BULK_PATHS = {
    "lead": "/pipeline/bulk-actions",
    "opportunity": "/pipeline/bulk-actions",
    "contact": "/directory/bulk-actions",
    "organization": "/directory/bulk-actions",
    "case": "/cases/bulk-actions",
}


class _NotSent(CrmaasUnavailable):
    """The connection failed, so the request certainly did not run."""


class Resource:
    """CRUD and paged listing of one collection (`/directory/contacts`, ...)."""

    def __init__(self, client: CrmaasClient, path: str) -> None:
        self._client = client
        self.path = path

    def list(self, *, size: int | None = None, **filters: Any) -> Iterator[dict[str, Any]]:
        """Every record matching `filters` (`email=`, `organizationId=`, ...), page by page."""
        return self._client.paginate(self.path, size=size, **filters)

    def get(self, record_id: str) -> dict[str, Any]:
        return self._client.call("GET", f"{self.path}/{record_id}")

    def create(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._client.call("POST", self.path, json=body, idempotent=False)

    def update(self, record_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Partial update (PATCH): only the fields in `body` change."""
        return self._client.call("PATCH", f"{self.path}/{record_id}", json=body)

    def delete(self, record_id: str) -> None:
        self._client.call("DELETE", f"{self.path}/{record_id}")


class CrmaasClient(HTTPClient):
    """Leads, opportunities, contacts, organizations, cases, tags, forms, merges, bulk deletes."""

    throttled = CrmaasThrottled
    not_sent = _NotSent
    unavailable = CrmaasUnavailable

    def __init__(
        self,
        url: str,
        *,
        primary_key: str,
        secondary_key: str = "",
        page_size: int = 50,
        timeout: float = 30.0,
        attempts: int = 5,
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.auth = SubscriptionKeyAuth(primary_key, secondary_key)
        self.page_size = page_size
        self._connect(
            base_url=url.rstrip("/"),
            auth=self.auth,
            timeout=timeout,
            transport=transport,
            attempts=attempts,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
            sleep=sleep,
        )
        self.leads = Resource(self, "/pipeline/leads")
        self.opportunities = Resource(self, "/pipeline/opportunities")
        self.contacts = Resource(self, "/directory/contacts")
        self.organizations = Resource(self, "/directory/organizations")
        self.cases = Resource(self, "/cases/cases")
        self.case_types = Resource(self, "/cases/types/cases")

    @classmethod
    def from_settings(cls, settings, **options: Any) -> CrmaasClient:
        options.setdefault("timeout", settings.crmaas_http_timeout)
        return cls(
            settings.crmaas_url,
            primary_key=settings.crmaas_primary_key.get_secret_value(),
            secondary_key=settings.crmaas_secondary_key.get_secret_value(),
            **options,
        )

    # --- actions beyond CRUD ----------------------------------------------------------------

    def archive_lead(self, lead_id: str) -> dict[str, Any]:
        return self.call("PATCH", f"/pipeline/leads/{lead_id}/archive")

    def unarchive_lead(self, lead_id: str) -> dict[str, Any]:
        return self.call("PATCH", f"/pipeline/leads/{lead_id}/unarchive")

    def convert_lead(self, lead_id: str) -> dict[str, Any]:
        """Turn a lead into an opportunity; returns the opportunity."""
        return self.call("POST", f"/pipeline/leads/{lead_id}/convert", idempotent=False)

    def update_opportunity_status(
        self, opportunity_id: str, status: str, **fields: Any
    ) -> dict[str, Any]:
        """`status` "won"/"lost"/...; extra fields such as `lostReason`, `lastUpdatedBy`."""
        body = {"status": status, **fields}
        return self.call(
            "PATCH", f"/pipeline/opportunities/{opportunity_id}/updateStatus", json=body
        )

    def update_opportunity_stage(self, opportunity_id: str, stage: str) -> dict[str, Any]:
        """`stage` is a stage key from `pipelines()`."""
        path = f"/pipeline/opportunities/{opportunity_id}/updateStage"
        return self.call("PATCH", path, json={"stage": stage})

    def pipelines(self) -> list[dict[str, Any]]:
        return self.call("GET", "/pipeline/pipelines/opportunities")

    def pipeline(self, pipeline_id: str) -> dict[str, Any]:
        return self.call("GET", f"/pipeline/pipelines/opportunities/{pipeline_id}")

    def merge_contacts(
        self, target_id: str, source_ids: Iterable[str], **fields: Any
    ) -> dict[str, Any]:
        """Merge `source_ids` into contact `target_id` (the sources disappear)."""
        body = {"sourceId": list(source_ids), **fields}
        return self.call("POST", f"/directory/contacts/{target_id}/merge", json=body)

    def merge_organizations(
        self, target_id: str, source_ids: Iterable[str], **fields: Any
    ) -> dict[str, Any]:
        body = {"sourceId": list(source_ids), **fields}
        return self.call("POST", f"/directory/organizations/{target_id}/merge", json=body)

    def bulk_delete(self, entity: str, ids: Iterable[str]) -> None:
        """Delete many records of `entity` ("lead", "opportunity", "contact", ...) at once."""
        try:
            path = BULK_PATHS[entity]
        except KeyError:
            raise ValueError(
                f"no bulk actions for {entity!r} (known: {sorted(BULK_PATHS)})"
            ) from None
        self.call("POST", path, json={"entity": entity, "action": "delete", "ids": list(ids)})

    def tags(self, kind: str) -> Resource:
        """Tag options of `kind` ("leads", "contacts", ...): list/create/update/delete."""
        return Resource(self, _lookup(TAG_PATHS, kind))

    def form(self, kind: str) -> Any:
        return self.call("GET", _lookup(FORM_PATHS, kind))

    def put_form(self, kind: str, body: Mapping[str, Any]) -> Any:
        return self.call("PUT", _lookup(FORM_PATHS, kind), json=body)

    # --- transport --------------------------------------------------------------------------

    def paginate(
        self, path: str, *, size: int | None = None, **filters: Any
    ) -> Iterator[dict[str, Any]]:
        """Records of a list endpoint, requesting `page` 1, 2, ... until a short page."""
        size = size or self.page_size
        page = 1
        while True:
            params = {**{k: _param(v) for k, v in filters.items()}, "page": page, "size": size}
            payload = self._json_call("GET", path, params=params)
            items = payload.get("items", []) if isinstance(payload, dict) else payload or []
            yield from items
            if len(items) < size:
                return
            page += 1

    def call(
        self,
        method: str,
        path: str,
        *,
        json: Mapping[str, Any] | None = None,
        idempotent: bool = True,
    ) -> Any:
        """One request; returns the `item` (or `items`) of the answer, None when empty."""
        payload = self._json_call(method, path, json=json, idempotent=idempotent)
        if isinstance(payload, dict):
            for envelope in ("item", "items"):
                if envelope in payload:
                    return payload[envelope]
        return payload

    def _error(self, response: httpx.Response) -> CrmaasError:
        code, message = error_parts(response, secrets=self.auth.secrets)
        return error_for(
            response.status_code,
            code,
            message,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
            secrets=self.auth.secrets,
        )


def _lookup(paths: Mapping[str, str], kind: str) -> str:
    try:
        return paths[kind]
    except KeyError:
        raise ValueError(f"unknown kind {kind!r} (known: {sorted(paths)})") from None


def _param(value: Any) -> str:
    """Query values as the API takes them: lists comma-joined, booleans lower-case."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple | set):
        return ",".join(str(v) for v in value)
    return str(value)
