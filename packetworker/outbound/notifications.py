"""BC webhook notifications and the fallback poll: what a change in BC leads to.

A notification carries no data, only a pointer (docs/business-central.md §6.4):
- a master-data resource (items, customers, ...) queues one incremental push per configured
  user; a burst of notifications queues one push per user, not one per notification;
- a document (sales shipment, sales invoice) created or updated is read with its lines and
  pushed to the user its salesperson maps to;
- `collection` (more than 1,000 changes at once) re-reads by `lastModifiedDateTime`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from packetworker.logs import bind
from packetworker.outbound.context import OutboundContext
from packetworker.outbound.push import DocumentOutcome, Mode, push_document
from packetworker.outbound.source import MODIFIED, later
from packetworker.outbound.subscriptions import EPOCH

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
    log = bind(logger, entity_set=note.entity_set, change_type=note.change_type)
    ctx.state.count("notifications")
    if note.company_id != ctx.bc.company_id.lower():
        log.info("Notification for another company; ignored.")
        return Handled("ignored", detail="other company")
    if note.entity_set in ctx.mapping.documents:
        if note.change_type == "collection" or note.entity_id is None:
            return Handled("polled", documents=poll_changes(ctx, note.entity_set, force=True))
        if note.change_type == "deleted":
            return Handled("ignored", detail="deleted document")
        outcome = push_document(ctx, note.entity_set, note.entity_id)
        return Handled("document_pushed", documents=[outcome])
    if note.entity_set in ctx.mapping.master_entity_sets():
        queued = [u for u in ctx.users if ctx.state.claim_push(u, ttl=ctx.push_claim_ttl)]
        for user in queued:
            enqueue_push(user, "incremental")
        log.info("Queued incremental pushes for %s.", queued or "nobody (already queued)")
        return Handled("pushes_queued", users=queued)
    log.info("No outbound mapping for this resource; ignored.")
    return Handled("ignored", detail="unmapped resource")


def poll_changes(
    ctx: OutboundContext, resource: str, *, force: bool = False
) -> list[DocumentOutcome]:
    """Push documents of `resource` changed since its poll mark, oldest first.

    Runs only while the resource is in polling mode (BC refused its webhook), unless `force`
    (a `collection` notification). Without a mark yet, it only records where to start.
    """
    if resource not in ctx.mapping.documents:
        raise ValueError(f"{resource!r} is not a document resource; it cannot be polled")
    record = ctx.state.subscription(resource)
    if not force and (record is None or record.mode != "polling"):
        return []
    mark = ctx.state.poll_mark(resource)
    if mark is None:
        ctx.state.set_poll_mark(resource, ctx.source.latest_change(resource) or EPOCH)
        return []
    outcomes = []
    for entity in ctx.source.changed(resource, since=mark):
        outcomes.append(push_document(ctx, resource, entity["id"], header=entity))
        # Advanced per document: a failure later in the run repeats only what is left.
        mark = later(mark, entity.get(MODIFIED)) or mark
        ctx.state.set_poll_mark(resource, mark)
    if outcomes:
        bind(logger, resource=resource).info("Polled %d changed documents.", len(outcomes))
    return outcomes
