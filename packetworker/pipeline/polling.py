"""Polling and acknowledgements: list a portal app area, record what it lists in the ledger,
and post the queued acknowledgements (`done`), one call per list type.

Invariant kept here: a packet is acknowledged only once processing has queued its ack (it was
applied, found to be a duplicate, or quarantined, its bytes archived first); a packet listed
again after it was finished has its ack queued again with the receipt handle just received.

A poll takes at most `dm_poll_max_entries` per list type (the rest are listed again later).
An entry no packet could have (empty, huge or control-character id; absurd receipt handle)
is refused: recorded once in the ledger with the reason under a key derived from a hash of
its id, never processed and never acknowledged.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence

from packetworker.logs import bind
from packetworker.pipeline.context import PipelineContext
from packetworker.pipeline.holds import due_held
from packetworker.pipeline.ledger import PacketEntry
from packetworker.pipeline.results import LIST_TYPES, PollResult, TransientError
from packetworker.portal import PortalError, PullEntry
from packetworker.portal.entries import entry_problem

logger = logging.getLogger(__name__)


def poll_once(ctx: PipelineContext, app_area: str) -> PollResult:
    """List both list types, record every entry with its latest receipt handle, and flush
    pending acks (one `done` per list type). Returns the ids to enqueue: new ones,
    unfinished ones with no progress for `stale_after` seconds (their worker died), and held
    ones due for another try (`holds.due_held`)."""
    log = bind(logger, app_area=app_area)
    client = ctx.portal_factory(app_area)
    ledger = ctx.ledger
    latest: dict[str, PullEntry] = {}
    new_ids: list[str] = []
    failures: list[str] = []
    for list_type in LIST_TYPES:
        try:
            entries = client.pull(
                packet_type=list_type,
                format=ctx.settings.dm_list_format,
                limit=ctx.settings.dm_poll_max_entries,
            )
        except PortalError as exc:
            if not exc.transient:
                raise
            # Keep what the other list gave: its new entries are in the ledger now and a
            # later poll would not see them as new, so they must be enqueued by this one.
            failures.append(f"pull {list_type} list: {exc}")
            log.warning("%s", failures[-1])
            continue
        entries = _without_refused(ctx, app_area, list_type, entries)
        # One round trip for the whole listing (each entry still recorded atomically).
        recorded = ledger.record_listed_many(
            [_entry_from_pull(app_area, list_type, pulled) for pulled in entries]
        )
        for pulled, (entry, created) in zip(entries, recorded, strict=True):
            latest[pulled.id] = pulled
            if created:
                new_ids.append(pulled.id)
            elif entry.terminal:
                # Listed again after it was finished: its ack has not reached the portal
                # (or is still queued). Queue it again with the handle just received.
                ledger.queue_ack(app_area, entry.list_type, entry.packet_id)

    requeue_ids = []
    cutoff = ledger.clock() - ctx.settings.stale_after
    stale_ids = ledger.stale(app_area, before=cutoff)
    stale_entries = ledger.get_many(stale_ids)
    for packet_id in stale_ids:
        entry = stale_entries.get(packet_id)
        if entry is None or packet_id in new_ids or not entry.receipt_handle:
            continue
        if entry.attempts >= ctx.settings.max_attempts and not entry.archive_key:
            continue  # exhausted without bytes: waits for an operator (`dlq retry`)
        ledger.update(packet_id)  # restart the stale clock so the next poll does not resend
        requeue_ids.append(packet_id)
    held_ids = [i for i in due_held(ctx, app_area) if i not in new_ids]
    requeue_ids += held_ids

    if len(failures) == len(LIST_TYPES):
        raise TransientError("; ".join(failures))
    acked = flush_acks(ctx, app_area, entries_by_id=latest)
    ledger.prune(app_area)
    log.info(
        "polled: %d listed, %d new, %d requeued (%d held), acked %s",
        len(latest),
        len(new_ids),
        len(requeue_ids),
        len(held_ids),
        acked,
    )
    return PollResult(len(latest), new_ids, requeue_ids, acked)


def flush_acks(
    ctx: PipelineContext, app_area: str, *, entries_by_id: Mapping[str, PullEntry] | None = None
) -> dict[str, int]:
    """Post one `done` per list type for every queued packet, with the latest receipt
    handle (from `entries_by_id`, the listing just made, else the ledger). A failed `done`
    leaves the ids queued for the next poll."""
    log = bind(logger, app_area=app_area)
    ledger = ctx.ledger
    acked: dict[str, int] = {}
    for list_type in LIST_TYPES:
        ids = ledger.pending_acks(app_area, list_type)
        if not ids:
            continue
        entries: list[PullEntry] = []
        unackable: list[str] = []
        listed = entries_by_id or {}
        # Handles not in the listing just made come from the ledger, in one round trip.
        stored = ledger.get_many([packet_id for packet_id in ids if packet_id not in listed])
        for packet_id in ids:
            pulled = listed.get(packet_id) or _pull_from_entry(stored.get(packet_id))
            if pulled is None:
                unackable.append(packet_id)
            else:
                entries.append(pulled)
        if unackable:
            # No receipt handle anywhere (expired from the ledger, never listed): nothing
            # can acknowledge these; the portal will list them again if they are pending.
            log.warning("dropping %d queued acks without a receipt handle", len(unackable))
            ledger.mark_acknowledged(app_area, list_type, unackable)
        if not entries:
            continue
        try:
            ctx.portal_factory(app_area).done(
                entries, packet_type=list_type, format=ctx.settings.dm_done_format
            )
        except PortalError as exc:
            log.warning(
                "done for %d %s entries failed, kept queued: %s", len(entries), list_type, exc
            )
            continue
        ledger.mark_acknowledged(app_area, list_type, [e.id for e in entries])
        acked[list_type] = len(entries)
    return acked


def refused_id(packet_id: str) -> str:
    """The ledger key of a refused listing: a hash, since the id itself is unusable."""
    return "refused~" + hashlib.sha256(packet_id.encode("utf-8", "surrogatepass")).hexdigest()


def _without_refused(
    ctx: PipelineContext, app_area: str, list_type: str, entries: list[PullEntry]
) -> list[PullEntry]:
    """`entries` minus the refused ones, which are recorded (and logged) once each."""
    taken: list[PullEntry] = []
    refused: list[PacketEntry] = []
    for pulled in entries:
        problem = entry_problem(pulled)
        if problem is None:
            taken.append(pulled)
            continue
        # No url and no receipt handle: nothing can download or acknowledge it.
        refused.append(
            PacketEntry(
                packet_id=refused_id(pulled.id),
                app_area=app_area,
                list_type=list_type,
                user=(pulled.user_name or "")[:200] or None,
                company=(pulled.company_id or "")[:200] or None,
                last_error=f"refused pull-list entry: {problem}; not processed, not acknowledged",
            )
        )
    for entry, created in ctx.ledger.record_listed_many(refused):
        if created:
            bind(logger, app_area=app_area, packet_id=entry.packet_id).error("%s", entry.last_error)
    return taken


def _entry_from_pull(app_area: str, list_type: str, pulled: PullEntry) -> PacketEntry:
    return PacketEntry(
        packet_id=pulled.id,
        app_area=app_area,
        list_type=list_type,
        url=pulled.url,
        user=pulled.user_name,
        company=pulled.company_id,
        operation=pulled.operation,
        app_code=pulled.app_code,
        on_date=pulled.on_date,
        receipt_handle=pulled.receipt_handle,
    )


def _pull_from_entry(entry: PacketEntry | None) -> PullEntry | None:
    if entry is None or not entry.receipt_handle:
        return None
    return PullEntry(
        id=entry.packet_id,
        url=entry.url or "",
        receipt_handle=entry.receipt_handle,
        user_name=entry.user,
        company_id=entry.company,
    )


__all__: Sequence[str] = ["flush_acks", "poll_once"]
