"""BC webhook notifications and the fallback poll: what a change in BC leads to.

A notification carries no data, only a pointer (docs/business-central.md §6.4):
- the notification's company (its GUID in `resource`) decides whose concern it is: only the
  users of that company (`OUTBOUND_USERS=user@COMPANY`); a company outbound does not read is
  ignored;
- a master-data resource (items, customers, ...) queues one incremental push per user of
  the company; a burst of notifications queues one push per user, not one per notification;
- a master record `deleted` becomes a pending `delete` record for every user of the company
  who holds it (sent index), carried by that incremental push;
- a document (sales shipment, sales invoice) created or updated is read with its lines and
  pushed to the user its salesperson maps to; the resource's poll mark follows it, so a
  catch-up poll after a subscription gap starts where notifications left off;
- `collection` (more than 1,000 changes at once) re-reads by `lastModifiedDateTime`.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from packetworker.logs import bind
from packetworker.outbound.context import Company, OutboundContext
from packetworker.outbound.push import DocumentOutcome, Mode, push_document
from packetworker.outbound.source import MODIFIED, later, same_instant
from packetworker.outbound.state import SubscriptionRecord
from packetworker.outbound.subscriptions import SubscriptionOutcome, start_polling

logger = logging.getLogger(__name__)

_RESOURCE = re.compile(
    r"companies\((?P<company>[^)]+)\)/(?P<set>[A-Za-z]\w*)(?:\((?P<id>[^)]+)\))?", re.ASCII
)
CHANGE_TYPES = frozenset({"created", "updated", "deleted", "collection"})


@dataclass(frozen=True)
class Notification:
    company_id: str
    entity_set: str
    entity_id: str | None
    change_type: str
    subscription_id: str = ""
    last_modified: str | None = None

    def to_message(self) -> dict[str, Any]:
        """The fields a queued message carries (never the clientState)."""
        return {
            "company_id": self.company_id,
            "entity_set": self.entity_set,
            "entity_id": self.entity_id,
            "change_type": self.change_type,
            "subscription_id": self.subscription_id,
            "last_modified": self.last_modified,
        }


def parse_notification(note: Mapping[str, Any]) -> Notification:
    """One `value[]` item of a BC notification; ValueError when it is not one."""
    resource = note.get("resource")
    change_type = note.get("changeType")
    if not isinstance(resource, str) or change_type not in CHANGE_TYPES:
        raise ValueError("not a BC notification (resource/changeType)")
    match = _RESOURCE.search(resource.split("?", 1)[0])
    if match is None:
        raise ValueError(f"unrecognised notification resource {resource[:200]!r}")
    entity_id = match.group("id")
    return Notification(
        company_id=match.group("company").strip("'").lower(),
        entity_set=match.group("set"),
        entity_id=entity_id.strip("'").lower() if entity_id else None,
        change_type=change_type,
        subscription_id=str(note.get("subscriptionId", "")),
        last_modified=note.get("lastModifiedDateTime"),
    )


@dataclass
class Handled:
    action: str  # pushes_queued | document_pushed | polled | ignored
    users: list[str] = field(default_factory=list)
    documents: list[DocumentOutcome] = field(default_factory=list)
    detail: str = ""


def handle_notification(
    ctx: OutboundContext,
    note: Notification,
    *,
    enqueue_push: Callable[[str, Mode], None],
) -> Handled:
    """Act on one notification. `enqueue_push(user, mode)` queues a master-data push."""
    ctx.state.count("notifications")
    company = ctx.company_by_id(note.company_id)
    label = company.label if company else note.company_id
    log = bind(logger, entity_set=note.entity_set, change_type=note.change_type, company=label)
    if company is None:
        log.info("Notification for a company outbound does not read; ignored.")
        return Handled("ignored", detail="other company")
    if note.entity_set in ctx.mapping.documents:
        if note.change_type == "collection" or note.entity_id is None:
            polled = poll_changes(ctx, note.entity_set, company=company, force=True)
            return Handled("polled", documents=polled)
        if note.change_type == "deleted":
            return Handled("ignored", detail="deleted document")
        outcome = push_document(ctx, note.entity_set, note.entity_id, company=company)
        advance_poll_mark(ctx, company.scoped(note.entity_set), note.entity_id, outcome.modified)
        return Handled("document_pushed", documents=[outcome])
    if note.entity_set in ctx.mapping.master_entity_sets():
        if note.change_type == "deleted" and note.entity_id:
            note_deletion(ctx, note.entity_set, note.entity_id, company=company)
        queued = queue_pushes(ctx, enqueue_push, company=company)
        log.info("Queued incremental pushes for %s.", queued or "nobody (already queued)")
        return Handled("pushes_queued", users=queued)
    log.info("No outbound mapping for this resource; ignored.")
    return Handled("ignored", detail="unmapped resource")


def queue_pushes(
    ctx: OutboundContext, enqueue_push: Callable[[str, Mode], None], *, company: Company
) -> list[str]:
    """Queue an incremental push per user of `company`, unless one is already queued."""
    users = ctx.users_of(company)
    queued = [u for u in users if ctx.state.claim_push(u, ttl=ctx.push_claim_ttl)]
    for user in queued:
        enqueue_push(user, "incremental")
    return queued


def note_deletion(
    ctx: OutboundContext, entity_set: str, entity_id: str, *, company: Company
) -> list[str]:
    """A master record `company` deleted: a pending `delete` for every user of the company
    holding it, in every packet table read from `entity_set`. Returns the users concerned."""
    users = set()
    for table in ctx.mapping.master_tables(options=ctx.options):
        if table.entity_set != entity_set:
            continue
        name = table.table.name
        for user in ctx.users_of(company):
            scope = company.scoped(user)
            keys = ctx.state.sent_key(scope, name, entity_id)
            if keys is not None:
                ctx.state.add_deletions(scope, name, {entity_id: keys})
                users.add(user)
    bind(logger, entity_set=entity_set).info("Deletion pending for %s.", sorted(users) or "nobody")
    return sorted(users)


def advance_poll_mark(
    ctx: OutboundContext, resource: str, entity_id: str, modified: str | None
) -> None:
    """Move `resource`'s poll mark (scoped to its company) to a document just pushed (never
    backwards)."""
    if not modified:
        return
    mark = ctx.state.poll_mark(resource)
    if same_instant(mark, modified):
        ctx.state.set_poll_ids(resource, ctx.state.poll_ids(resource) | {entity_id})
    elif later(mark, modified) == modified:
        ctx.state.set_poll_mark(resource, modified)
        ctx.state.set_poll_ids(resource, {entity_id})


def backfill(
    ctx: OutboundContext,
    outcomes: list[SubscriptionOutcome],
    *,
    enqueue_push: Callable[[str, Mode], None],
    enqueue_poll: Callable[[str, str], None],
) -> list[str]:
    """After a subscription gap, catch up before notifications are trusted again: documents
    are polled from their mark (`enqueue_poll(resource, company key)`), master data is
    pushed incrementally from the watermarks to the company's users. Returns the resources
    caught up."""
    gaps = [o for o in outcomes if o.catch_up]
    for gap in gaps:
        company = ctx.companies[gap.company]
        log = bind(logger, resource=gap.resource, company=company.label)
        log.warning("Subscription gap; catching up by polling.")
        ctx.state.count("subscription_catch_up")
        if gap.resource in ctx.mapping.documents:
            enqueue_poll(gap.resource, company.key)
        elif gap.resource in ctx.mapping.master_entity_sets():
            queue_pushes(ctx, enqueue_push, company=company)
    return [gap.resource for gap in gaps]


def poll_changes(
    ctx: OutboundContext, resource: str, *, company: Company | None = None, force: bool = False
) -> list[DocumentOutcome]:
    """Push documents of `resource` changed since its poll mark, oldest first, in `company`
    (None: in every company outbound reads, one after the other).

    Runs while the resource is polled (BC has no webhook for it), while it catches up after a
    subscription gap (then clears the flag), or when `force`d (a `collection` notification).
    Without a mark yet, it only records where to start. The mark is inclusive (`ge`);
    documents already pushed at exactly that instant are skipped.
    """
    if resource not in ctx.mapping.documents:
        raise ValueError(f"{resource!r} is not a document resource; it cannot be polled")
    if company is None:
        companies = ctx.companies.values()
        return [o for c in companies for o in poll_changes(ctx, resource, company=c, force=force)]
    key = company.scoped(resource)  # the resource's marks and subscription in this company
    record = ctx.state.subscription(key)
    catching_up = record is not None and bool(record.catch_up)
    if not force and not catching_up and (record is None or record.mode != "polling"):
        return []
    mark = ctx.state.poll_mark(key)
    if mark is None:
        start_polling(ctx, resource, company)
        _caught_up(ctx, record)
        return []
    done = ctx.state.poll_ids(key)
    outcomes = []
    for entity in company.source.changed(resource, since=mark):
        modified = entity.get(MODIFIED)
        if entity["id"] in done and same_instant(modified, mark):
            continue
        pushed = push_document(ctx, resource, entity["id"], company=company, header=entity)
        outcomes.append(pushed)
        # Advanced per document: a failure later in the run repeats only what is left.
        advance_poll_mark(ctx, key, entity["id"], modified)
    _caught_up(ctx, record)
    if outcomes:
        log = bind(logger, resource=resource, company=company.label)
        log.info("Polled %d changed documents.", len(outcomes))
    return outcomes


def _caught_up(ctx: OutboundContext, record: SubscriptionRecord | None) -> None:
    if record is not None and record.catch_up:
        current = ctx.state.subscription(record.resource)
        if current is not None and current.subscription_id == record.subscription_id:
            ctx.state.put_subscription(dataclasses.replace(current, catch_up=""))
