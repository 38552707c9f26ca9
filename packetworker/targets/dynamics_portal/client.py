"""Client of the Dynamics portal proxy: a REST facade over Dynamics 365 (its contract:
seeds/000).

Five endpoints: authenticate, and create/update/get/delete of a record, where each write
names the Dynamics Web API `endpoint` (`/api/data/v9.2/contacts`) and carries a `payload`.
The contract prints every path with its prefix doubled
(`/api/v1/dynamics-portal/api/v1/dynamics-portal/records`); that is what is implemented,
with the prefix as an option in case a deployment turns out to mount it once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from packetworker.retrying import parse_retry_after
from packetworker.targets.dynamics_portal.auth import Session, SessionAuth
from packetworker.targets.dynamics_portal.errors import (
    DynamicsPortalError,
    Throttled,
    Unavailable,
    error_for,
)
from packetworker.targets.http_client import HTTPClient
from packetworker.targets.http_errors import error_parts

PATH_PREFIX = "/api/v1/dynamics-portal/api/v1/dynamics-portal"


class _NotSent(Unavailable):
    """The connection failed, so the request certainly did not run."""


class DynamicsPortalClient(HTTPClient):
    """authenticate, create_record, update_record, get_record, delete_record."""

    throttled = Throttled
    not_sent = _NotSent
    unavailable = Unavailable

    def __init__(
        self,
        url: str,
        *,
        client_id: str,
        scope: str,
        path_prefix: str = PATH_PREFIX,
        renew_margin: float = 60.0,
        timeout: float = 30.0,
        attempts: int = 4,
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.base = url.rstrip("/") + path_prefix
        self.auth = SessionAuth(
            auth_url=f"{self.base}/authenticate",
            client_id=client_id,
            scope=scope,
            renew_margin=renew_margin,
            now=now,
        )
        self._connect(
            base_url=self.base,
            auth=self.auth,
            timeout=timeout,
            transport=transport,
            attempts=attempts,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
            sleep=sleep,
        )

    @classmethod
    def from_settings(cls, settings, **options: Any) -> DynamicsPortalClient:
        options.setdefault("timeout", settings.dynamics_portal_http_timeout)
        return cls(
            settings.dynamics_portal_url,
            client_id=settings.dynamics_portal_client_id,
            scope=settings.dynamics_portal_scope,
            **options,
        )

    def authenticate(self) -> Session:
        """Obtain a new session now (calls do this by themselves when needed)."""
        try:
            response = self._http.send(self.auth.auth_request(), auth=None)
        except httpx.TransportError as exc:
            raise Unavailable(
                0, "", f"authenticate: {type(exc).__name__}", transient=True
            ) from None
        return self.auth.accept(response)

    def create_record(self, endpoint: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Create a Dynamics record; the answer carries `dynamics_record_id`."""
        body = {"endpoint": endpoint, "payload": dict(payload)}
        return self._request("POST", "/records", json=body, idempotent=False)

    def update_record(
        self, record_id: str, endpoint: str, payload: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Update the given columns of a record (the contract uses PUT for a PATCH)."""
        body = {"endpoint": endpoint, "payload": dict(payload)}
        return self._request("PUT", f"/records/{record_id}", json=body)

    def get_record(self, record_id: str) -> dict[str, Any]:
        return self._request("GET", f"/records/{record_id}")

    def delete_record(self, record_id: str, endpoint: str) -> dict[str, Any]:
        return self._request("DELETE", f"/records/{record_id}", json={"endpoint": endpoint})

    def _request(
        self,
        method: str,
        path: str,
        *,
        json: Mapping[str, Any] | None = None,
        idempotent: bool = True,
    ) -> dict[str, Any]:
        payload = self._json_call(method, path, json=json, idempotent=idempotent)
        return {} if payload is None else payload

    def _error(self, response: httpx.Response) -> DynamicsPortalError:
        code, message = error_parts(response)
        return error_for(
            response.status_code,
            code,
            message,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )
