"""The flow every system target shares: map → plan → send → settle, per packet of a group.

`SystemTarget.apply_group` maps each packet's records (a `Packet`: its operations, its
records' outcomes in record order, its writes in doubt, and the error that stopped it),
hands the packets still going to `send` — the one step each system supplies: look up, plan
and send the operations, and settle the answers on them — then answers per packet: one
outcome per record, or the error that stopped that packet alone. `apply` is a group of one,
so one packet and a hundred run through the same code.

Also shared: the outcome of a record the mapping did not turn into an operation (one wording
for every target) and a cache of look-ups (codes → ids).
"""

from __future__ import annotations

import logging
import threading
from abc import abstractmethod
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Sequence
from typing import ClassVar, Generic, TypeVar

from packetworker.packets.model import PacketHeader, Record
from packetworker.targets.base import ApplyContext, Outcome, RecordOutcome, Target
from packetworker.targets.in_doubt import InDoubt
from packetworker.targets.mapping import MappedItem, Mapper

logger = logging.getLogger(__name__)

W = TypeVar("W")  # a target's own record of one mapped operation on its way

FILTERED = "Filtered out by the mapping's `when` rule; nothing to apply."
IGNORED = "Table ignored by the mapping; nothing to apply."
NOT_MAPPED = "The record could not be mapped."
NO_OUTCOME = "The mapping produced no outcome for this record."


class Outcomes:
    """One outcome per record, in record order, whatever order they are settled in.

    Records are told apart by (table, DMS_ROWID); records of the same key (no DMS_ROWID) are
    filled in arrival order. An outcome for no free record is dropped; a record left without
    one fails, so no record is ever lost silently.
    """

    def __init__(self, records: Sequence[Record]) -> None:
        self.records = records
        self._out: list[RecordOutcome | None] = [None] * len(records)
        self._free: dict[tuple[str, str | None], deque[int]] = defaultdict(deque)
        for n, record in enumerate(records):
            self._free[(record.table.name, record.dms_rowid)].append(n)

    def put(self, outcome: RecordOutcome) -> None:
        free = self._free.get((outcome.table, outcome.dms_rowid))
        if free:
            self._out[free.popleft()] = outcome

    def result(self) -> list[RecordOutcome]:
        return [
            o or RecordOutcome(r.table.name, r.dms_rowid, Outcome.FAILED, message=NO_OUTCOME)
            for o, r in zip(self._out, self.records, strict=True)
        ]


def unmapped_outcome(item: MappedItem) -> RecordOutcome:
    """The outcome of a record the mapping did not turn into an operation: filtered out by a
    `when` rule, of an ignored table, skipped (with the mapping's reason), or failed."""
    if item.outcome == "filtered":
        return RecordOutcome(item.table, item.dms_rowid, Outcome.SKIPPED, message=FILTERED)
    if item.outcome == "ignored":
        return RecordOutcome(item.table, item.dms_rowid, Outcome.SKIPPED, message=IGNORED)
    if item.outcome == "skipped":
        return RecordOutcome(item.table, item.dms_rowid, Outcome.SKIPPED, message=item.message)
    message = item.message or NOT_MAPPED
    logger.warning("%s/%s not mapped: %s", item.table, item.dms_rowid or "-", message)
    return RecordOutcome(item.table, item.dms_rowid, Outcome.FAILED, message=message)


class LookupCache:
    """Ids found by look-up, by (entity, field, value), so each value is asked for once.

    `keep_misses`: remember what was not found too — right within one group, whose look-ups
    run before its writes; a cache kept across packets keeps hits only, since a record
    missing now may be created by the next packet.
    """

    def __init__(self, *, keep_misses: bool = False) -> None:
        self.keep_misses = keep_misses
        self._ids: dict[tuple[str, str, str], str | None] = {}
        self._lock = threading.Lock()

    def get(
        self, entity: str, field: str, value: object, find: Callable[[], str | None]
    ) -> str | None:
        """The cached id, else `find()`'s answer (kept when found, or when keeping misses)."""
        key = (entity, field, str(value))
        with self._lock:
            if key in self._ids:
                return self._ids[key]
        found = find()
        if found is not None or self.keep_misses:
            with self._lock:
                self._ids[key] = found
        return found


class Packet(Generic[W]):
    """One packet of a group: its records' outcomes, its operations on their way (`works`),
    its writes in doubt (read from its journal on first use) and the error that stopped it
    (None while it goes on). An error stops this packet only. `route` is where the target
    sends it (BC: its company's client)."""

    def __init__(
        self, records: Sequence[Record], ctx: ApplyContext, *, window: float, service: str
    ) -> None:
        self.records = records
        self.ctx = ctx
        self.outcomes = Outcomes(records)
        self.works: list[W] = []
        self.error: Exception | None = None
        self.route: object = None
        self._window, self._service = window, service
        self._doubts: InDoubt | None = None

    @property
    def doubts(self) -> InDoubt:
        if self._doubts is None:
            self._doubts = InDoubt(
                self.ctx.journal, self.ctx.packet_id, window=self._window, service=self._service
            )
        return self._doubts

    def fail(self, exc: Exception) -> None:
        """Stop this packet with `exc` (the first error wins)."""
        if self.error is None:
            self.error = exc


class SystemTarget(Target, Generic[W]):
    """A target that applies mapped packets to a system; subclasses supply `work` (what they
    keep per operation), `send` (look up, plan, send, settle) and `outcomes` (a settled
    work's outcomes per source record)."""

    service: ClassVar[str] = "the target system"  # how messages about writes in doubt name it
    in_doubt_seconds: float = 600.0  # the system's longest request: a write in doubt waits it
    mapper: Mapper

    def apply(self, records: Sequence[Record], *, ctx: ApplyContext) -> list[RecordOutcome]:
        result = self.apply_group([(records, ctx)])[0]
        if isinstance(result, Exception):
            raise result
        return result

    def apply_group(
        self, packets: Sequence[tuple[Sequence[Record], ApplyContext]]
    ) -> list[list[RecordOutcome] | Exception]:
        group: list[Packet[W]] = [
            Packet(records, ctx, window=self.in_doubt_seconds, service=self.service)
            for records, ctx in packets
        ]
        mapped: list[Packet[W]] = []
        for packet in group:
            try:
                self.map(packet)
            except Exception as exc:
                packet.fail(exc)
                continue
            mapped.append(packet)
        try:
            self.send(mapped)
        except Exception as exc:  # a failure `send` did not pin on its packets stops them all
            for packet in mapped:
                packet.fail(exc)
        return [self.answer(packet) for packet in group]

    def map(self, packet: Packet[W]) -> None:
        """The packet's records as operations (`works`), and the outcome of each record the
        mapping does not turn into one."""
        ctx = packet.ctx
        header = ctx.header or PacketHeader(salesmancode=ctx.user or "")
        for item in self.map_records(header, packet.records):
            if item.outcome == "mapped" and item.operation is not None:
                packet.works.append(self.work(item, packet))
            else:
                packet.outcomes.put(self.unmapped(item, ctx))

    def map_records(self, header: PacketHeader, records: Sequence[Record]) -> Iterable[MappedItem]:
        return self.mapper.map_packet(header, records)

    def unmapped(self, item: MappedItem, ctx: ApplyContext) -> RecordOutcome:
        """The outcome of a record without an operation (a CRM applies its error policy)."""
        return unmapped_outcome(item)

    def answer(self, packet: Packet[W]) -> list[RecordOutcome] | Exception:
        """The packet's outcomes in record order, or the error that stopped it."""
        if packet.error is not None:
            return self.as_error(packet.error)
        for work in packet.works:
            for outcome in self.outcomes(work, packet):
                packet.outcomes.put(outcome)
        return packet.outcomes.result()

    def as_error(self, exc: Exception) -> Exception:
        """The error a stopped packet answers (a target may translate its own)."""
        return exc

    @abstractmethod
    def work(self, item: MappedItem, packet: Packet[W]) -> W:
        """What the target keeps for one mapped operation of `packet`."""

    @abstractmethod
    def send(self, packets: list[Packet[W]]) -> None:
        """Look up, plan and send the packets' works, sharing requests where the system
        allows, and settle each work; an error stops only the packets it hits (`fail`)."""

    @abstractmethod
    def outcomes(self, work: W, packet: Packet[W]) -> Iterable[RecordOutcome]:
        """A settled work's outcome for each of its source records."""
