"""`CrmTarget`: the skeleton's steps (`targets.skeleton`) as the three CRM targets share
them: mapping a whole packet, the per-record error policy, and each packet's writes in doubt.

A CRM target maps a packet with two mappings: its own (Field Sales tables → CRM entities)
and the contact mapping (the contact rules: `Contact` + `ContactAddress`, by default
`ipaas-contact`), each applied to the tables it names. The contact mapping says what its
fields mean (`[contact_fields]`), the CRM's own mapping where that CRM keeps them
(`[contact_columns]`), so no column name lives in code. Subclasses send the resulting
operations — one at a time (`apply_mapped`, `apply_contact`), or the whole group's together
(`send`, to batch) — and answer an `OpResult` per operation, or raise
`RecordRefused` for a record the CRM or the mapping's rules refuse. Also shared: resolving
lookups, and owning the client (and, for the sandbox, an emulator) until `close()`.

Writes in doubt (`targets.in_doubt`): a create whose outcome is unknown (a timeout, a reset or
a 5xx after it was sent, a worker killed mid-request) may still commit. Each target records
its creates in the packet's journal before sending them (`self.doubts`, set per packet and
thread while it is sent), looks one in doubt up by its key before any re-send, and re-sends
it only once `in_doubt_seconds` have passed since it was sent and the look-up still misses
it; a look-up that finds it answers `applied`. Which writes need it, and which look-up
finds them, is each target's (see their modules).

Record errors — a failed mapping check (Invalid Email, Missing Email), a lookup that finds
nothing (Company Not Found), an existing record under PreventDuplicate (Duplicate Contact),
or the CRM refusing one record's data — follow the `crm_record_errors` policy:
`quarantine` answers FAILED (the pipeline quarantines the packet), `skip` answers SKIPPED
with the same plain-language message, and the rest of the packet applies. Either way the
record is reported and logged, never dropped silently. Other mapping errors (a required
field without a value, a table the mapping does not know) always answer FAILED.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from collections.abc import Mapping as MappingABC
from typing import Any, ClassVar, TypeVar

from packetworker.packets.assembly import DocumentShape
from packetworker.packets.model import PacketHeader, Record
from packetworker.targets.base import ApplyContext, Outcome, RecordOutcome, TargetError
from packetworker.targets.crm.contacts import ContactData, contact_data, contact_settings
from packetworker.targets.crm.operations import Job, OpResult, RecordRefused
from packetworker.targets.crm.options import RecordErrors
from packetworker.targets.in_doubt import InDoubt
from packetworker.targets.mapping import (
    ContactColumns,
    ContactFields,
    LookupRef,
    MappedItem,
    Mapper,
    Mapping,
    MappingError,
    MappingFault,
    Operation,
)
from packetworker.targets.skeleton import NOT_MAPPED, Packet, SystemTarget, unmapped_outcome

logger = logging.getLogger(__name__)

T = TypeVar("T")


class CrmTarget(SystemTarget[Job]):
    """Maps whole packets and reports one outcome per record; subclasses send operations.

    The target owns `client` and closes it; `on_close` runs after (the sandbox stops its
    emulator). The mapping's `lookup_entities` say where this CRM keeps what a lookup names
    by a neutral entity (`company`); its `contact_columns` where it keeps a contact of the
    contact mapping (`contact()` reads one, `contact_columns` say how to store it).
    """

    service: ClassVar[str] = "the CRM"

    def __init__(
        self,
        client: Any,
        *,
        mapping: Mapping,
        contact_mapping: Mapping | None = None,
        record_errors: RecordErrors = "quarantine",
        on_close: Callable[[], None] | None = None,
        in_doubt_seconds: float = 600.0,
    ) -> None:
        self.client = client
        self.in_doubt_seconds = in_doubt_seconds
        self._applying = threading.local()  # the packet this thread applies: its doubts
        self.mapping = mapping
        self.contact_mapping = contact_mapping
        self.record_errors = record_errors
        self._on_close = on_close
        _single_field_lookups(mapping)
        self.mapper = Mapper(mapping)
        self._contact_mapper = Mapper(contact_mapping) if contact_mapping else None
        contact_joins = contact_mapping.document_shape().joins if contact_mapping else {}
        self.documents = DocumentShape({**mapping.document_shape().joins, **contact_joins})
        self._contact_tables: set[str] = set()
        self._contact_fields: ContactFields | None = None
        self._contact_columns: ContactColumns | None = None
        if contact_mapping is not None:
            self._contact_fields, self._contact_columns = contact_settings(mapping, contact_mapping)
            self._contact_tables = set(contact_mapping.tables) | set(
                contact_mapping.child_parents()
            )
        self._made: list[str] = []  # what `describe` lists

    def close(self) -> None:
        try:
            self.client.close()
        finally:
            if self._on_close is not None:
                self._on_close()

    # --- subclasses ---------------------------------------------------------------------

    def apply_operation(self, job: Job) -> OpResult:
        """Send one operation; raise `RecordRefused` for a record error, `TargetError`
        for a transient failure. A permanent `TargetError` answers FAILED, unless
        `refusal` names it a record error."""
        try:
            if job.contact:
                return self.apply_contact(self.contact(job.operation))
            return self.apply_mapped(job.operation)
        except TargetError as error:
            sentence = self.refusal(error)
            if sentence is not None:
                raise RecordRefused(sentence) from None
            if error.transient:
                raise
            return OpResult(Outcome.FAILED, message=error.message)

    def apply_mapped(self, operation: Operation) -> OpResult:
        """Send one operation of the target's own mapping."""
        raise NotImplementedError

    def apply_contact(self, contact: ContactData) -> OpResult:
        """Send one contact of the contact mapping."""
        raise NotImplementedError

    def refusal(self, error: TargetError) -> str | None:
        """The record-error sentence for a CRM error that is about the record's data."""
        return None

    def lookup_at(self, ref: LookupRef) -> tuple[str, str]:
        """Where `ref` is looked up: (entity, field), after the mapping's `lookup_entities`."""
        at = self.mapping.lookup_entities.get(ref.entity)
        return (at.entity, at.match) if at is not None else (ref.entity, ref.match)

    def contact(self, operation: Operation) -> ContactData:
        """The contact of one operation of the contact mapping."""
        assert self._contact_fields is not None  # contact jobs come from the contact mapping
        return contact_data(operation, self._contact_fields)

    @property
    def contact_columns(self) -> ContactColumns:
        """Where this CRM keeps contacts (set whenever a contact mapping is)."""
        assert self._contact_columns is not None
        return self._contact_columns

    @property
    def doubts(self) -> InDoubt:
        """The writes in doubt of the packet this thread is applying."""
        doubts = getattr(self._applying, "doubts", None)
        if doubts is None:  # called outside `apply`: nothing journalled
            doubts = InDoubt(None, "", window=self.in_doubt_seconds, service=self.service)
        return doubts

    def send_create(
        self, key: str, operation: str, keys: MappingABC[str, str], send: Callable[[], T]
    ) -> T:
        """`send()` one create, journalled under `key` (see `InDoubt.write`): a 429 or a
        connection never made certainly did not run it."""
        not_run = tuple(
            kind
            for kind in (
                getattr(self.client, "throttled", None),
                getattr(self.client, "not_sent", None),
            )
            if kind is not None
        )
        return self.doubts.write(key, operation, keys, send, not_run=not_run)

    def created(self) -> list[str]:
        """One line per record this target created, in creation order."""
        return list(self._made)

    def describe(self) -> list[str]:
        return self.created()

    # --- the skeleton's steps -------------------------------------------------------------

    def map_records(self, header: PacketHeader, records: Sequence[Record]) -> list[MappedItem]:
        """The CRM's own mapping for its tables, the contact mapping for the contact's."""
        main = [r for r in records if r.table.name not in self._contact_tables]
        contacts = [r for r in records if r.table.name in self._contact_tables]
        items = list(self.mapper.map_packet(header, main))
        if contacts and self._contact_mapper is not None:
            items += self._contact_mapper.map_packet(header, contacts)
        return items

    def work(self, item: MappedItem, packet: Packet[Job]) -> Job:
        assert item.operation is not None
        return Job(item.operation, contact=item.table in self._contact_tables)

    def send(self, packets: list[Packet[Job]]) -> None:
        """Each packet's operations in turn (`apply_operation`), its writes in doubt in its
        own journal; an error stops that packet only. A target that shares requests across
        the group (Dataverse) overrides this."""
        for packet in packets:
            self._applying.doubts = packet.doubts
            try:
                for job in packet.works:
                    try:
                        job.result = self.apply_operation(job)
                    except RecordRefused as refused:
                        job.result = refused
            except Exception as exc:
                packet.fail(exc)
            finally:
                self._applying.doubts = None

    def outcomes(self, work: Job, packet: Packet[Job]) -> Iterable[RecordOutcome]:
        assert work.result is not None  # settled by `send`
        return self._outcomes(work.operation, work.result, packet.ctx)

    def unmapped(self, item: MappedItem, ctx: ApplyContext) -> RecordOutcome:
        """A record that breaks one of the mapping's rules follows the error policy."""
        if item.outcome == "error" and item.fault is MappingFault.RULE:
            return self._refused(item.table, item.dms_rowid, item.message or NOT_MAPPED, ctx)
        return unmapped_outcome(item)

    # --- outcomes -----------------------------------------------------------------------

    def _outcomes(
        self, operation: Operation, result: OpResult | RecordRefused, ctx: ApplyContext
    ) -> Iterable[RecordOutcome]:
        if isinstance(result, RecordRefused):
            for table, rowid in operation.source:
                yield self._refused(table, rowid, result.message, ctx)
            return
        refs = result.refs or [result.ref] * len(operation.source)
        for (table, rowid), ref in zip(operation.source, refs, strict=True):
            yield RecordOutcome(
                table, rowid, result.outcome, target_ref=ref, message=result.message
            )

    def _refused(
        self, table: str, rowid: str | None, message: str, ctx: ApplyContext
    ) -> RecordOutcome:
        outcome = Outcome.SKIPPED if self.record_errors == "skip" else Outcome.FAILED
        logger.warning(
            "packet %s: %s/%s refused (%s): %s",
            ctx.packet_id,
            table,
            rowid or "-",
            "skipped" if outcome is Outcome.SKIPPED else "quarantine",
            message,
        )
        return RecordOutcome(table, rowid, outcome, message=message)

    def _created(self, entity: str, ref: str | None, label: str) -> None:
        self._made.append(f"{entity} {ref or '?'}: {label}")


def _single_field_lookups(mapping: Mapping) -> None:
    """CRM targets find a looked-up record by one field (`match`): a look-up that also names
    `where` fields would be resolved on `match` alone and could pick the wrong record, so such
    a mapping is refused at start, naming the file and the place."""
    for name, table in mapping.tables.items():
        places = [(f"tables.{name}", table)]
        places += [(f"tables.{name}.children.{c}", child) for c, child in table.children.items()]
        for at, spec in places:
            for field, lookup in spec.lookups.items():
                if lookup.where:
                    raise MappingError(
                        "CRM targets look a record up by its `match` field alone; `where` "
                        "(more fields to match) is for Business Central mappings",
                        source=mapping.source or mapping.name,
                        path=f"{at}.lookups.{field}.where",
                    )
