"""Building and pushing outbound packets: master data per user, and single documents.

A packet is streamed from BC pages through the incremental writer into a spool file, checked
against the packet schema, and uploaded with `PortalClient.push` (the two-step presigned
upload). Watermarks move only after the upload succeeded: a failed push leaves them where
they were, so the next run sends the same changes again (the device upserts; nothing is lost).
The same goes for the sent index (what each user holds, for `delete` records) and the stock
last sent.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from packetworker.errors import PacketworkerError
from packetworker.logs import bind
from packetworker.outbound.context import Company, OutboundContext
from packetworker.outbound.mapping import DocumentMap, MasterTable, to_record
from packetworker.outbound.source import (
    MODIFIED,
    any_of,
    both,
    changed_since,
    later,
    same_instant,
)
from packetworker.packets import PacketHeader, Record, Status, Table, validate_packet, write_packet
from packetworker.targets.bc.companies import DEFAULT

logger = logging.getLogger(__name__)

Mode = Literal["complete", "incremental", "stock"]
MODES: tuple[Mode, ...] = ("complete", "incremental", "stock")


class InvalidOutboundPacket(ValueError, PacketworkerError):
    """A packet we built does not pass the schema; it is not uploaded."""


class PushBusy(PacketworkerError):
    """Another push to the same user is running; this one is retried later."""

    transient = True


@dataclass
class PushOutcome:
    """What one push did. `packet_unique_id` is None when there was nothing to send."""

    user: str
    mode: Mode
    company: str = ""  # the BC company read (`Company.label`)
    packet_unique_id: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    deleted: dict[str, int] = field(default_factory=dict)
    watermarks: dict[str, str] = field(default_factory=dict)
    size: int = 0

    @property
    def records(self) -> int:
        return sum(self.counts.values())


@dataclass
class _Progress:
    """Filled in while the record stream is consumed by the writer; saved after the upload."""

    counts: dict[str, int] = field(default_factory=dict)
    marks: dict[str, str] = field(default_factory=dict)
    mark_ids: dict[str, set[str]] = field(default_factory=dict)
    sent: dict[str, dict[str, str]] = field(default_factory=dict)
    deleted: dict[str, dict[str, str]] = field(default_factory=dict)
    cleared: dict[str, set[str]] = field(default_factory=dict)
    stock: dict[str, str] = field(default_factory=dict)

    def add(self, table: MasterTable, entity_id: str, record: Record, modified: str | None):
        name = table.table.name
        self.counts[name] = self.counts.get(name, 0) + 1
        keys = {k: record.fields[k] for k in table.key if k in record.fields}
        if keys:  # a record the device cannot identify cannot be deleted there either
            self.sent.setdefault(name, {})[entity_id] = json.dumps(keys, ensure_ascii=False)
        if table.stock_field:
            self.stock[entity_id] = record.fields.get(table.stock_field, "")
        mark = self.marks.get(name)
        if modified and not same_instant(mark, modified) and later(mark, modified) == modified:
            self.marks[name], self.mark_ids[name] = modified, {entity_id}
        elif modified and same_instant(mark, modified):
            self.mark_ids.setdefault(name, set()).add(entity_id)


def master_records(
    ctx: OutboundContext, user: str, *, mode: Mode, progress: _Progress
) -> Iterator[Record | Table]:
    """The user's master-data records, table by table, lazily.

    - complete: every record, every table announced even when empty, and a `delete` record
      for each record the user holds (sent index) that BC no longer lists for them;
    - incremental: records changed at or after the user's watermark of each table, minus
      those already sent at that instant, then the deletions notified since the last push;
      a table without a watermark (never pushed to this user) is sent whole;
    - stock: the records of tables with a `stock` field whose value differs from what the
      user last got (BC does not bump lastModifiedDateTime when inventory changes).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    home = ctx.company_of(user)
    scope = home.scoped(user)  # the user's state within its company
    marks = ctx.state.watermarks(scope) if mode == "incremental" else {}
    marks_ids = ctx.state.watermark_ids(scope) if mode == "incremental" else {}
    codes = ctx.salesperson_codes(user)
    company = {"_company": home.source.company}
    for table in ctx.mapping.master_tables(options=ctx.options):
        name = table.table.name
        if mode == "stock" and table.stock_field is None:
            continue
        if mode == "complete":
            yield table.table
        mark = marks.get(name)
        skip = marks_ids.get(name, set()) if mark else set()
        if mark:
            progress.marks[name], progress.mark_ids[name] = mark, set(skip)
        last_stock = ctx.state.stock(scope) if mode == "stock" else {}
        held = ctx.state.sent(scope, name) if mode == "complete" else {}
        seen: set[str] = set()
        query = both(changed_since(mark), _user_filter(table, codes))
        for entity in home.source.rows(table.entity_set, filter=query):
            entity_id = str(entity.get("id", ""))
            modified = entity.get(MODIFIED)
            if entity_id in skip and same_instant(modified, mark):
                continue  # sent at exactly the watermark by the previous push
            record = to_record(table.table, table.fields, entity, extra=company)
            if mode == "stock" and last_stock.get(entity_id) == record.fields.get(
                table.stock_field or "", ""
            ):
                continue
            seen.add(entity_id)
            progress.add(table, entity_id, record, None if mode == "stock" else modified)
            yield record
        if mode == "complete":
            gone = {k: v for k, v in held.items() if k not in seen}
            progress.cleared[name] = set(ctx.state.deletions(scope, name))
        elif mode == "incremental":
            gone = ctx.state.deletions(scope, name)
        else:
            gone = {}
        for entity_id, keys in gone.items():
            progress.deleted.setdefault(name, {})[entity_id] = keys
            yield Record(table=table.table, status=Status.DELETE, fields=json.loads(keys))


def push_user(ctx: OutboundContext, user: str, *, mode: Mode = "incremental") -> PushOutcome:
    """Build `user`'s master-data packet and push it; advance watermarks, the sent index
    and the stock on success. One push per user at a time (`PushBusy` otherwise).

    An incremental or stock push with nothing to send uploads nothing.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    token = ctx.state.lock_push(user, ttl=ctx.push_lock_ttl)
    if token is None:
        raise PushBusy(f"another push to {user!r} is running")
    try:
        return _push_user(ctx, user, mode)
    finally:
        ctx.state.unlock_push(user, token)


def _push_user(ctx: OutboundContext, user: str, mode: Mode) -> PushOutcome:
    home = ctx.company_of(user)
    log = bind(logger, user=user, mode=mode, company=home.label)
    # From here on a change needs a new push: a webhook arriving mid-read queues another.
    ctx.state.release_push(user)
    progress = _Progress()
    outcome = PushOutcome(user=user, mode=mode, company=home.label)
    with _spool(ctx.spool_dir) as path:
        with path.open("wb") as sink:
            records = master_records(ctx, user, mode=mode, progress=progress)
            write_packet(sink, PacketHeader(user), records)
        outcome.counts = dict(progress.counts)
        outcome.deleted = {t: len(ids) for t, ids in progress.deleted.items() if ids}
        if mode != "complete" and not outcome.records and not outcome.deleted:
            log.info("Nothing changed since the last push; nothing sent.")
            return outcome
        outcome.packet_unique_id, outcome.size = _upload(ctx, user, path)
    _save(ctx, home.scoped(user), progress)
    outcome.watermarks = dict(progress.marks)
    ctx.state.count(f"push_{mode}")
    ctx.state.count("records_pushed", outcome.records)
    if outcome.deleted:
        ctx.state.count("records_deleted", sum(outcome.deleted.values()))
    log.info(
        "Pushed %d records and %d deletions (%d bytes) of company %s as %s.",
        outcome.records,
        sum(outcome.deleted.values()),
        outcome.size,
        home.label,
        outcome.packet_unique_id,
        extra={"counts": outcome.counts},
    )
    return outcome


def _save(ctx: OutboundContext, user: str, progress: _Progress) -> None:
    """What the device now holds (`user` scoped to its company): only called once the
    upload succeeded."""
    state = ctx.state
    state.set_watermarks(user, progress.marks)
    state.set_watermark_ids(user, progress.mark_ids)
    for name, keys in progress.sent.items():
        state.record_sent(user, name, keys)
    for name, keys in progress.deleted.items():
        state.forget_sent(user, name, keys)
        state.clear_deletions(user, name, keys)
    for name, ids in progress.cleared.items():
        state.clear_deletions(user, name, ids)
    state.record_stock(user, progress.stock)


@dataclass(frozen=True)
class DocumentOutcome:
    entity_set: str
    entity_id: str
    user: str | None  # None: the document's salesperson maps to no user of its company
    packet_unique_id: str | None = None
    lines: int = 0
    modified: str | None = None  # the document's lastModifiedDateTime as read
    company: str = ""  # the BC company it was read from (`Company.label`)


def push_document(
    ctx: OutboundContext,
    entity_set: str,
    entity_id: str,
    *,
    company: Company | None = None,
    header: dict | None = None,
    status: Status = Status.INSERT,
) -> DocumentOutcome:
    """Push one document of `company` (default: `BC_COMPANY`) with its lines to the user
    its salesperson maps to, if that user belongs to the same company.

    `header` is the document as already read (a poll lists it); otherwise it is read here.
    """
    doc = ctx.mapping.documents.get(entity_set)
    if doc is None:
        raise ValueError(f"no document mapping for {entity_set!r}")
    company = company or ctx.companies[DEFAULT]
    if header is None:
        header = company.source.get(entity_set, entity_id)
    salesperson = header.get(doc.user_field)
    user = ctx.user_for(salesperson)
    log = bind(logger, entity_set=entity_set, entity_id=entity_id, user=user, company=company.label)
    if user is not None and ctx.company_of(user).key != company.key:
        # The user reads another company: its devices must not mix two companies' documents.
        log.info("Salesperson %r maps to %s of another company; not pushed.", salesperson, user)
        user = None
    elif user is None:
        # Nobody to send it to is not an error: BC has documents of office sales too.
        log.info("Salesperson %r maps to no mobile user; not pushed.", salesperson)
    if user is None:
        ctx.state.count("documents_unrouted")
        return DocumentOutcome(
            entity_set, entity_id, None, modified=header.get(MODIFIED), company=company.label
        )
    lines = [0]
    with _spool(ctx.spool_dir) as path:
        with path.open("wb") as sink:
            records = document_records(company, doc, header, status=status, line_count=lines)
            write_packet(sink, PacketHeader(user), records)
        packet_id, _ = _upload(ctx, user, path)
    ctx.state.count("documents_pushed")
    log.info("Pushed %s %s with %d lines.", doc.table.name, header.get("number"), lines[0])
    return DocumentOutcome(
        entity_set, entity_id, user, packet_id, lines[0], header.get(MODIFIED), company.label
    )


def document_records(
    company: Company,
    doc: DocumentMap,
    header: dict,
    *,
    status: Status = Status.INSERT,
    line_count: list[int] | None = None,
) -> Iterator[Record | Table]:
    extra = {"_company": company.source.company}
    yield to_record(doc.table, doc.fields, header, status=status, extra=extra)
    yield doc.line_table
    context = {**extra, "_header": header}
    for line in company.source.lines(doc.entity_set, header["id"], doc.lines):
        if line_count is not None:
            line_count[0] += 1
        yield to_record(doc.line_table, doc.line_fields, line, status=status, extra=context)


def _user_filter(table: MasterTable, codes: list[str]) -> str | None:
    return any_of(table.user_filter, codes) if table.user_filter else None


def _upload(ctx: OutboundContext, user: str, path: Path) -> tuple[str, int]:
    if ctx.validate:
        issues = validate_packet(path)
        if issues:
            ctx.state.count("push_invalid")
            raise InvalidOutboundPacket(f"outbound packet for {user!r} is invalid: {issues[0]}")
    # The vendor's connector uses a hyphenated GUID as the packet id (docs §3.1).
    result = ctx.portal.push(user, path, packet_unique_id=str(uuid.uuid4()), packet_type="xml")
    return result.packet_unique_id, result.size


@contextlib.contextmanager
def _spool(directory: Path) -> Iterator[Path]:
    """A fresh spool file in `directory`, removed afterwards whatever happens."""
    fd, name = tempfile.mkstemp(prefix="push-", suffix=".xml", dir=directory)
    os.close(fd)
    path = Path(name)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)
