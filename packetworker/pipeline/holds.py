"""Held packets: what a target refused for a reason time fixes (its customer is blocked for
review or not there yet, its company is not mapped) waits in the ledger state `waiting`,
unacknowledged, and is run again

- on a schedule: every poll re-enqueues the held packets of its app area that have not been
  tried for `bc_hold_retry_interval` seconds (`due_held`), and
- at once when what it waits for changes: `wake_held` re-enqueues the packets waiting on a
  key, e.g. when a `customers` notification or poll shows customer C-100 changed.

Processing quarantines a packet held for longer than `bc_hold_max_hours` (`processing.py`).
Held runs do not count toward `max_attempts`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from packetworker.logs import bind
from packetworker.pipeline.context import PipelineContext
from packetworker.targets.base import held_key
from packetworker.targets.bc import BCClient, BCError

logger = logging.getLogger(__name__)

Enqueue = Callable[[str, str], None]  # (app_area, packet_id) -> None, e.g. an actor's send


def due_held(ctx: PipelineContext, app_area: str) -> list[str]:
    """Held packets of `app_area` due for another try; their retry clock restarts, so the
    next poll does not send them again."""
    ledger = ctx.ledger
    cutoff = ledger.clock() - ctx.settings.bc_hold_retry_interval
    due = []
    for entry in ledger.held(app_area):  # least recently tried first
        if entry.updated_at > cutoff:
            break
        ledger.update(entry.packet_id)
        due.append(entry.packet_id)
    return due


def wake_held(
    ctx: PipelineContext,
    key: str,
    *,
    enqueue: Enqueue,
    app_area: str | None = None,
) -> list[str]:
    """Enqueue every held packet waiting on `key` (see `held_key`), in `app_area` or in
    every app area; their ids. A `key` ending in ":" (e.g. "customer:") wakes every packet
    waiting on a key of that kind. Safe to call for a key nothing waits on."""

    def waits_on(wake_key: str) -> bool:
        return wake_key.startswith(key) if key.endswith(":") else wake_key == key

    woken = []
    for area in [app_area] if app_area else ctx.ledger.app_areas():
        for entry in ctx.ledger.held(area):
            if any(waits_on(k) for k in (entry.held_on or "").split()):
                ctx.ledger.update(entry.packet_id)
                enqueue(area, entry.packet_id)
                woken.append(entry.packet_id)
    if woken:
        bind(logger, held_on=key).info("woke %d held packets: %s", len(woken), ", ".join(woken))
    return woken


def wake_held_customer(
    ctx: PipelineContext,
    customer_number: str | None,
    *,
    enqueue: Enqueue,
    app_area: str | None = None,
) -> list[str]:
    """`wake_held` for the documents waiting on BC customer `customer_number` (None: on any
    customer)."""
    key = held_key("customer", customer_number) if customer_number else "customer:"
    return wake_held(ctx, key, enqueue=enqueue, app_area=app_area)


def wake_for_customer_change(
    ctx: PipelineContext, bc: BCClient, customer_id: str | None, *, enqueue: Enqueue
) -> list[str]:
    """A `customers` notification names the customer by its id, while held documents wait on
    its number: read the number, then wake them. Without an id (a `collection`), or when BC
    cannot say, every packet held on a customer tries again (each re-checks its customer in
    one look-up, so a needless wake costs little)."""
    number = None
    if customer_id:
        try:
            number = bc.get("customers", customer_id, select=["number"]).get("number")
        except BCError as exc:
            bind(logger, customer_id=customer_id).info("customer not read (%s); waking all", exc)
    return wake_held_customer(ctx, number, enqueue=enqueue)


__all__ = ["due_held", "wake_for_customer_change", "wake_held", "wake_held_customer"]
