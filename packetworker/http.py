"""The one HTTP layer of every client of a remote service: the portal, Business Central and
the CRMs (Dataverse, CRM as a Service, the Dynamics portal proxy).

- `open_client`: an `httpx.Client` whose requests spend the service's request budget
  (`packetworker.request_budget`) and are counted for `/metrics` (`packetworker.metrics`).
- `never_sent`: whether a failed request certainly did not reach the service — no connection
  was made, or none came free (httpx's pool, or no slot of the request budget). Only such a
  request, or a throttled one, may be sent again when it is not idempotent: any other failure
  after sending leaves its outcome unknown (business-central.md §5.3).
- `is_transient_status`: the answers a later try may get past.
- `resend_policy`: the shared retry policy (`packetworker.retrying`) for one request.

Each client keeps its own typed, redacted errors and turns `httpx` failures into them here at
the edge, so no `httpx` exception travels further up than its client.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from tenacity import Retrying

from packetworker.metrics import response_hook
from packetworker.request_budget import RequestLimiter, budgeted
from packetworker.retrying import retrying

# The request never left: no connection, or no free connection (or budget slot) to send on.
# `request_budget.SlotUnavailable` is a `PoolTimeout`, so it is covered too.
NOT_SENT_ERRORS: tuple[type[httpx.TransportError], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)
# Statuses the services document as "try again later" (429/503 carry Retry-After; 408 and
# 504 mean the operation ran too long and may succeed when the service is less busy).
TRANSIENT_STATUSES = frozenset({408, 429, 502, 503, 504})


def never_sent(error: BaseException) -> bool:
    """Whether a failed request certainly did not reach the service (safe to send again)."""
    return isinstance(error, NOT_SENT_ERRORS)


def is_transient_status(status: int) -> bool:
    """Whether an answer with `status` may succeed when sent again."""
    return status in TRANSIENT_STATUSES or status >= 500


def open_client(
    *,
    service: str | None,
    transport: httpx.BaseTransport | None = None,
    limiter: RequestLimiter | None = None,
    limits: httpx.Limits | None = None,
    **options: Any,
) -> httpx.Client:
    """An `httpx.Client` on `transport` (httpx's own with `limits` when None) whose requests
    hold a slot of `limiter` while in flight and, for a named `service`, are counted per
    status for `/metrics`; `options` go to `httpx.Client`."""
    hooks = {"response": [response_hook(service)]} if service else {}
    return httpx.Client(
        transport=budgeted(transport, limiter, limits=limits), event_hooks=hooks, **options
    )


def resend_policy(
    *,
    idempotent: bool,
    worth_retrying: Callable[[BaseException], bool],
    not_run: Callable[[BaseException], bool],
    attempts: int,
    backoff_base: float,
    backoff_max: float,
    sleep: Callable[[float], None],
    **options: Any,
) -> Retrying:
    """The policy for one request: a failure `worth_retrying` is sent again, and for a write
    that is not idempotent (a POST that creates) only one that certainly did not run —
    `not_run`: throttled, or never sent — since resending could create a second record.
    `options` go to `packetworker.retrying.retrying`."""
    return retrying(
        retry=lambda error: worth_retrying(error) and (idempotent or not_run(error)),
        attempts=attempts,
        backoff_base=backoff_base,
        backoff_max=backoff_max,
        sleep=sleep,
        **options,
    )
