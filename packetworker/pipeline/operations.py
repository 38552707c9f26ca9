"""Operator views and actions: counts, packet lists, a packet's story, and the dead-letter
queue (quarantine). Every view — `status`, `dlq list`, `trace`, `/metrics`, the web console —
is built from these functions, so they all tell the same truth.

Two facts about every packet are kept apart: its **outcome** (still in the pipeline — listed,
downloading, archived, applying, held — or finished: applied, duplicate, quarantined) and
whether it was **acknowledged** (its `done` posted to the portal). An acknowledged
quarantined packet is counted as quarantined *and* acknowledged, never as one or the other.
The states come from `PacketState`, so a state added to the ledger shows up by itself.

Plain functions returning plain data; nothing here prints a receipt handle: entries are shown
through `public_entry`.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from packetworker.pipeline.archive import Archive
from packetworker.pipeline.context import PipelineContext
from packetworker.pipeline.ledger import (
    PENDING,
    TERMINAL,
    Ledger,
    PacketEntry,
    PacketEvent,
    PacketState,
)
from packetworker.pipeline.processing import process_packet
from packetworker.pipeline.results import LIST_TYPES, ProcessResult
from packetworker.settings import Settings

Enqueue = Callable[[str, str], None]  # (app_area, packet_id) -> None, e.g. an actor's send

#: Operator words for ledger states that differ from their names: a packet the ledger keeps
#: `waiting` (a document its target cannot take yet) is *held*.
STATE_WORDS = {"waiting": "held"}
#: Finished outcomes, in the order views show them (any other result follows).
RESULTS = ("applied", "duplicate", "quarantined")
#: Raw packet bytes a view shows at most.
RAW_LIMIT = 256 * 1024


class Views(Protocol):
    """What the read-only views need (a `PipelineContext` has it; so has the web console's
    lighter context, which builds no target)."""

    settings: Settings
    ledger: Ledger
    archive: Archive


def state_word(state: PacketState | str) -> str:
    """The operator's word for a ledger state (`held` for `waiting`)."""
    return STATE_WORDS.get(str(state), str(state))


def held_states() -> frozenset[PacketState]:
    """Ledger states shown as *held* (none until the ledger has one)."""
    return frozenset(s for s in PacketState if str(s) in STATE_WORDS)


def outcome(entry: PacketEntry) -> str:
    """What happened to the packet: its result once finished, else where it is."""
    if entry.terminal and entry.result:
        return entry.result
    return state_word(entry.state)


def acknowledged(entry: PacketEntry) -> bool:
    """Whether the portal was told the packet is done."""
    return entry.state is PacketState.ACKNOWLEDGED


def facts(entry: PacketEntry) -> dict[str, Any]:
    """The two facts about a packet, as every view shows them."""
    return {"outcome": outcome(entry), "acknowledged": acknowledged(entry)}


def counts(ledger: Ledger, app_area: str) -> dict[str, Any]:
    """Packets per outcome and, of the finished ones, how many are acknowledged.

    `packets`: every unfinished state (from `PacketState`, in order) then every result;
    `acknowledged`: per result. Reads the state and result indexes plus the entries of the
    finished-but-unacknowledged packets (few: acks go out with every poll)."""
    by_state = ledger.counts(app_area)
    by_result = ledger.result_counts(app_area)
    packets = {state_word(s): by_state.get(str(s), 0) for s in PacketState if s not in TERMINAL}
    results = [*RESULTS, *sorted(set(by_result) - set(RESULTS))]
    packets.update({r: by_result.get(r, 0) for r in results})
    waiting: Counter[str] = Counter()
    for state in sorted(TERMINAL - {PacketState.ACKNOWLEDGED}):
        entries = ledger.get_many(ledger.ids(app_area, state)).values()
        waiting.update(outcome(e) for e in entries)
    acked = {r: max(0, packets[r] - waiting[r]) for r in results}
    return {
        "packets": packets,
        "acknowledged": acked,
        "pending": sum(by_state.get(str(s), 0) for s in PENDING),
        "held": sum(by_state.get(str(s), 0) for s in held_states()),
    }


def public_entry(entry: PacketEntry) -> dict[str, Any]:
    """An entry as operators see it: everything but the receipt handle, with its two facts
    (`outcome`, `acknowledged`)."""
    data = dataclasses.asdict(entry)
    data.pop("receipt_handle", None)
    data["state"] = state_word(entry.state)
    data.update(facts(entry))
    return data


def status(ctx: Views, app_areas: Sequence[str] | None = None) -> dict[str, Any]:
    """Per app area: `counts` (packets per outcome, acknowledged per outcome), age of the
    oldest unfinished packet (seconds), acks waiting per list type, packets out of attempts
    without bytes (`stuck`), the last poll, and `held_packets`: the held ones with why they
    wait (longest held first)."""
    ledger = ctx.ledger
    now = ledger.clock()
    report: dict[str, Any] = {}
    for app_area in app_areas or ledger.app_areas():
        oldest = ledger.oldest_pending(app_area)
        tally = counts(ledger, app_area)
        report[app_area] = {
            "counts": tally["packets"],
            "acknowledged": tally["acknowledged"],
            "pending": tally["pending"],
            "held": tally["held"],
            "quarantined": tally["packets"]["quarantined"],
            "oldest_pending_age": None if oldest is None else max(0.0, now - oldest),
            "pending_acks": {t: len(ledger.pending_acks(app_area, t)) for t in LIST_TYPES},
            "stuck": len(_stuck(ctx, app_area)),
            "last_poll": ledger.last_poll(app_area),
            "held_packets": [_held_view(entry, now) for entry in _held(ctx, app_area)],
        }
    return report


def _held(ctx: Views, app_area: str) -> list[PacketEntry]:
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


def _stuck(ctx: Views, app_area: str) -> list[PacketEntry]:
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


def dlq_list(ctx: Views, app_area: str | None = None) -> list[dict[str, Any]]:
    """Quarantined packets (and stuck ones), oldest first, with their errors and both facts;
    then held ones (state `waiting`), with why they wait."""
    out = []
    for area in [app_area] if app_area else ctx.ledger.app_areas():
        entries = [ctx.ledger.get(i) for i in ctx.ledger.quarantine(area)]
        entries += _stuck(ctx, area)
        entries += _held(ctx, area)
        out += [public_entry(e) for e in entries if e is not None]
    return out


def held_list(ctx: Views, app_area: str | None = None) -> list[dict[str, Any]]:
    """Held packets (waiting for their target), longest held first, with reasons."""
    out = []
    for area in [app_area] if app_area else ctx.ledger.app_areas():
        out += [public_entry(e) for e in _held(ctx, area)]
    return out


def packets(
    ctx: Views, app_area: str | None = None, *, search: str = "", limit: int = 200
) -> list[dict[str, Any]]:
    """Packets, most recently updated first, whose id, user, document numbers, outcome or
    error contain `search` (case-insensitive); at most `limit`."""
    needle = search.strip().lower()
    found: list[PacketEntry] = []
    for area in [app_area] if app_area else ctx.ledger.app_areas():
        ids = [i for state in PacketState for i in ctx.ledger.ids(area, state)]
        for entry in ctx.ledger.get_many(ids).values():
            if not needle or needle in _haystack(entry):
                found.append(entry)
    found.sort(key=lambda e: e.updated_at, reverse=True)
    return [public_entry(e) for e in found[:limit]]


def _haystack(entry: PacketEntry) -> str:
    words = (entry.packet_id, entry.user, entry.documents, outcome(entry), entry.last_error)
    return " ".join(w for w in words if w).lower()


def dlq_show(ctx: Views, packet_id: str) -> dict[str, Any] | None:
    """One packet: its ledger entry and archive metadata; None if the ledger lacks it."""
    entry = ctx.ledger.get(packet_id)
    if entry is None:
        return None
    meta = ctx.archive.meta(entry.archive_key) if entry.archive_key else None
    return {"entry": public_entry(entry), "archive": meta}


def story(ctx: Views, packet_id: str) -> dict[str, Any] | None:
    """A packet's whole story, as `trace` prints it and the console's packet page shows it:
    its entry and two facts, its timeline, its tables and record counts (read from the
    archived bytes), each record's target reference, its errors and archive metadata.
    None if the ledger lacks the packet."""
    entry = ctx.ledger.get(packet_id)
    if entry is None:
        return None
    events = ctx.ledger.events(packet_id)
    tables, problem = _tables(ctx, entry)
    errors = [e.detail for e in events if e.detail and e.event in ("error", "quarantined")]
    if entry.last_error and entry.last_error not in errors:
        errors.append(entry.last_error)
    return {
        "entry": public_entry(entry),
        "timeline": [_step(e) for e in events],
        "tables": tables,
        "tables_error": problem,
        "records": _records(ctx.ledger.all_links(packet_id)),
        "errors": errors,
        "archive": ctx.archive.meta(entry.archive_key) if entry.archive_key else None,
    }


def _step(event: PacketEvent) -> dict[str, Any]:
    return {**dataclasses.asdict(event), "event": state_word(event.event)}


def _tables(ctx: Views, entry: PacketEntry) -> tuple[dict[str, dict[str, int]], str | None]:
    """Tables and record counts by status from the archived bytes, or why they are unknown."""
    from packetworker.packets import Limits, PacketError
    from packetworker.packets.summary import summarize

    if not entry.archive_key or not ctx.archive.exists(entry.archive_key):
        return {}, "not archived"
    if entry.list_type == "file":
        return {}, "an attachment (archived, not applied)"
    try:
        with ctx.archive.get(entry.archive_key) as stream:
            return summarize(stream, limits=Limits.from_settings(ctx.settings)).tables, None
    except PacketError as exc:
        return {}, f"unreadable: {exc}"


def _records(links: dict[str, str]) -> list[dict[str, str]]:
    """Record links (`table/DMS_ROWID#position` -> target ref) in packet order."""
    rows = []
    for key, ref in links.items():
        head, _, position = key.rpartition("#")
        table, _, rowid = head.partition("/")
        rows.append({"table": table, "row": rowid, "position": position, "target_ref": ref})
    return sorted(rows, key=lambda r: int(r["position"]) if r["position"].isdigit() else 0)


def raw_packet(ctx: Views, packet_id: str, *, limit: int = RAW_LIMIT) -> tuple[bytes, bool] | None:
    """The archived bytes (at most `limit`) and whether there were more; None if not archived."""
    entry = ctx.ledger.get(packet_id)
    if entry is None or not entry.archive_key or not ctx.archive.exists(entry.archive_key):
        return None
    with ctx.archive.get(entry.archive_key) as stream:
        data = stream.read(limit + 1)
    return data[:limit], len(data) > limit


def redrivable(ctx: Views, packet_id: str) -> bool:
    """Whether `dlq_retry` would take the packet: quarantined, stuck or held."""
    entry = ctx.ledger.get(packet_id)
    if entry is None:
        return False
    quarantined = packet_id in ctx.ledger.quarantine(entry.app_area)
    stuck = not entry.terminal and entry.attempts >= ctx.settings.max_attempts
    return quarantined or stuck or entry.state in held_states()


def dlq_retry(
    ctx: Views, packet_id: str, *, enqueue: Enqueue | None = None
) -> ProcessResult | None:
    """Re-drive a quarantined (or stuck) packet: attempts back to 0, state `archived` (or
    `listed` without bytes), then process it here (`ctx` must then be a `PipelineContext`) —
    or hand it to `enqueue` and return None. A held packet is simply tried again now. Raises
    `LookupError` for a packet that is none of these."""
    entry = ctx.ledger.get(packet_id)
    if entry is None:
        raise LookupError(f"packet {packet_id} is not in the ledger")
    stuck = not entry.terminal and entry.attempts >= ctx.settings.max_attempts
    if entry.state is PacketState.WAITING and not stuck:
        ctx.ledger.update(packet_id)  # its retry clock restarts
        if enqueue is not None:
            enqueue(entry.app_area, packet_id)
            return None
        return process_packet(ctx, entry.app_area, packet_id)
    if not redrivable(ctx, packet_id):
        raise LookupError(f"packet {packet_id} is {outcome(entry)}, not quarantined")
    state = PacketState.ARCHIVED if entry.archive_key else PacketState.LISTED
    # An acknowledged packet's handle is spent: without one no second ack gets queued.
    handle = None if entry.state is PacketState.ACKNOWLEDGED else entry.receipt_handle
    step = PacketEvent("re-driven", ctx.ledger.clock(), 0, f"was {outcome(entry)}")
    ctx.ledger.add_events(packet_id, [step])
    ctx.ledger.update(packet_id, state=state, attempts=0, result=None, receipt_handle=handle)
    if enqueue is not None:
        enqueue(entry.app_area, packet_id)
        return None
    assert isinstance(ctx, PipelineContext), "processing here needs a PipelineContext"
    return process_packet(ctx, entry.app_area, packet_id)


def dlq_retry_all(
    ctx: Views, app_area: str | None = None, *, enqueue: Enqueue | None = None
) -> dict[str, ProcessResult | None]:
    """`dlq_retry` every packet `dlq_list` shows."""
    return {
        item["packet_id"]: dlq_retry(ctx, item["packet_id"], enqueue=enqueue)
        for item in dlq_list(ctx, app_area)
    }
