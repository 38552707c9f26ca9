"""Operator views and actions: status, and the dead-letter queue (quarantine).

Plain functions returning plain data; the CLI prints them. Nothing here prints a receipt
handle: entries are shown through `public_entry`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from packetworker.pipeline.context import PipelineContext
from packetworker.pipeline.ledger import PENDING, PacketEntry, PacketState
from packetworker.pipeline.processing import process_packet
from packetworker.pipeline.results import LIST_TYPES, ProcessResult

Enqueue = Callable[[str, str], None]  # (app_area, packet_id) -> None, e.g. an actor's send


def public_entry(entry: PacketEntry) -> dict[str, Any]:
    """An entry as operators see it: everything but the receipt handle."""
    data = dataclasses.asdict(entry)
    data.pop("receipt_handle", None)
    data["state"] = str(entry.state)
    return data


def status(ctx: PipelineContext, app_areas: Sequence[str] | None = None) -> dict[str, Any]:
    """Per app area: packets per state, age of the oldest unfinished packet (seconds),
    quarantine size, acks waiting per list type, packets out of attempts without bytes, and
    the held packets with why they wait (oldest first)."""
    ledger = ctx.ledger
    now = ledger.clock()
    report: dict[str, Any] = {}
    for app_area in app_areas or ledger.app_areas():
        oldest = ledger.oldest_pending(app_area)
        report[app_area] = {
            "counts": ledger.counts(app_area),
            "oldest_pending_age": None if oldest is None else max(0.0, now - oldest),
            "quarantined": len(ledger.quarantine(app_area)),
            "pending_acks": {t: len(ledger.pending_acks(app_area, t)) for t in LIST_TYPES},
            "stuck": len(_stuck(ctx, app_area)),
            "held": [_held_view(entry, now) for entry in _held(ctx, app_area)],
        }
    return report


def _held(ctx: PipelineContext, app_area: str) -> list[PacketEntry]:
    """Held (waiting) packets, longest held first."""
    return sorted(ctx.ledger.held(app_area), key=lambda e: e.held_since or e.updated_at)


def _held_view(entry: PacketEntry, now: float) -> dict[str, Any]:
    since = entry.held_since or entry.updated_at
    return {
        "packet_id": entry.packet_id,
        "user": entry.user,
        "company": entry.company,
        "held_for": max(0.0, now - since),
        "reason": entry.last_error,
    }


def _stuck(ctx: PipelineContext, app_area: str) -> list[PacketEntry]:
    """Unfinished packets out of attempts whose bytes never arrived: still pending in the
    portal, waiting for an operator's `dlq retry` once the cause is fixed."""
    stuck = []
    for state in sorted(PENDING):
        for packet_id in ctx.ledger.ids(app_area, state):
            entry = ctx.ledger.get(packet_id)
            if (
                entry is not None
                and entry.attempts >= ctx.settings.max_attempts
                and not entry.archive_key
            ):
                stuck.append(entry)
    return stuck


def dlq_list(ctx: PipelineContext, app_area: str | None = None) -> list[dict[str, Any]]:
    """Quarantined packets (and stuck ones), oldest first, with their errors; then held
    ones (state `waiting`), with why they wait."""
    out = []
    for area in [app_area] if app_area else ctx.ledger.app_areas():
        entries = [ctx.ledger.get(i) for i in ctx.ledger.quarantine(area)]
        entries += _stuck(ctx, area)
        entries += _held(ctx, area)
        out += [public_entry(e) for e in entries if e is not None]
    return out


def dlq_show(ctx: PipelineContext, packet_id: str) -> dict[str, Any] | None:
    """One packet: its ledger entry and archive metadata; None if the ledger lacks it."""
    entry = ctx.ledger.get(packet_id)
    if entry is None:
        return None
    meta = ctx.archive.meta(entry.archive_key) if entry.archive_key else None
    return {"entry": public_entry(entry), "archive": meta}


def dlq_retry(
    ctx: PipelineContext, packet_id: str, *, enqueue: Enqueue | None = None
) -> ProcessResult | None:
    """Re-drive a quarantined (or stuck) packet: attempts back to 0, state `archived` (or
    `listed` without bytes), then process it here — or hand it to `enqueue` and return None.
    A held packet is simply tried again now. Raises `LookupError` for a packet that is none
    of these."""
    entry = ctx.ledger.get(packet_id)
    if entry is None:
        raise LookupError(f"packet {packet_id} is not in the ledger")
    quarantined = packet_id in ctx.ledger.quarantine(entry.app_area)
    stuck = not entry.terminal and entry.attempts >= ctx.settings.max_attempts
    if entry.state is PacketState.WAITING and not stuck:
        ctx.ledger.update(packet_id)  # its retry clock restarts
        if enqueue is not None:
            enqueue(entry.app_area, packet_id)
            return None
        return process_packet(ctx, entry.app_area, packet_id)
    if not (quarantined or stuck):
        raise LookupError(f"packet {packet_id} is {entry.state}, not quarantined")
    state = PacketState.ARCHIVED if entry.archive_key else PacketState.LISTED
    # An acknowledged packet's handle is spent: without one no second ack gets queued.
    handle = None if entry.state is PacketState.ACKNOWLEDGED else entry.receipt_handle
    ctx.ledger.update(packet_id, state=state, attempts=0, result=None, receipt_handle=handle)
    if enqueue is not None:
        enqueue(entry.app_area, packet_id)
        return None
    return process_packet(ctx, entry.app_area, packet_id)


def dlq_retry_all(
    ctx: PipelineContext, app_area: str | None = None, *, enqueue: Enqueue | None = None
) -> dict[str, ProcessResult | None]:
    """`dlq_retry` every packet `dlq_list` shows."""
    return {
        item["packet_id"]: dlq_retry(ctx, item["packet_id"], enqueue=enqueue)
        for item in dlq_list(ctx, app_area)
    }
