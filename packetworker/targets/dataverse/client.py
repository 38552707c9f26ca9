"""A thin, typed client for the Dataverse Web API v9.2 (Dynamics 365 / Power Platform).

One shared `httpx.Client` (thread-safe), bearer tokens from `DataverseAuth`, retries with
tenacity, one shared throttling pause and an in-flight cap (`ThrottleGate`). No business
rules: callers decide entity sets, columns, keys and lookups.

Writes are made safe to repeat where the API allows it: `upsert` (PATCH by GUID or
alternate key) and deletes are retried on any transient failure, while a plain `create`
(POST) or a `$batch` is resent only when the server certainly did not run it (429, or the
connection was never made); after a 5xx or a read timeout the caller gets a transient error
and decides, typically by upserting with an alternate key next time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Literal

import httpx

from packetworker.request_budget import (
    WINDOW_SECONDS,
    LocalLimiter,
    RequestLimiter,
    SlotUnavailable,
    limiter_for,
)
from packetworker.retrying import parse_retry_after
from packetworker.targets.dataverse.auth import DataverseAuth
from packetworker.targets.dataverse.batch import (
    BatchOperation,
    BatchResponse,
    decode_batch,
    encode_batch,
    encode_changesets,
)
from packetworker.targets.dataverse.errors import (
    ConnectionFailed,
    DataverseError,
    Throttled,
    Unavailable,
    error_for,
)
from packetworker.targets.dataverse.odata import Key, entity_id, record_path
from packetworker.targets.dataverse.throttle import ThrottleGate
from packetworker.targets.http_client import HTTPClient
from packetworker.targets.http_errors import error_parts, transport_error

API_VERSION = "v9.2"
UpsertMode = Literal["upsert", "update", "create"]

_HEADERS = {
    "Accept": "application/json",
    "OData-MaxVersion": "4.0",
    "OData-Version": "4.0",
}


class DataverseClient(HTTPClient):
    """Create, update, upsert, delete, retrieve, query and batch against one environment."""

    throttled = Throttled
    not_sent = ConnectionFailed
    unavailable = Unavailable

    def __init__(
        self,
        url: str,
        *,
        auth: httpx.Auth,
        api_version: str = API_VERSION,
        max_concurrency: int = 8,
        timeout: float = 30.0,
        attempts: int = 5,
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        limiter: RequestLimiter | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.api_path = f"/api/data/{api_version}/"
        self.gate = ThrottleGate(max_concurrency=max_concurrency, clock=clock, sleep=sleep)
        self._connect(
            base_url=self.url + self.api_path,
            auth=auth,
            headers=_HEADERS,
            timeout=timeout,
            transport=transport,
            attempts=attempts,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
            sleep=sleep,
            limiter=limiter,
            limits=httpx.Limits(max_connections=max_concurrency),
        )

    @classmethod
    def from_settings(cls, settings, **options: Any) -> DataverseClient:
        """A client configured by the `dataverse_*` settings (`options` override), on the
        injected `"dataverse"` request budget if there is one, else a budget of its own."""
        auth = DataverseAuth(
            environment_url=settings.dataverse_url,
            tenant=settings.dataverse_tenant,
            client_id=settings.dataverse_client_id,
            client_secret=settings.dataverse_client_secret.get_secret_value(),
            token_url=settings.dataverse_token_url or None,
            transport=options.get("transport"),
        )
        options.setdefault("max_concurrency", settings.dataverse_max_concurrency)
        options.setdefault("timeout", settings.dataverse_http_timeout)
        if "limiter" not in options:
            options["limiter"] = limiter_for("dataverse") or LocalLimiter(
                settings.dataverse_max_concurrency,
                per_window=settings.dataverse_requests_per_5_min,
                window=WINDOW_SECONDS,
                wait=settings.request_slot_wait,
            )
        return cls(settings.dataverse_url, auth=auth, **options)

    def who_am_i(self) -> dict[str, Any]:
        """`WhoAmI`: the caller's user, business unit and organization ids (crm.md A.12)."""
        return self._request("GET", "WhoAmI").json()

    # --- records ----------------------------------------------------------------------------

    def create(
        self,
        entity_set: str,
        body: Mapping[str, Any],
        *,
        detect_duplicates: bool | None = None,
    ) -> str:
        """POST a new record; returns its GUID (from `OData-EntityId`).

        Lookups are set with `"<navprop>@odata.bind": bind("accounts", key)`.
        `detect_duplicates=True` asks Dataverse to run its duplicate-detection rules
        (`DuplicateDetected`), `False` suppresses them, `None` leaves the server default.
        """
        response = self._request(
            "POST",
            entity_set,
            json=dict(body),
            headers=_duplicate_header(detect_duplicates),
            idempotent=False,
            creates=True,
        )
        return self._entity_id(response)

    def update(
        self,
        entity_set: str,
        key: Key,
        body: Mapping[str, Any],
        *,
        detect_duplicates: bool | None = None,
    ) -> None:
        """PATCH an existing record (never creates one: `RecordNotFound` if missing)."""
        self.upsert(entity_set, key, body, mode="update", detect_duplicates=detect_duplicates)

    def upsert(
        self,
        entity_set: str,
        key: Key,
        body: Mapping[str, Any],
        *,
        mode: UpsertMode = "upsert",
        detect_duplicates: bool | None = None,
    ) -> str | None:
        """PATCH by GUID or alternate key; returns the record's GUID when the server says it.

        `mode="upsert"` creates or updates, `"update"` sends `If-Match: *` (missing record →
        `RecordNotFound`), `"create"` sends `If-None-Match: *` (existing → `DuplicateRecord`).
        """
        headers = _duplicate_header(detect_duplicates)
        if mode == "update":
            headers["If-Match"] = "*"
        elif mode == "create":
            headers["If-None-Match"] = "*"
        response = self._request(
            "PATCH",
            record_path(entity_set, key),
            json=dict(body),
            headers=headers,
            idempotent=True,
            # Only an update-only PATCH can miss the addressed record; otherwise a 404 is
            # about a record named in an @odata.bind.
            creates=mode != "update",
        )
        uri = response.headers.get("OData-EntityId")
        return entity_id(uri) if uri else None

    def delete(self, entity_set: str, key: Key) -> None:
        """DELETE a record (`RecordNotFound` if it does not exist)."""
        self._request("DELETE", record_path(entity_set, key), idempotent=True)

    def retrieve(
        self, entity_set: str, key: Key, *, select: Sequence[str] | None = None
    ) -> dict[str, Any]:
        """GET one record by GUID or alternate key."""
        params = {"$select": ",".join(select)} if select else None
        response = self._request(
            "GET", record_path(entity_set, key), params=params, headers={"If-None-Match": "null"}
        )
        return response.json()

    def query(
        self,
        entity_set: str,
        *,
        select: Sequence[str] | None = None,
        filter: str | None = None,
        maxpagesize: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every matching record, page by page (`Prefer: odata.maxpagesize`), lazily.

        `@odata.nextLink` is followed verbatim, with the same page size, until none comes.
        """
        params: dict[str, str] = {}
        if select:
            params["$select"] = ",".join(select)
        if filter:
            params["$filter"] = filter
        headers = {"If-None-Match": "null"}
        if maxpagesize:
            headers["Prefer"] = f"odata.maxpagesize={maxpagesize}"
        url: str | None = entity_set
        while url is not None:
            response = self._request("GET", url, params=params or None, headers=headers)
            page = response.json()
            yield from page.get("value", [])
            url = page.get("@odata.nextLink")
            params = {}  # the next link carries every query option already

    def batch(
        self,
        operations: Sequence[BatchOperation],
        *,
        changeset: bool = True,
        continue_on_error: bool = False,
    ) -> list[BatchResponse]:
        """Send `operations` as one `$batch`; returns one answer per operation run.

        With `changeset=True` the operations are applied atomically: if one fails, none is
        kept, and the answers hold the failing operation's error. `BatchResponse.error()`
        turns a failed answer into the same typed error a single request would raise.
        """
        encoded = encode_batch(operations, api_path=self.api_path, changeset=changeset)
        return self._send_batch(encoded, continue_on_error=continue_on_error)

    def batch_changesets(
        self,
        groups: Sequence[Sequence[BatchOperation]],
        *,
        continue_on_error: bool = True,
    ) -> list[BatchResponse]:
        """Send one `$batch` with a change set per group (each atomic on its own).

        With `continue_on_error` a failing change set does not stop the ones after it.
        Answers come flattened, in order: every operation of a group that succeeded, or
        the one failing operation of a group that did not (match them by `content_id`).
        """
        encoded = encode_changesets(groups, api_path=self.api_path)
        return self._send_batch(encoded, continue_on_error=continue_on_error)

    # --- transport --------------------------------------------------------------------------

    def _send_batch(
        self, encoded: tuple[str, bytes], *, continue_on_error: bool
    ) -> list[BatchResponse]:
        content_type, content = encoded
        headers = {"Content-Type": content_type}
        if continue_on_error:
            headers["Prefer"] = "odata.continue-on-error"
        response = self._request(
            "POST", "$batch", content=content, headers=headers, idempotent=False, batch=True
        )
        return decode_batch(response.headers.get("Content-Type", ""), response.content)

    def _request(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool = True,
        creates: bool = False,
        batch: bool = False,
    ) -> httpx.Response:
        """One request through the retry policy. With `batch`, a multipart answer is returned
        whatever its status: a `$batch` that stopped at a failure answers with that
        request's status and a body holding the failure (crm.md A.11)."""

        def send() -> httpx.Response:
            remaining = self.gate.wait(max_wait=self.backoff_max)
            if remaining is not None:
                # An earlier 429 asked for a pause longer than we park a thread for.
                raise Throttled(
                    429,
                    "",
                    f"paused by service protection for {remaining:.0f} s",
                    transient=True,
                    retry_after=remaining,
                )
            with self.gate.slot():
                sent_at = self.gate.now()
                try:
                    response = self._http.request(
                        method, url, json=json, content=content, params=params, headers=headers
                    )
                except SlotUnavailable:
                    raise  # not sent, and not an attempt: the caller reschedules
                except httpx.TransportError as exc:
                    raise transport_error(
                        exc,
                        f"{method} {entity_set_of(url)}",
                        not_sent=ConnectionFailed,
                        unavailable=Unavailable,
                    ) from None
            if response.status_code < 400 or (batch and _is_multipart(response)):
                return response
            error = self._error(response, creates=creates)
            if isinstance(error, Throttled) and error.retry_after is not None:
                self.gate.pause(error.retry_after, since=sent_at)
            raise error

        # A 5xx or a read timeout after a POST may have been applied: resending could
        # create a second record. A 429 or a failed connect certainly was not. Only a
        # 429's pause counts, and the shared gate sleeps it out for every thread; one
        # longer than `backoff_max` gives up so the caller reschedules.
        policy = self._retrying(
            idempotent=idempotent,
            not_run=(Throttled, ConnectionFailed),
            retry_after=_throttle_pause,
            wait_retry_after=False,
        )
        return policy(send)

    def _error(self, response: httpx.Response, *, creates: bool = False) -> DataverseError:
        code, message = error_parts(response)
        return error_for(
            response.status_code,
            code,
            message,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
            creates=creates,
        )

    @staticmethod
    def _entity_id(response: httpx.Response) -> str:
        uri = response.headers.get("OData-EntityId") or response.headers.get("Location")
        if uri:
            return entity_id(uri)
        body = response.json() if response.content else {}
        for name, value in body.items():  # return=representation: the primary id column
            if name.endswith("id") and isinstance(value, str) and len(value) == 36:
                return value
        raise DataverseError(
            response.status_code, "", "create answered without a record id", transient=False
        )


def _is_multipart(response: httpx.Response) -> bool:
    return response.headers.get("Content-Type", "").startswith("multipart/mixed")


def _throttle_pause(error: BaseException | None) -> float | None:
    return error.retry_after if isinstance(error, Throttled) else None


def _duplicate_header(detect: bool | None) -> dict[str, str]:
    if detect is None:
        return {}
    return {"MSCRM.SuppressDuplicateDetection": "false" if detect else "true"}


def entity_set_of(url: str) -> str:
    """The entity set a request URL addresses, for error messages without query strings."""
    return url.split("?", 1)[0].rsplit("/", 1)[-1]
