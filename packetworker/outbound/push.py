"""Building and pushing outbound packets: master data per user, and single documents.

A packet is streamed from BC pages through the incremental writer into a spool file, checked
against the packet schema, and uploaded with `PortalClient.push` (the two-step presigned
upload). Watermarks move only after the upload succeeded: a failed push leaves them where
they were, so the next run sends the same changes again (the device upserts; nothing is lost).
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from packetworker.logs import bind
from packetworker.outbound.context import OutboundContext
from packetworker.outbound.mapping import DocumentMap, MasterTable, to_record
from packetworker.outbound.source import MODIFIED, any_of, both, changed_since, later
from packetworker.packets import PacketHeader, Record, Status, Table, validate_packet, write_packet

logger = logging.getLogger(__name__)

Mode = Literal["complete", "incremental"]
MODES: tuple[Mode, ...] = ("complete", "incremental")


class InvalidOutboundPacket(ValueError):
    """A packet we built does not pass the schema; it is not uploaded."""


@dataclass
class PushOutcome:
    """What one push did. `packet_unique_id` is None when there was nothing to send."""

    user: str
    mode: Mode
    packet_unique_id: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    watermarks: dict[str, str] = field(default_factory=dict)
    size: int = 0

    @property
    def records(self) -> int:
        return sum(self.counts.values())


@dataclass
class _Progress:
    """Filled in while the record stream is consumed by the writer."""

    counts: dict[str, int] = field(default_factory=dict)
    marks: dict[str, str] = field(default_factory=dict)


def master_records(
    ctx: OutboundContext, user: str, *, mode: Mode, progress: _Progress
) -> Iterator[Record | Table]:
    """The user's master-data records, table by table, lazily.

    Complete: every record, and every table announced even when empty. Incremental: only
    records changed after the user's watermark of that table; a table without a watermark
    (never pushed to this user) is sent whole.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    marks = ctx.state.watermarks(user) if mode == "incremental" else {}
    codes = ctx.salesperson_codes(user)
    company = {"_company": ctx.source.company}
    for table in ctx.mapping.master_tables(options=ctx.options):
        if mode == "complete":
            yield table.table
        query = both(changed_since(marks.get(table.table.name)), _user_filter(table, codes))
        for entity in ctx.source.rows(table.entity_set, filter=query):
            progress.counts[table.table.name] = progress.counts.get(table.table.name, 0) + 1
            mark = later(progress.marks.get(table.table.name), entity.get(MODIFIED))
            if mark:
                progress.marks[table.table.name] = mark
            yield to_record(table.table, table.fields, entity, extra=company)


def push_user(ctx: OutboundContext, user: str, *, mode: Mode = "incremental") -> PushOutcome:
    """Build `user`'s master-data packet and push it; advance watermarks on success.

    An incremental push with no changed record uploads nothing.
    """
    log = bind(logger, user=user, mode=mode)
    # From here on a change needs a new push: a webhook arriving mid-read queues another.
    ctx.state.release_push(user)
    progress = _Progress()
    outcome = PushOutcome(user=user, mode=mode)
    with _spool(ctx.spool_dir) as path:
        with path.open("wb") as sink:
            records = master_records(ctx, user, mode=mode, progress=progress)
            write_packet(sink, PacketHeader(user), records)
        outcome.counts = dict(progress.counts)
        if mode == "incremental" and not outcome.records:
            log.info("Nothing changed since the last push; nothing sent.")
            return outcome
        outcome.packet_unique_id, outcome.size = _upload(ctx, user, path)
    ctx.state.set_watermarks(user, progress.marks)
    outcome.watermarks = dict(progress.marks)
    ctx.state.count(f"push_{mode}")
    ctx.state.count("records_pushed", outcome.records)
    log.info(
        "Pushed %d records (%d bytes) as %s.",
        outcome.records,
        outcome.size,
        outcome.packet_unique_id,
        extra={"counts": outcome.counts},
    )
    return outcome


@dataclass(frozen=True)
class DocumentOutcome:
    entity_set: str
    entity_id: str
    user: str | None  # None: the document's salesperson maps to no mobile user
    packet_unique_id: str | None = None
    lines: int = 0


def push_document(
    ctx: OutboundContext,
    entity_set: str,
    entity_id: str,
    *,
    header: dict | None = None,
    status: Status = Status.INSERT,
) -> DocumentOutcome:
    """Push one document (header + lines) to the user its salesperson maps to.

    `header` is the document as already read (a poll lists it); otherwise it is read here.
    """
    doc = ctx.mapping.documents.get(entity_set)
    if doc is None:
        raise ValueError(f"no document mapping for {entity_set!r}")
    if header is None:
        header = ctx.source.get(entity_set, entity_id)
    user = ctx.user_for(header.get(doc.user_field))
    log = bind(logger, entity_set=entity_set, entity_id=entity_id, user=user)
    if user is None:
        # Nobody to send it to is not an error: BC has documents of office sales too.
        log.info("Salesperson %r maps to no mobile user; not pushed.", header.get(doc.user_field))
        ctx.state.count("documents_unrouted")
        return DocumentOutcome(entity_set, entity_id, None)
    lines = [0]
    with _spool(ctx.spool_dir) as path:
        with path.open("wb") as sink:
            records = document_records(ctx, doc, header, status=status, line_count=lines)
            write_packet(sink, PacketHeader(user), records)
        packet_id, _ = _upload(ctx, user, path)
    ctx.state.count("documents_pushed")
    log.info("Pushed %s %s with %d lines.", doc.table.name, header.get("number"), lines[0])
    return DocumentOutcome(entity_set, entity_id, user, packet_id, lines[0])


def document_records(
    ctx: OutboundContext,
    doc: DocumentMap,
    header: dict,
    *,
    status: Status = Status.INSERT,
    line_count: list[int] | None = None,
) -> Iterator[Record | Table]:
    company = {"_company": ctx.source.company}
    yield to_record(doc.table, doc.fields, header, status=status, extra=company)
    yield doc.line_table
    context = {**company, "_header": header}
    for line in ctx.source.lines(doc.entity_set, header["id"], doc.lines):
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
