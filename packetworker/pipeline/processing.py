"""Processing one inbound packet: lock, fetch, archive, dedupe, apply, then queue its ack or
quarantine it. Polling and the acks themselves are in `polling.py`.

The Dramatiq actors (`actors.py`) are thin wrappers around these. Invariants kept here:

- **Nothing lost.** A packet is acknowledged only once it is applied (or found to be a
  duplicate) or quarantined, and in every case its raw bytes are archived first. Bytes never
  downloaded are never acknowledged: the packet stays pending in the portal.
- **Nothing applied twice.** One worker per packet (lock); terminal packets are left alone;
  the same content under a new id is a duplicate (content-hash claim); records applied before
  a crash are skipped on retry (record links); targets are idempotent besides.
- Messages carry ids only; a download link is asked for just before the download.
- **Bounded memory.** Records go to the target in batches within `apply_batch_size` records
  and `apply_batch_chars` characters, cut between documents only: a big packet's documents (a
  header and its lines, `Target.documents`) are assembled on disk (`packets.assembly`), so no
  step holds the packet; a group holds only the packets that fit one batch (`_Room`). The
  packet's lock is refreshed by a heartbeat while it is applied, and progress recorded
  between batches.

`TransientError` means "retry me later" (the actor maps it to a Dramatiq retry). Permanent
failures are handled here: quarantine when the bytes are archived, else an error on the entry.

Targets record their writes in the ledger (`ApplyContext.journal`) before sending them. A
write in doubt that cannot be decided yet (`WriteInDoubt`) is neither a failed attempt nor a
reason to quarantine: the packet is retried after a delay (`RetryLater`), unacknowledged.

A record the target *holds* (`Outcome.HELD`: refused for a reason time fixes, such as a
customer blocked for review) holds its packet: state `waiting` with the reason, not
acknowledged, not a failed attempt; `holds.py` runs it again on a schedule or when what it
waits for changes, and a packet held for more than `bc_hold_max_hours` is quarantined. A
failed record beside a held one still quarantines the packet (someone must look at it).

Neither is a request that found no slot of its budget in time (`SlotUnavailable`).

`process_packets` runs a group of packets: each is locked, fetched, archived and deduplicated
as above, up to `group_prepare_concurrency` at once (threads of the group's own), the records
of all ready ones go to the target in one `apply_group` call (so it can share requests across
them), and each is then settled with its own outcomes by the same steps, as many at once.
A packet whose lock another worker holds is left out; one whose run would raise is answered
with the exception, for the caller to retry it alone.
"""

from __future__ import annotations

import contextvars
import hashlib
import logging
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from itertools import chain
from pathlib import Path
from typing import BinaryIO, TypeVar

from packetworker.logs import bind
from packetworker.metrics import APPLY_SECONDS, METRICS, PACKETS_PROCESSED, RECORDS_PROCESSED
from packetworker.packets import Limits, PacketError, open_packet
from packetworker.packets.assembly import Positioned, assemble
from packetworker.packets.model import Record
from packetworker.packets.reader import PacketReader
from packetworker.pipeline.archive import ArchiveConflict, ArchiveError, archive_key, safe_name
from packetworker.pipeline.archived import archive_meta, extension, recover_from_archive
from packetworker.pipeline.context import PipelineContext
from packetworker.pipeline.ledger import LedgerTargetRefs, PacketEntry, PacketState
from packetworker.pipeline.locks import LockHandle, kept_alive
from packetworker.pipeline.results import BUSY, ProcessResult, RetryLater, TransientError
from packetworker.portal import LinkExpired, PortalClient, PortalError
from packetworker.portal.links import rendition_path
from packetworker.redact import redact_text
from packetworker.request_budget import SlotUnavailable
from packetworker.settings import Settings
from packetworker.targets import ApplyContext, Outcome, RecordOutcome, TargetError
from packetworker.targets.base import DOCUMENT_NUMBER_FIELDS, WriteInDoubt

logger = logging.getLogger(__name__)

ERROR_CHARS = 2000
#: Document numbers kept on a packet's entry, for the operator's search.
MAX_DOCUMENTS = 20
CHUNK = 1 << 16
_BEFORE_ARCHIVED = (PacketState.LISTED, PacketState.DOWNLOADING)
T = TypeVar("T")
R = TypeVar("R")


class _Quarantine(Exception):
    """Internal: stop and quarantine with this reason."""


class _GiveUp(Exception):
    """Internal: a permanent failure before the bytes are archived; record it, do not ack."""


class _Vanished(Exception):
    """Internal: the packet's ledger entry is gone mid-run (Redis flushed or lost its data)."""


#: `ProcessResult.error` of a run whose ledger entry vanished under it.
VANISHED = "ledger entry vanished"


def process_packet(ctx: PipelineContext, app_area: str, packet_id: str) -> ProcessResult:
    """Download (or read from the archive), archive, dedupe and apply one packet.

    Idempotent: a finished packet only has its ack ensured; a packet another worker holds
    is skipped (`error` says so)."""
    return run_packet(ctx, app_area, packet_id)


def run_packet(
    ctx: PipelineContext, app_area: str, packet_id: str, *, local: Path | None = None
) -> ProcessResult:
    """`process_packet`, with an optional local file as the source of bytes (replay)."""
    log = bind(logger, app_area=app_area, packet_id=packet_id)
    with ctx.ledger.locks.try_lock(f"packet:{packet_id}", ttl=ctx.settings.packet_lock_ttl) as held:
        run = _open(ctx, app_area, packet_id, held, log, local)
        return run if isinstance(run, ProcessResult) else run.execute()


def process_packets(
    ctx: PipelineContext, app_area: str, packet_ids: Sequence[str]
) -> list[ProcessResult | Exception]:
    """Process pending packets of `app_area` as one group: each is locked, fetched, archived
    and deduplicated on its own (`group_prepare_concurrency` at once), then the records of all
    that are ready go to the target in one `apply_group` call (so a target can share look-ups
    and writes across them), and each is settled with its own outcomes: applied, held or
    quarantined alone.
    (Packets are grouped for targets that map documents: the system targets.)

    Answers per id, in order: its `ProcessResult` (`error` BUSY when another worker holds it),
    or the exception `process_packet` would have raised for it (`TransientError`,
    `RetryLater`, a bug's), for the caller to retry that packet on its own. A group of one,
    or a target without documents (`plan`, `recording`), is `process_packet` per id (as many
    at once).
    """
    ids = list(dict.fromkeys(packet_ids))
    limit = min(ctx.settings.group_prepare_concurrency, len(ids))
    if len(ids) == 1 or ctx.target.documents is None:
        with _concurrently(limit) as each:
            return each(lambda packet_id: _alone(ctx, app_area, packet_id), ids)
    ttl = ctx.settings.packet_lock_ttl
    held: dict[str, LockHandle | None] = {}
    held_locks: list[LockHandle] = []  # kept alive until the last packet is settled
    # The pool is left (its packets finished, those not started dropped) before any lock is
    # released, also when this thread is interrupted (a time limit, a bug).
    with (
        ExitStack() as locks,
        kept_alive(held_locks, every=_beat(ctx.settings)),
        _concurrently(limit) as each,
    ):
        for packet_id in ids:
            handle = locks.enter_context(ctx.ledger.locks.try_lock(f"packet:{packet_id}", ttl=ttl))
            held[packet_id] = handle
            if handle is not None:
                held_locks.append(handle)
        room = _Room(ctx.settings.apply_batch_chars)
        prepared = each(
            lambda packet_id: _prepared(ctx, app_area, packet_id, held[packet_id], room), ids
        )
        ready = [run for run in prepared if isinstance(run, _Run)]
        answers: dict[str, ProcessResult | Exception] = {
            packet_id: answer
            for packet_id, answer in zip(ids, prepared, strict=True)
            if not isinstance(answer, _Run)
        }
        applying = [run for run in ready if run.todo]
        if applying:
            try:
                packets = [(run.records(), run.apply_context()) for run in applying]
                results = ctx.target.apply_group(packets)
            except Exception as exc:  # the whole call failed: each packet with it
                results = [exc] * len(applying)
            settled = each(_settle, list(zip(applying, results, strict=True)))
            answers |= {run.id: answer for run, answer in zip(applying, settled, strict=True)}
        # Nothing left to apply: every record was linked before.
        rest = [run for run in ready if run.id not in answers]
        answers |= {run.id: answer for run, answer in zip(rest, each(_conclude, rest), strict=True)}
    return [answers[packet_id] for packet_id in ids]


class _Room:
    """What a group may keep in memory for its one target call, in bytes of packets, shared
    by the threads preparing its packets: the group's records are one batch, bounded like
    any other (`APPLY_BATCH_CHARS`)."""

    def __init__(self, capacity: int) -> None:
        self.left = capacity
        self._lock = threading.Lock()

    def take(self, size: int) -> bool:
        """Reserve `size`; False (nothing reserved) when it does not fit."""
        with self._lock:
            if size > self.left:
                return False
            self.left -= size
            return True


def _prepared(
    ctx: PipelineContext, app_area: str, packet_id: str, held: LockHandle | None, room: _Room
) -> ProcessResult | Exception | _Run:
    """A packet of a group opened and prepared (`_Run.prepare_group`): its run, ready for
    the group's target call, or its answer when it has nothing to apply with the group."""
    log = bind(logger, app_area=app_area, packet_id=packet_id)
    run = _open(ctx, app_area, packet_id, held, log, None)
    if isinstance(run, ProcessResult):
        return run
    answer = run.step(lambda: run.prepare_group(room))
    return run if answer is None else answer


def _settle(
    pair: tuple[_Run, list[RecordOutcome] | Exception],
) -> ProcessResult | Exception | None:
    """A grouped packet ended with the target's answer for its records."""
    run, result = pair
    return run.step(lambda: run.settle_group(result))


def _conclude(run: _Run) -> ProcessResult | Exception | None:
    """A grouped packet with nothing left to apply, ended."""
    return run.step(run.conclude)


@contextmanager
def _concurrently(limit: int) -> Iterator[Callable[[Callable[[T], R], Sequence[T]], list[R]]]:
    """`each(fn, items)`: `fn` of every item, answers in order, run by at most `limit`
    threads of this block's own pool (1: in the calling thread, one after the other), each
    call in a copy of the caller's context variables. Leaving the block, also on an
    exception, waits for the calls under way and drops those not started, so a group never
    leaves work running behind its locks."""
    if limit <= 1:
        yield lambda fn, items: [fn(item) for item in items]
        return
    pool = ThreadPoolExecutor(max_workers=limit, thread_name_prefix="group-packet")

    def each(fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        contexts = [contextvars.copy_context() for _ in items]
        return list(pool.map(lambda context, item: context.run(fn, item), contexts, items))

    try:
        yield each
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _alone(ctx: PipelineContext, app_area: str, packet_id: str) -> ProcessResult | Exception:
    try:
        return run_packet(ctx, app_area, packet_id)
    except Exception as exc:
        return exc


def _open(
    ctx: PipelineContext,
    app_area: str,
    packet_id: str,
    held: LockHandle | None,
    log: logging.LoggerAdapter,
    local: Path | None,
) -> ProcessResult | _Run:
    """A run of the packet whose lock is `held`, or the result when there is nothing to run
    (held elsewhere, unknown, finished: its ack ensured)."""
    entry = ctx.ledger.get(packet_id)
    if held is None:
        # DEBUG: the caller says what it does about it (the actor retries later, at INFO).
        log.debug("another worker holds this packet; skipped")
        state = entry.state if entry else "unknown"
        return ProcessResult(packet_id, state, error=BUSY)
    if entry is None:
        entry = recover_from_archive(ctx, app_area, packet_id)
        if entry is None:
            log.warning("packet is neither in the ledger nor in the archive")
            return ProcessResult(packet_id, "unknown", error="unknown packet")
    if entry.terminal:
        _queue_ack(ctx, entry)
        return _result(entry)
    return _Run(ctx, entry, held, log, local)


class _Run:
    """One processing attempt of one packet (the lock is held by the caller)."""

    def __init__(
        self,
        ctx: PipelineContext,
        entry: PacketEntry,
        held: LockHandle,
        log: logging.LoggerAdapter,
        local: Path | None,
    ) -> None:
        self.ctx, self.entry, self.held, self.log, self.local = ctx, entry, held, log, local
        self.ledger = ctx.ledger
        self.id = entry.packet_id
        self.outcomes: Counter[str] = Counter()
        self.held_records: list[RecordOutcome] = []  # the target holds them; across batches
        self._source = "read from the archive"  # where this run's bytes came from
        self.documents: dict[str, None] = {}  # document numbers read, in packet order
        self.attempts = entry.attempts + 1  # this run's, once counted
        self.spool: Path | None = None
        self._size = 0
        self.apply_ctx: ApplyContext | None = None  # once the packet's header is read
        self.todo: list[tuple[str, Record]] = []  # grouped runs: (key, record) to apply

    def update(
        self, state: PacketState | None = None, *, note: str | None = None, **fields: object
    ) -> PacketEntry:
        try:
            self.entry = self.ledger.update(self.id, state=state, note=note, **fields)
        except KeyError:  # the ledger's answer for an unknown packet
            raise _Vanished(self.id) from None
        return self.entry

    def execute(self) -> ProcessResult:
        """The whole run: fetch, archive, dedupe, apply in batches, then finish, hold or
        quarantine. Raises what the actor retries (`TransientError`, `RetryLater`)."""
        try:
            if (gave_up := self.count_attempt()) is not None:
                return gave_up
            try:
                if (done := self.prepare()) is not None:
                    return done
                with self.spool.open("rb") as stream:
                    self.apply(stream)
                return self.conclude()
            except Exception as exc:
                return self.handle(exc)
            finally:
                self.discard_spool()
        except _Vanished:
            return self.vanished()

    def step(self, action: Callable[[], ProcessResult | None]) -> ProcessResult | Exception | None:
        """One step of a grouped run: its result (None: go on), failures handled as
        `execute` handles them; what `execute` would raise is returned instead, so the
        group goes on and the caller retries this packet alone."""
        try:
            try:
                return action()
            except Exception as exc:
                return self.handle(exc)
            finally:
                self.discard_spool()
        except _Vanished:
            return self.vanished()
        except Exception as exc:
            return exc

    def vanished(self) -> ProcessResult:
        # Nothing to retry here: unacknowledged, the packet is still pending in the portal
        # and the next poll lists it as new; targets' idempotency keys stop a second apply.
        self.log.warning(
            "ledger entry vanished mid-run (Redis flushed?); stopped, the next poll "
            "lists the packet again"
        )
        return ProcessResult(self.id, "unknown", dict(self.outcomes), error=VANISHED)

    def count_attempt(self) -> ProcessResult | None:
        """Count this run as an attempt; the result when the packet has had its last one."""
        settings = self.ctx.settings
        self.attempts = self.entry.attempts + 1
        self.update(attempts=self.attempts)
        if self.attempts <= settings.max_attempts:
            return None
        reason = f"gave up after {settings.max_attempts} attempts: {self.entry.last_error}"
        if self.entry.archive_key:
            return self.quarantine(reason)
        self.update(last_error=_redact(self.ctx, reason))
        self.log.error("gave up without the packet's bytes; left pending in the portal")
        return _result(self.entry)

    def prepare(self) -> ProcessResult | None:
        """Bytes into the spool and the archive, content claimed; the result when nothing is
        to be applied (an attachment, a duplicate), else None with the state `applying`."""
        self.spool = self.fetch()
        self.archive(self.spool)
        if self.entry.list_type == "file":
            return self.finish()  # attachments are archived, not applied
        holder = self.claim_content()
        if holder is not None:
            return self.finish(duplicate_of=holder)
        self.update(PacketState.APPLYING)
        return None

    def prepare_group(self, room: _Room) -> ProcessResult | None:
        """`prepare`, then the packet's records read for the group's one target call (None).
        A packet that does not fit the group's `room` beside the others is applied alone at
        once, in batches, as `execute` applies it (its result)."""
        if (gave_up := self.count_attempt()) is not None:
            return gave_up
        if (done := self.prepare()) is not None:
            return done
        with self.spool.open("rb") as stream:
            if not room.take(self._size):
                self.apply(stream)
                return self.conclude()
            reader = self.open_reader(stream)
            self.todo = self.unapplied(
                next(_batches(_singly(enumerate(reader)), (sys.maxsize, sys.maxsize)), [])
            )
        return None

    def records(self) -> list[Record]:
        return [record for _, record in self.todo]

    def apply_context(self) -> ApplyContext:
        assert self.apply_ctx is not None, "set when the packet's header is read"
        return self.apply_ctx

    def settle_group(self, result: list[RecordOutcome] | Exception) -> ProcessResult:
        """Record the target's answer for this packet's records and end the run."""
        if isinstance(result, Exception):
            raise result
        self.record(self.todo, result)
        return self.conclude()

    def conclude(self) -> ProcessResult:
        """Every record settled: held, or applied (and its ack queued)."""
        if self.held_records:
            return self.hold(self.attempts)
        return self.finish()

    def handle(self, exc: Exception) -> ProcessResult:
        """What a failure of this run means: quarantine, an error kept on the entry (the
        result), or a retry (raised: `RetryLater`, `TransientError`, or `exc` itself)."""
        settings = self.ctx.settings
        if isinstance(exc, _Vanished):
            raise exc  # nothing left to record the failure in; `execute` reports it
        if isinstance(exc, _Quarantine):
            return self.quarantine(str(exc))
        if isinstance(exc, PacketError):
            return self.quarantine(f"invalid packet: {exc}")
        if isinstance(exc, WriteInDoubt):
            # Not a failed attempt: no attempt can decide it before `retry_after`.
            self.update(attempts=self.attempts - 1)
            self.fail(f"write in doubt: {exc}")
            raise RetryLater(str(exc), seconds=_defer(settings, exc.retry_after)) from exc
        if isinstance(exc, SlotUnavailable):
            # Not a failed attempt: the request budget shared by all workers is spent for now,
            # and the request was never sent.
            self.update(attempts=self.attempts - 1)
            self.fail(f"request budget spent: {exc}")
            raise RetryLater(str(exc), seconds=_defer(settings, exc.retry_after)) from exc
        if isinstance(exc, TargetError):
            if exc.transient:
                self.fail(f"target unavailable: {exc}")
                raise TransientError(str(exc)) from exc
            return self.quarantine(f"target refused the packet: {exc}")
        if isinstance(exc, PortalError):
            if exc.transient:
                self.fail(f"portal unavailable: {exc}")
                raise TransientError(str(exc)) from exc
            self.fail(f"download failed: {exc}")
            return _result(self.entry)
        if isinstance(exc, _GiveUp | ArchiveConflict):
            self.fail(str(exc))
            return _result(self.entry)
        if isinstance(exc, ArchiveError):
            self.fail(f"archive unavailable: {exc}")
            raise TransientError(str(exc)) from exc
        if isinstance(exc, TransientError):
            self.fail(str(exc))
            raise exc
        # A bug or a crash stand-in: keep the state (the next run resumes), say why.
        self.fail(f"{type(exc).__name__}: {exc}")
        raise exc

    def discard_spool(self) -> None:
        if self.spool is not None:
            self.spool.unlink(missing_ok=True)
            self.spool = None

    # --- steps ---

    def fetch(self) -> Path:
        """Bytes into a spool file: from a local file, the archive, or the portal."""
        entry = self.entry
        if self.local is not None:
            self._source = f"read from {self.local.name}"
            with self.local.open("rb") as source:
                return self.spool_from(source)
        if entry.archive_key and self.ctx.archive.exists(entry.archive_key):
            with self.ctx.archive.get(entry.archive_key) as source:
                spool = self.spool_from(source)
            if entry.sha256 and self._sha256 != entry.sha256:
                spool.unlink(missing_ok=True)
                raise _GiveUp(f"archived bytes of {entry.archive_key} do not match their sha256")
            return spool
        if not entry.url:
            raise _GiveUp("no source for the packet's bytes (not archived, no portal url)")
        self.update(PacketState.DOWNLOADING)
        return self.download()

    def download(self) -> Path:
        """The packet's bytes from the portal: by default its XML rendition (the listed url
        names the JSON one, whose layout is not public: dynamics-mobile.md §3.3, §4.4).
        With `as-listed`, a listed rendition we cannot read is replaced by the XML one before
        anything is archived, so it is never quarantined (and acknowledged) on that ground."""
        client = self.ctx.portal_factory(self.entry.app_area)
        listed = self.entry.url or ""
        rendition = self.ctx.settings.dm_packet_rendition
        path = rendition_path(listed, rendition)
        spool = self.download_path(client, path)
        xml_path = rendition_path(listed, "xml")
        if self.entry.list_type == "file" or path == xml_path:
            return spool
        problem = _unreadable(spool, self.ctx)
        if problem is None:
            return spool
        self.log.warning("listed rendition unreadable (%s); downloading the XML one", problem)
        spool.unlink(missing_ok=True)
        return self.download_path(client, xml_path)

    def download_path(self, client: PortalClient, path: str) -> Path:
        settings = self.ctx.settings
        spool = self.new_spool()
        try:
            for attempt in range(1, settings.link_attempts + 1):
                url = client.link(path)  # fresh, never cached or queued
                try:
                    with spool.open("wb") as out:
                        got = client.download(url, into=out, max_bytes=settings.max_packet_bytes)
                except LinkExpired:
                    self.log.info("download link refused (try %d); asking for a new one", attempt)
                    continue
                self._sha256, self._size = got.sha256, got.size
                self._source = "downloaded from the portal"
                return spool
            raise TransientError(f"download links kept expiring ({settings.link_attempts} tries)")
        except BaseException:
            spool.unlink(missing_ok=True)
            raise

    def new_spool(self) -> Path:
        self.ctx.spool_dir.mkdir(parents=True, exist_ok=True)
        # Named from a safe form of the id: an id is never a path (`../x`, 5,000 characters).
        prefix = f"{safe_name(self.id)}."
        fd, name = tempfile.mkstemp(prefix=prefix, suffix=".part", dir=self.ctx.spool_dir)
        os.close(fd)
        return Path(name)

    def spool_from(self, source: BinaryIO) -> Path:
        spool = self.new_spool()
        digest, size = hashlib.sha256(), 0
        with spool.open("wb") as out:
            for chunk in iter(lambda: source.read(CHUNK), b""):
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
        self._sha256, self._size = digest.hexdigest(), size
        return spool

    def archive(self, spool: Path) -> None:
        entry = self.entry
        if entry.archive_key is None:
            key = archive_key(
                entry.app_area,
                self.id,
                ext=extension(spool, entry.list_type),
                received_at=datetime.fromtimestamp(self.ledger.clock(), UTC),
            )
            self.ctx.archive.put(
                key, spool, sha256=self._sha256, size=self._size, meta=archive_meta(entry)
            )
            # The key and the state move together (one atomic update, one round trip); the
            # timeline's step says where the bytes came from.
            state = PacketState.ARCHIVED if entry.state in _BEFORE_ARCHIVED else None
            note = f"{self._source}: {self._size} bytes, sha256 {self._sha256[:12]}…"
            self.update(state, archive_key=key, sha256=self._sha256, size=self._size, note=note)
        elif entry.state in _BEFORE_ARCHIVED:
            self.update(PacketState.ARCHIVED)

    def claim_content(self) -> str | None:
        """None if this packet owns its content; else the id of the packet it duplicates."""
        app_area, sha = self.entry.app_area, self._sha256
        for _ in range(3):  # bounded: each turn either settles or replaces a dead claim
            holder = self.ledger.claim_content(app_area, sha, self.id)
            if holder == self.id:
                return None
            other = self.ledger.get(holder)
            if other is not None and other.result != "quarantined":
                return holder
            # The holder was quarantined (or expired): its content was never applied.
            if self.ledger.replace_claim(app_area, sha, old=holder, new=self.id):
                return None
        raise TransientError("content claim kept changing hands")

    def open_reader(self, stream: BinaryIO) -> PacketReader:
        """The packet's reader, and `apply_ctx`: what the target learns about the packet."""
        # A replayed file is named by its path, a portal packet by its id.
        name = str(self.local) if self.local else self.id
        reader = open_packet(stream, limits=Limits.from_settings(self.ctx.settings), name=name)
        self.apply_ctx = ApplyContext(
            app_area=self.entry.app_area,
            packet_id=self.id,
            user=self.entry.user or reader.header.salesmancode,
            header=reader.header,
            journal=self.ledger,
            refs=LedgerTargetRefs(self.ledger, self.ctx.target.name),
            company=self.entry.company,
        )
        return reader

    def apply(self, stream: BinaryIO) -> None:
        """Apply the packet's records in batches within `apply_batch_size` records and
        `apply_batch_chars` characters, cut between documents only, the lock kept alive
        throughout (a batch may be one huge document)."""
        settings = self.ctx.settings
        started = time.monotonic()
        with kept_alive([self.held], every=_beat(settings)):
            batches = _batches(self.read_documents(stream), _bounds(settings))
            for number, batch in enumerate(batches):
                if number:
                    self.keep_alive()
                if todo := self.unapplied(batch):
                    records = [r for _, r in todo]
                    self.record(todo, self.ctx.target.apply(records, ctx=self.apply_context()))
        labels = {"app_area": self.entry.app_area, "target": self.ctx.target.name}
        METRICS.observe(APPLY_SECONDS, labels, time.monotonic() - started)

    def read_documents(self, stream: BinaryIO) -> Iterator[list[Positioned]]:
        """The packet's records, each document contiguous (`Target.documents`), without
        holding the packet: a packet larger than one batch is assembled on disk, beside the
        spool (`packets.assembly`). A packet that fits one batch is read once, in packet
        order; so is every packet of a target without documents."""
        records = enumerate(self.open_reader(stream))
        shape = self.ctx.target.documents
        if shape is None:
            return _singly(records)
        head, fits = _head(records, _bounds(self.ctx.settings))
        if fits:
            return _singly(head)

        def read() -> Iterator[Record]:
            stream.seek(0)
            return iter(self.open_reader(stream))

        return assemble(read, shape, self.ctx.spool_dir)

    def keep_alive(self) -> None:
        """Between batches: keep the lock, and record progress so that a long packet does
        not look stale. (After the last batch `finish` or `quarantine` updates the entry.)"""
        self.held.refresh()
        self.update()

    def unapplied(self, batch: list[tuple[str, Record]]) -> list[tuple[str, Record]]:
        """The records of `batch` still to apply; those an earlier run applied (it crashed
        later) are counted as unchanged, not sent again."""
        for _, record in batch:
            if len(self.documents) >= MAX_DOCUMENTS:
                break
            number = next((v for f in DOCUMENT_NUMBER_FIELDS if (v := record.get(f))), None)
            if number:
                self.documents[number[:64]] = None
        done = self.ledger.links(self.id, (key for key, _ in batch))
        if done:
            self.outcomes[str(Outcome.UNCHANGED)] += len(done)
        return [(key, record) for key, record in batch if key not in done]

    def record(self, todo: list[tuple[str, Record]], outcomes: Sequence[RecordOutcome]) -> None:
        """Keep the target's outcomes: links of applied records, counts, held records; any
        failed record quarantines the packet."""
        if len(outcomes) != len(todo):
            raise TargetError(
                f"target answered {len(outcomes)} outcomes for {len(todo)} records",
                transient=False,
            )
        links = {
            key: o.target_ref or ""
            for (key, _), o in zip(todo, outcomes, strict=True)
            if o.outcome in (Outcome.APPLIED, Outcome.UNCHANGED)
        }
        self.ledger.add_links(self.id, links)
        self.outcomes.update(str(o.outcome) for o in outcomes)
        self.held_records += [o for o in outcomes if o.outcome is Outcome.HELD]
        failed = [o for o in outcomes if o.outcome is Outcome.FAILED]
        if failed:
            reasons = "; ".join(
                f"{o.table}/{o.dms_rowid or '-'}: {o.message or 'failed'}" for o in failed[:5]
            )
            more = f" (+{len(failed) - 5} more)" if len(failed) > 5 else ""
            raise _Quarantine(f"{len(failed)} record(s) failed: {reasons}{more}")

    # --- endings ---

    def finish(self, *, duplicate_of: str | None = None) -> ProcessResult:
        result = "duplicate" if duplicate_of else "applied"
        self.update(
            PacketState.APPLIED,
            result=result,
            duplicate_of=duplicate_of,
            last_error=None,
            held_since=None,
            held_on=None,
            **self.documents_field(),
        )
        _queue_ack(self.ctx, self.entry)
        self.count(result)
        if duplicate_of:
            self.log.info("same content as %s; acknowledged without applying", duplicate_of)
        else:
            self.log.info("applied: %s", dict(self.outcomes))
        return _result(self.entry, self.outcomes)

    def quarantine(self, reason: str) -> ProcessResult:
        reason = _redact(self.ctx, reason)
        self.update(
            PacketState.QUARANTINED,
            result="quarantined",
            last_error=reason,
            **self.documents_field(),
        )
        _queue_ack(self.ctx, self.entry)
        self.count("quarantined")
        self.log.warning("quarantined: %s", reason)
        return _result(self.entry, self.outcomes)

    def hold(self, attempts: int) -> ProcessResult:
        """Park the packet as `waiting` (not a failed attempt, not acknowledged), or
        quarantine it once it has been held for longer than the limit."""
        settings = self.ctx.settings
        reason = _held_reason(self.held_records)
        now = self.ledger.clock()
        since = self.entry.held_since or now
        if now - since >= settings.bc_hold_max_hours * 3600:
            limit = f"{settings.bc_hold_max_hours:g}"
            return self.quarantine(f"held for more than {limit} h (BC_HOLD_MAX_HOURS): {reason}")
        waits_for = " ".join(sorted({o.waits_for for o in self.held_records if o.waits_for}))
        self.update(
            PacketState.WAITING,
            attempts=attempts - 1,
            held_since=since,
            held_on=waits_for or None,
            last_error=_redact(self.ctx, reason),
        )
        self.log.info("held, not acknowledged: %s", reason)
        return _result(self.entry, self.outcomes)

    def documents_field(self) -> dict[str, str]:
        """`documents` for the entry when this run read any (a duplicate reads none)."""
        return {"documents": ",".join(self.documents)} if self.documents else {}

    def count(self, outcome: str) -> None:
        """This run's packet and record outcomes, for /metrics (`packetworker.metrics`)."""
        area = self.entry.app_area
        METRICS.inc(PACKETS_PROCESSED, {"app_area": area, "outcome": outcome})
        for record_outcome, n in self.outcomes.items():
            METRICS.inc(RECORDS_PROCESSED, {"app_area": area, "outcome": record_outcome}, n)

    def fail(self, reason: str) -> None:
        reason = _redact(self.ctx, reason)
        self.update(last_error=reason)
        self.log.warning("attempt %d failed: %s", self.entry.attempts, reason)


def _bounds(settings: Settings) -> tuple[int, int]:
    """What one batch may hold: records, and characters of field names and values."""
    return settings.apply_batch_size, settings.apply_batch_chars


def _weight(record: Record) -> int:
    """A record's size in characters of field names and values (what a batch holds)."""
    return sum(len(name) + len(value) for name, value in record.fields.items())


def _head(records: Iterator[Positioned], bounds: tuple[int, int]) -> tuple[Iterator, bool]:
    """Read `records` up to one batch's bounds: (all of them, True) when the packet fits
    one batch, else (the same records, read and unread, in order; False)."""
    size, chars = bounds
    head: list[Positioned] = []
    held = 0
    for pair in records:
        head.append(pair)
        held += _weight(pair[1])
        if len(head) > size or held > chars:
            return chain(head, records), False
    return iter(head), True


def _batches(
    documents: Iterable[list[Positioned]], bounds: tuple[int, int]
) -> Iterator[list[tuple[str, Record]]]:
    """Batches of (record key, record) within `bounds` (records, characters), cut between
    documents only (a document larger than a batch is a batch of its own), so memory is
    bounded whatever the records' size. The key includes the record's position in the
    packet, which is stable for the same bytes, so a row that appears twice in a packet is
    two records."""
    size, chars = bounds
    batch: list[tuple[str, Record]] = []
    held = 0
    for document in documents:
        weight = sum(_weight(r) for _, r in document)
        if batch and (len(batch) + len(document) > size or held + weight > chars):
            yield batch
            batch, held = [], 0
        batch += [(f"{r.table.name}/{r.dms_rowid or ''}#{index}", r) for index, r in document]
        held += weight
    if batch:
        yield batch


def _singly(records: Iterable[Positioned]) -> Iterator[list[Positioned]]:
    """Each record a document of its own, in packet order."""
    return ([pair] for pair in records)


def _beat(settings: Settings) -> float:
    """Seconds between refreshes of a packet's lock while it is applied: three per TTL."""
    return settings.packet_lock_ttl / 3


def _held_reason(held: Sequence[RecordOutcome]) -> str:
    """One line for the ledger: the distinct reasons the target gave (a document's header
    and lines share theirs), at most five."""
    reasons = list(dict.fromkeys(o.message or f"{o.table} held" for o in held))
    more = f" (+{len(reasons) - 5} more)" if len(reasons) > 5 else ""
    return f"held: {'; '.join(reasons[:5])}{more}"


def _defer(settings: Settings, retry_after: float) -> float:
    """Seconds until a packet with a write in doubt is run again: when the doubt becomes
    decidable, but no later than the longest retry backoff (a late commit is found sooner by
    a look-up) and no sooner than the shortest one."""
    low, high = settings.retry_min_backoff_ms / 1000, settings.retry_max_backoff_ms / 1000
    return max(low, min(retry_after, high))


def _unreadable(spool: Path, ctx: PipelineContext) -> str | None:
    """Why the packet in `spool` cannot be read to its end, or None (a full streaming pass)."""
    try:
        with spool.open("rb") as stream:
            reader = open_packet(stream, limits=Limits.from_settings(ctx.settings))
            for _ in reader:
                pass
    except PacketError as exc:
        return str(exc)
    return None


def _queue_ack(ctx: PipelineContext, entry: PacketEntry) -> None:
    # Only packets that came from the portal with a receipt handle have anything to ack.
    if entry.receipt_handle and entry.state is not PacketState.ACKNOWLEDGED:
        ctx.ledger.queue_ack(entry.app_area, entry.list_type, entry.packet_id)


def _result(entry: PacketEntry, outcomes: Mapping[str, int] | None = None) -> ProcessResult:
    state = "duplicate" if entry.result == "duplicate" else str(entry.state)
    if entry.state is PacketState.ACKNOWLEDGED and entry.result:
        state = entry.result
    return ProcessResult(
        entry.packet_id,
        state,
        dict(outcomes or {}),
        entry.duplicate_of,
        entry.last_error,
    )


def _redact(ctx: PipelineContext, text: str) -> str:
    secret = ctx.settings.dm_api_key.get_secret_value()
    return redact_text(text, secret)[:ERROR_CHARS]


__all__: Sequence[str] = ["process_packet", "process_packets", "run_packet"]
