"""What the CRM clients (CRM as a Service, Dataverse, the Dynamics portal proxy) share: one
`httpx.Client` opened by `packetworker.http` (request budget, metrics) with their retry
settings, closing it (and its auth, when that holds anything), use as a context manager,
and a JSON call resent on the shared policy.

Each client keeps its own error classes and how it reads an error answer (`_error`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Self

import httpx
from tenacity import Retrying

from packetworker.http import open_client, resend_policy
from packetworker.request_budget import RequestLimiter, SlotUnavailable
from packetworker.targets.http_errors import HTTPTargetError, transport_error


class HTTPClient:
    """Base of the CRM clients. Subclasses set the three error classes below and `_error`."""

    throttled: ClassVar[type[HTTPTargetError]]  # a 429: certainly not run
    not_sent: ClassVar[type[HTTPTargetError]]  # no connection: certainly not run
    unavailable: ClassVar[type[HTTPTargetError]]  # no answer: it may have run

    _http: httpx.Client

    def _connect(
        self,
        *,
        auth: httpx.Auth,
        timeout: float,
        transport: httpx.BaseTransport | None,
        attempts: int,
        backoff_base: float,
        backoff_max: float,
        sleep: Callable[[float], None],
        base_url: str = "",
        headers: Mapping[str, str] | None = None,
        limiter: RequestLimiter | None = None,
        **options: Any,
    ) -> None:
        """Keep the retry settings and open the client (`options` go to `httpx.Client`);
        with a `limiter`, every request holds one of its slots while in flight."""
        self.attempts = max(1, attempts)
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self._sleep = sleep
        self._http = open_client(
            # Requests and 429s per target system (its package's name), for /metrics.
            service=type(self).__module__.split(".")[-2],
            transport=transport,
            limiter=limiter,
            base_url=base_url,
            auth=auth,
            headers=headers or {"Accept": "application/json"},
            timeout=httpx.Timeout(timeout),
            **options,
        )

    def close(self) -> None:
        self._http.close()
        close_auth = getattr(self._http.auth, "close", None)
        if close_auth is not None:
            close_auth()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _error(self, response: httpx.Response) -> HTTPTargetError:
        raise NotImplementedError

    def _retrying(
        self, *, idempotent: bool, not_run: tuple[type[BaseException], ...], **options: Any
    ) -> Retrying:
        """The policy for one request: a transient error is sent again, and for a write that
        is not idempotent only one of `not_run` (throttled, never sent), which certainly
        did not run. `options` go to `packetworker.retrying.retrying`."""
        return resend_policy(
            idempotent=idempotent,
            worth_retrying=lambda error: isinstance(error, HTTPTargetError) and error.transient,
            not_run=lambda error: isinstance(error, not_run),
            attempts=self.attempts,
            backoff_base=self.backoff_base,
            backoff_max=self.backoff_max,
            sleep=self._sleep,
            **options,
        )

    def _json_call(
        self,
        method: str,
        url: str,
        *,
        json: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        idempotent: bool = True,
    ) -> Any:
        """One request and its JSON answer (None when empty), resent while `_retrying`
        allows: a write that is not idempotent only when it certainly did not run."""

        def send() -> Any:
            body = dict(json) if json is not None else None
            try:
                # DELETE with a JSON body: httpx.request() builds it; some contracts ask for one.
                response = self._http.request(method, url, json=body, params=params)
            except SlotUnavailable:
                raise  # not sent, and not an attempt: the caller reschedules
            except httpx.TransportError as exc:
                raise transport_error(
                    exc, f"{method} {url}", not_sent=self.not_sent, unavailable=self.unavailable
                ) from None
            if response.status_code >= 400:
                raise self._error(response)
            return response.json() if response.content.strip() else None

        policy = self._retrying(idempotent=idempotent, not_run=(self.throttled, self.not_sent))
        return policy(send)
