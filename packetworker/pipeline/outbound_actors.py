"""Outbound actors (BC → mobile). Thin: each calls a plain function of `packetworker.outbound`.

- `push_user(user, mode)` builds and pushes one user's master-data packet (complete,
  incremental or stock); a push already running for that user makes it retry later.
- `handle_notification(message)` acts on one BC webhook notification (queued by `web`).
- `renew_subscriptions()` creates, renews and recreates the webhook subscriptions, and
  queues the catch-up after a subscription gap.
- `poll_changes(resource, company)` polls a resource BC has no webhook for, or one catching
  up, in one company (every company outbound reads when none is named).

Outbound work has its own queue, so a large push never delays inbound packets.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import dramatiq
from dramatiq.middleware import Middleware

from packetworker.logs import bind
from packetworker.outbound import OutboundContext, ensure_subscriptions
from packetworker.outbound import handle_notification as handle
from packetworker.outbound import poll_changes as poll
from packetworker.outbound import push_user as push
from packetworker.outbound.notifications import Notification, backfill
from packetworker.pipeline.actors import transient_as_warning, wake_for_customer_change
from packetworker.pipeline.broker import retryable, setup_broker
from packetworker.pipeline.context import outbound_context
from packetworker.settings import get_settings

logger = logging.getLogger(__name__)

OUTBOUND_QUEUE = "pw-outbound"

settings = get_settings()
broker = setup_broker(settings)


class _OutboundHolder(Middleware):
    """One `OutboundContext` per worker process, built on first use (after the fork: HTTP
    and Redis connections must not be shared across processes) and closed on shutdown."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._context: OutboundContext | None = None

    def get(self) -> OutboundContext:
        with self._lock:
            if self._context is None:
                # On the request budgets every process shares, like the inbound pipeline.
                self._context = outbound_context(settings)
            return self._context

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        with self._lock:
            context, self._context = self._context, None
        if context is not None:
            context.close()


_holder = _OutboundHolder()
broker.add_middleware(_holder)


def get_outbound_context() -> OutboundContext:
    return _holder.get()


def _retry(retries: int, exception: BaseException) -> bool:
    """Transient errors, including a push that found another push to the same user running
    (`PushBusy` is transient)."""
    return retries < settings.process_max_retries and retryable(exception)


@dramatiq.actor(queue_name=OUTBOUND_QUEUE, retry_when=_retry, max_age=86_400_000)
def push_user(user: str, mode: str = "incremental") -> None:
    """Push `user`'s master data; transient failures retry, watermarks stay until success."""
    with transient_as_warning(bind(logger, user=user, mode=mode)):
        outcome = push(get_outbound_context(), user, mode=mode)  # type: ignore[arg-type]
    bind(logger, user=user, mode=mode, company=outcome.company).info(
        "Push done: %d records.", outcome.records, extra={"packet_id": outcome.packet_unique_id}
    )


@dramatiq.actor(queue_name=OUTBOUND_QUEUE, retry_when=_retry, max_age=86_400_000)
def handle_notification(message: dict[str, Any]) -> None:
    """Act on one BC notification (as `Notification.to_message()` wrote it)."""
    note = Notification(**message)
    ctx = get_outbound_context()
    log = bind(logger, entity_set=note.entity_set)
    with transient_as_warning(log):
        handled = handle(ctx, note, enqueue_push=enqueue_push)
    log.info("Notification: %s.", handled.action)
    company = ctx.company_by_id(note.company_id)
    if (
        note.entity_set == "customers"
        and note.change_type != "deleted"
        and handled.action != "ignored"
        and company is not None
    ):
        # A customer changed (e.g. unblocked after review): documents held on it try now.
        wake_for_customer_change(company.source.client, note.entity_id)


@dramatiq.actor(queue_name=OUTBOUND_QUEUE, retry_when=lambda retries, exc: False)
def renew_subscriptions() -> None:
    """Keep every webhook subscription alive and catch up after a gap; the clock sends the
    next run anyway."""
    ctx = get_outbound_context()
    outcomes = ensure_subscriptions(ctx)
    for outcome in outcomes:
        bind(logger, resource=outcome.resource).info("Subscription %s.", outcome.action)
    backfill(ctx, outcomes, enqueue_push=enqueue_push, enqueue_poll=enqueue_poll_changes)


@dramatiq.actor(queue_name=OUTBOUND_QUEUE, retry_when=lambda retries, exc: False)
def poll_changes(resource: str, company: str | None = None) -> None:
    """Poll `resource` in `company` (a `Company.key`; None: every company outbound reads)
    when it has no webhook or is catching up (no-op otherwise)."""
    ctx = get_outbound_context()
    if company is None:
        poll(ctx, resource)
    elif company in ctx.companies:
        poll(ctx, resource, company=ctx.companies[company])
    else:  # queued before a settings change; the clock's own polls cover what is read now
        bind(logger, resource=resource, company=company).info("Company no longer read.")


def enqueue_push(user: str, mode: str = "incremental") -> None:
    push_user.send(user, mode)


def enqueue_notification(message: dict[str, Any]) -> None:
    """What the `web` process calls per accepted notification."""
    handle_notification.send(message)


def enqueue_renewal() -> None:
    renew_subscriptions.send()


def enqueue_poll_changes(resource: str, company: str | None = None) -> None:
    poll_changes.send(resource, company)


__all__ = [
    "OUTBOUND_QUEUE",
    "enqueue_notification",
    "enqueue_poll_changes",
    "enqueue_push",
    "enqueue_renewal",
    "get_outbound_context",
    "handle_notification",
    "poll_changes",
    "push_user",
    "renew_subscriptions",
]
