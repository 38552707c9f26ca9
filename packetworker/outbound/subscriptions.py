"""The webhook subscription manager: one BC subscription per configured resource, kept alive.

Each run (the clock sends one every `webhook_check_interval`):
- a resource without a live subscription gets one (BC handshakes with the `web` process
  first); one BC deleted or let expire is recreated the same way;
- a subscription with less than `renew_before` left is renewed (PATCH with If-Match: its
  etag), which extends it by three days and handshakes again; a 404 on renewal recreates it;
- a resource BC refuses (400 on create, e.g. salesShipments) is switched to polling by
  `lastModifiedDateTime`, starting from the newest change BC has now. The next run tries the
  webhook again (a failed handshake is a 400 too), and polling stops once one is accepted.

BC may deliver a notification to a subscription that was deleted and recreated meanwhile;
notifications are handled by resource, not by subscription id, so nothing is lost.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from packetworker.logs import bind
from packetworker.outbound.context import OutboundContext
from packetworker.outbound.state import SubscriptionRecord
from packetworker.targets.bc import BCError, NotFound

logger = logging.getLogger(__name__)

Action = Literal["created", "renewed", "recreated", "kept", "polling", "failed"]


@dataclass(frozen=True)
class SubscriptionOutcome:
    resource: str
    action: Action
    subscription_id: str = ""
    expires: str = ""
    detail: str = ""


def ensure_subscriptions(ctx: OutboundContext) -> list[SubscriptionOutcome]:
    """Create, renew or recreate the subscription of every configured resource."""
    if not ctx.webhook.url:
        raise ValueError("WEBHOOK_URL is not set: BC has nowhere to send notifications")
    live = {s["subscriptionId"]: s for s in ctx.bc.list_subscriptions()}
    return [_ensure(ctx, resource, live) for resource in ctx.webhook.resources]


def _ensure(ctx: OutboundContext, resource: str, live: dict[str, dict]) -> SubscriptionOutcome:
    log = bind(logger, resource=resource)
    stored = ctx.state.subscription(resource)
    had_webhook = stored is not None and stored.mode == "webhook"
    current = live.get(stored.subscription_id) if had_webhook else None
    try:
        if current is None:
            current = _adopt(ctx, resource, live)
        if current is None:
            action: Action = "recreated" if had_webhook else "created"
            if had_webhook:
                log.warning("Subscription %s is gone from BC; recreating.", stored.subscription_id)
            try:
                current = ctx.bc.create_subscription(
                    notification_url=ctx.webhook.url,
                    resource=ctx.bc.resource(resource),
                    client_state=ctx.webhook.client_state or None,
                )
            except BCError as exc:
                if exc.status != 400:
                    raise
                # Refused (e.g. salesShipments), or the handshake failed: either way polling
                # keeps documents flowing, and the next run tries the webhook again.
                return _fall_back_to_polling(ctx, resource, exc)
        elif _left(ctx, current) < timedelta(seconds=ctx.webhook.renew_before):
            action = "renewed"
            current = _renew(ctx, current)
        else:
            action = "kept"
    except BCError as exc:
        log.warning("Could not keep the subscription: %s", exc)
        ctx.state.count("subscription_failed")
        return SubscriptionOutcome(resource, "failed", detail=str(exc))
    record = SubscriptionRecord(
        resource=resource,
        mode="webhook",
        subscription_id=current["subscriptionId"],
        etag=current.get("@odata.etag", ""),
        expires=current.get("expirationDateTime", ""),
    )
    ctx.state.put_subscription(record)
    if action != "kept":
        ctx.state.count(f"subscription_{action}")
        log.info("Subscription %s %s until %s.", record.subscription_id, action, record.expires)
    return SubscriptionOutcome(resource, action, record.subscription_id, record.expires)


def _adopt(ctx: OutboundContext, resource: str, live: dict[str, dict]) -> dict | None:
    """A live subscription of ours for `resource` we lost track of (e.g. Redis was flushed);
    reusing it keeps us under BC's 200-subscription limit."""
    wanted = ctx.bc.resource(resource).lstrip("/").lower()
    for sub in live.values():
        if (
            sub.get("notificationUrl") == ctx.webhook.url
            and sub.get("resource", "").lstrip("/").lower() == wanted
        ):
            return sub
    return None


def _renew(ctx: OutboundContext, current: dict) -> dict:
    try:
        return ctx.bc.renew_subscription(current["subscriptionId"], current["@odata.etag"])
    except NotFound:
        # Expired or deleted between the list and the PATCH: make a new one.
        return ctx.bc.create_subscription(
            notification_url=current["notificationUrl"],
            resource=current["resource"],
            client_state=ctx.webhook.client_state or None,
        )


def _left(ctx: OutboundContext, sub: dict) -> timedelta:
    expires = datetime.fromisoformat(sub["expirationDateTime"].replace("Z", "+00:00"))
    return expires - ctx.now()


def _fall_back_to_polling(ctx: OutboundContext, resource: str, exc: BCError) -> SubscriptionOutcome:
    detail = exc.bc_message or str(exc)
    bind(logger, resource=resource).warning(
        "BC refuses webhooks for this resource (%s); polling it by lastModifiedDateTime.", detail
    )
    if ctx.state.poll_mark(resource) is None:
        # Start from what exists now: older documents are not news to anyone.
        ctx.state.set_poll_mark(resource, ctx.source.latest_change(resource) or EPOCH)
    ctx.state.put_subscription(SubscriptionRecord(resource, "polling", detail=detail))
    ctx.state.count("subscription_polling")
    return SubscriptionOutcome(resource, "polling", detail=detail)


EPOCH = "0001-01-01T00:00:00.000Z"
