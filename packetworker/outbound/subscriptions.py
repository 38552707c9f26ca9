"""The webhook subscription manager: one BC subscription per configured resource, kept alive.

Each run (the clock sends one every `webhook_check_interval`), for every company outbound
reads (a BC subscription names one company's resource; its state is kept per company):
- BC is asked which resources take webhooks (`webhookSupportedResources`, business-central.md
  §6.5); a configured resource it lacks is polled instead, without trying to subscribe. When
  the tenant cannot answer that, every resource is tried and a refusal means polling;
- a resource without a live subscription gets one (BC handshakes with the `web` process
  first); one BC deleted or let expire is recreated the same way;
- a subscription with less than `renew_before` left is renewed: a PATCH with If-Match (its
  etag) and the body Microsoft's example sends (notificationUrl, resource, clientState), which
  extends it by three days and handshakes again; a 404 on renewal recreates it;
- a resource BC refuses (400 on create) is switched to polling by `lastModifiedDateTime`,
  starting from the newest change BC has now. The next run tries the webhook again (a failed
  handshake is a 400 too), and polling stops once one is accepted.

A recreated subscription, or a webhook replacing polling, leaves a gap: changes made while no
subscription existed were never notified. Its outcome says `catch_up`, and a document
resource is marked so that its poll runs from the last mark before notifications are trusted
again (`notifications.backfill` queues that poll, or incremental pushes for master data).

BC may deliver a notification to a subscription that was deleted and recreated meanwhile;
notifications are handled by resource, not by subscription id, so nothing is lost.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from packetworker.logs import bind
from packetworker.outbound.context import Company, OutboundContext
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
    catch_up: bool = False  # changes may have gone un-notified: backfill by polling
    company: str = ""  # `Company.key` ("" for BC_COMPANY)


def ensure_subscriptions(ctx: OutboundContext) -> list[SubscriptionOutcome]:
    """Create, renew or recreate the subscription of every configured resource of every
    company outbound reads."""
    if not ctx.webhook.url:
        raise ValueError("WEBHOOK_URL is not set: BC has nowhere to send notifications")
    live = {s["subscriptionId"]: s for s in ctx.bc.list_subscriptions()}
    outcomes = []
    for company in ctx.companies.values():
        supported = supported_resources(company)
        for resource in ctx.webhook.resources:
            outcomes.append(_ensure(ctx, company, resource, live, supported))
    return outcomes


def supported_resources(company: Company) -> set[str] | None:
    """The entity sets BC sends webhooks for, or None when the tenant cannot say (e.g. an
    on-premises server without the runtime API): then a refused create decides."""
    try:
        return company.source.client.webhook_supported_resources()
    except BCError as exc:
        if exc.transient:
            raise
        logger.warning("BC does not list its webhook-supported resources (%s).", exc)
        return None


def _ensure(
    ctx: OutboundContext,
    company: Company,
    resource: str,
    live: dict[str, dict],
    supported: set[str] | None,
) -> SubscriptionOutcome:
    log = bind(logger, resource=resource, company=company.label)
    key = company.scoped(resource)  # the resource's state in this company
    bc = company.source.client
    stored = ctx.state.subscription(key)
    had_webhook = stored is not None and stored.mode == "webhook"
    if supported is not None and resource not in supported:
        detail = "not in BC's webhookSupportedResources"
        return _fall_back_to_polling(ctx, company, resource, detail)
    current = live.get(stored.subscription_id) if had_webhook else None
    try:
        if current is None:
            current = _adopt(ctx, bc.resource(resource), live)
        if current is None:
            action: Action = "recreated" if had_webhook else "created"
            if had_webhook:
                log.warning("Subscription %s is gone from BC; recreating.", stored.subscription_id)
            try:
                current = bc.create_subscription(
                    notification_url=ctx.webhook.url,
                    resource=bc.resource(resource),
                    client_state=ctx.webhook.client_state or None,
                )
            except BCError as exc:
                if exc.status != 400:
                    raise
                # Refused, or the handshake failed: either way polling keeps documents
                # flowing, and the next run tries the webhook again.
                detail = exc.bc_message or str(exc)
                return _fall_back_to_polling(ctx, company, resource, detail)
        elif _left(ctx, current) < timedelta(seconds=ctx.webhook.renew_before):
            action = "renewed"
            current, recreated = _renew(ctx, current)
            if recreated:
                action = "recreated"
        else:
            action = "kept"
    except BCError as exc:
        log.warning("Could not keep the subscription: %s", exc)
        ctx.state.count("subscription_failed")
        return SubscriptionOutcome(resource, "failed", detail=str(exc), company=company.key)
    if resource in ctx.mapping.documents and ctx.state.poll_mark(key) is None:
        # Where a catch-up after a future gap starts; notifications move it on.
        start_polling(ctx, resource, company)
    # A gap: the subscription was gone, or polling stopped before this webhook existed.
    gap = action == "recreated" or (action == "created" and stored is not None)
    catch_up = gap or bool(stored and stored.catch_up)
    record = SubscriptionRecord(
        resource=key,
        mode="webhook",
        subscription_id=current["subscriptionId"],
        etag=current.get("@odata.etag", ""),
        expires=current.get("expirationDateTime", ""),
        catch_up="1" if catch_up and resource in ctx.mapping.documents else "",
    )
    ctx.state.put_subscription(record)
    if action != "kept":
        ctx.state.count(f"subscription_{action}")
        log.info("Subscription %s %s until %s.", record.subscription_id, action, record.expires)
    return SubscriptionOutcome(
        resource,
        action,
        record.subscription_id,
        record.expires,
        catch_up=catch_up,
        company=company.key,
    )


def _adopt(ctx: OutboundContext, resource: str, live: dict[str, dict]) -> dict | None:
    """A live subscription of ours for `resource` (the company's path) we lost track of
    (e.g. Redis was flushed); reusing it keeps us under BC's 200-subscription limit."""
    wanted = resource.lstrip("/").lower()
    for sub in live.values():
        if (
            sub.get("notificationUrl") == ctx.webhook.url
            and sub.get("resource", "").lstrip("/").lower() == wanted
        ):
            return sub
    return None


def _renew(ctx: OutboundContext, current: dict) -> tuple[dict, bool]:
    """The renewed subscription, and whether it had to be created anew."""
    try:
        return ctx.bc.renew_subscription(current, client_state=ctx.webhook.client_state), False
    except NotFound:
        # Expired or deleted between the list and the PATCH: make a new one.
        created = ctx.bc.create_subscription(
            notification_url=current["notificationUrl"],
            resource=current["resource"],
            client_state=ctx.webhook.client_state or None,
        )
        return created, True


def _left(ctx: OutboundContext, sub: dict) -> timedelta:
    expires = datetime.fromisoformat(sub["expirationDateTime"].replace("Z", "+00:00"))
    return expires - ctx.now()


def _fall_back_to_polling(
    ctx: OutboundContext, company: Company, resource: str, detail: str
) -> SubscriptionOutcome:
    """Poll `resource`: documents by their poll mark, master data by the scheduled
    incremental pushes (which read every master table by watermark anyway)."""
    bind(logger, resource=resource, company=company.label).warning(
        "No webhook for this resource (%s); polling it by lastModifiedDateTime.", detail
    )
    key = company.scoped(resource)
    if resource in ctx.mapping.documents and ctx.state.poll_mark(key) is None:
        start_polling(ctx, resource, company)
    ctx.state.put_subscription(SubscriptionRecord(key, "polling", detail=detail))
    ctx.state.count("subscription_polling")
    return SubscriptionOutcome(resource, "polling", detail=detail, company=company.key)


EPOCH = "0001-01-01T00:00:00.000Z"


def start_polling(ctx: OutboundContext, resource: str, company: Company) -> None:
    """Start `resource`'s poll mark in `company` at what exists now (with the ids changed at
    that very instant): older documents are not news to anyone."""
    mark, ids = company.source.newest(resource)
    key = company.scoped(resource)
    ctx.state.set_poll_mark(key, mark or EPOCH)
    ctx.state.set_poll_ids(key, ids)
