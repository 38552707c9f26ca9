"""The dataverse target: mapped Field Sales records and contacts into Dataverse.

Documents go out in `$batch` requests, one change set per document (a sales order and its
lines, an account and its primary contact), so a document is applied whole or not at all
and one request carries up to `batch_size` operations: that is what keeps requests per
applied record far below one (see `bench/bench_dataverse_requests.py`).

Idempotency, so a re-run creates nothing new (`unchanged`):
- a record keyed by its own GUID (the mobile DMS_ROWID as `salesorderid`, `activityid`) or
  by an alternate key (`accountnumber`) is written with `If-None-Match: *`: an existing one
  answers 412 and its change set rolls back whole (no second primary contact, no second set
  of lines); an upsert then updates only the mapping's `update_fields`;
- an org without that alternate key (a stock org has none, crm.md A.7) answers 400 "the key
  in the request URI is not valid"; the target then remembers that the table has no usable
  key and looks the record up by the key's columns before creating it (`prerequisites.py`
  tells an operator to define the key for race-free upserts);
- a contact is looked for by number and email first; the same source row is `unchanged`,
  another one is "Duplicate Contact" (PreventDuplicate). Its create also asks Dataverse to
  run its duplicate-detection rules (`MSCRM.SuppressDuplicateDetection: false`; the Web API
  skips them otherwise, crm.md A.9), so a duplicate the look-ups cannot see (another
  spelling of the email, a rule on other columns) is reported as a Duplicate Contact too.

Writes in doubt (`targets.crm`; the window is `in_doubt_seconds`, `DATAVERSE_IN_DOUBT_SECONDS`):
- a create addressed by GUID or alternate key with `If-None-Match: *` is safe to repeat: if
  an earlier send committed after all, the repeat answers 412 and its change set (nested
  contact, lines) rolls back whole. These are not journalled;
- a plain POST (a table without a usable key, a contact whose row id is no GUID) is
  journalled before its `$batch` is sent. One whose outcome is unknown (a timeout, a reset,
  a 5xx for the batch or its change set) is looked up by its key columns — the look-up the
  target does anyway — and re-sent only when that still misses it `in_doubt_seconds` after it
  was sent; one the look-up finds is `applied`. A create whose mapping has no `key` has no
  look-up: one in doubt is re-sent once the window has passed.

**Groups** (`apply_group`, the pipeline's `process_packets`): the documents of every packet
of the group share the `$batch`es (whole change sets, at most `batch_size` operations per
request) and the cached look-ups, so a group of 100 single-order packets costs a `$batch` or
two instead of a hundred. Each document answers its own packet: a refused one fails its own
records; a `$batch` that fails as a whole stops the packets it carried, and its plain POSTs
are left in doubt in their own packet's journal. `apply` is a group of one.

A document that needs more operations than one `$batch` may carry (1,000) cannot be split
without breaking its change set; it is refused with a clear message instead.

Lookups are resolved by a query per distinct value (cached; only hits are kept). A miss
first sends what is pending, since the record may be in the same packet (a new customer and
its first order), then asks again.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from packetworker.targets.base import Outcome
from packetworker.targets.crm.contacts import ContactData
from packetworker.targets.crm.operations import (
    Job,
    OpResult,
    RecordRefused,
    lookup_keys,
    lookup_message,
    operation_label,
    resolve_or_refuse,
    write_key,
)
from packetworker.targets.crm.options import crm_options
from packetworker.targets.crm.target import CrmTarget
from packetworker.targets.dataverse.batch import BatchOperation, BatchResponse
from packetworker.targets.dataverse.client import DataverseClient
from packetworker.targets.dataverse.contacts import contact_columns, extra_addresses_note
from packetworker.targets.dataverse.errors import (
    ConnectionFailed,
    DataverseError,
    DuplicateDetected,
    DuplicateRecord,
    LookupTargetNotFound,
    RecordNotFound,
    Throttled,
)
from packetworker.targets.dataverse.odata import format_value, is_guid, record_path
from packetworker.targets.dataverse.shape import EntityShape, entity_shape
from packetworker.targets.dataverse.unbatched import send_one_by_one
from packetworker.targets.in_doubt import outcome_unknown
from packetworker.targets.mapping import LookupRef, Operation
from packetworker.targets.required import missing_dataverse, require
from packetworker.targets.skeleton import LookupCache, Packet

if TYPE_CHECKING:
    from packetworker.settings import Settings

T = TypeVar("T")

MAX_BATCH_OPERATIONS = 1000  # Dataverse's limit per $batch (crm.md A.11)
# crm.md A.7: what Dataverse answers when a URI names columns that are no (active) key.
KEY_NOT_VALID = "key in the request URI is not valid"
NOT_RUN = (Throttled, ConnectionFailed)  # failures of a request that certainly did not run


@dataclass
class _Document:
    """One change set: the parts of one operation, which answer is whose, and the job and
    packet it answers."""

    job: Job
    packet: Packet[Job]
    operation: Operation
    parts: list[BatchOperation]
    head: str  # content id of the operation's own record
    rows: list[str] = field(default_factory=list)  # content ids of the child rows
    existing_update: dict[str, Any] | None = None  # what to change if the record exists
    by_key: bool = True  # addressed by GUID / alternate key (else created by a plain POST)


class DataverseTarget(CrmTarget):
    """`DataverseTarget(client, mapping=..., contact_mapping=..., record_errors=...)`."""

    name = "dataverse"
    service = "Dataverse"
    client: DataverseClient

    def __init__(
        self,
        client: DataverseClient,
        *,
        use_batch: bool = True,
        batch_size: int = MAX_BATCH_OPERATIONS,
        **options: Any,
    ) -> None:
        super().__init__(client, **options)
        self.shape = entity_shape(self.mapping)  # nested records, collections, alternate keys
        self.use_batch = use_batch
        self.batch_size = max(1, min(batch_size, MAX_BATCH_OPERATIONS))
        self._ids = LookupCache()  # (entity, column, value) -> GUID, hits only
        self._keyless: set[str] = set()  # entity sets whose alternate key the org lacks
        self._content_ids = itertools.count(1)  # next() is atomic: safe across threads

    # --- the skeleton's send step -------------------------------------------------------

    def send(self, packets: list[Packet[Job]]) -> None:
        """Every packet's documents in shared `$batch`es (one change set per document, at
        most `batch_size` operations per request); look-ups are cached across the group.
        Each packet keeps its own results, writes in doubt and error: a refused document
        fails its own records, a failed `$batch` stops only the packets it carried."""
        pending: list[_Document] = []
        for packet in packets:
            self._applying.doubts = packet.doubts  # for the contacts' journalled creates
            try:
                for job in packet.works:
                    if packet.error is not None:
                        break
                    self._job(job, packet, pending)
            finally:
                self._applying.doubts = None
        self._flush(pending)
        for packet in packets:
            for job in packet.works:
                if job.result is None:
                    job.result = _no_answer()

    def _job(self, job: Job, packet: Packet[Job], pending: list[_Document]) -> None:
        """Answer `job` at once (contacts, updates, deletes, existing records), or add its
        change set to `pending`."""
        try:
            if job.contact:
                self._flush(pending)  # its company may be in the pending batch
                job.result = self.apply_contact(self.contact(job.operation))
                return
            operation = self._resolve(job.operation, pending)
            self._prepare(job, packet, operation, pending)
        except Exception as exc:
            _job_failed(job, packet, exc)

    def _prepare(
        self, job: Job, packet: Packet[Job], operation: Operation, pending: list[_Document]
    ) -> None:
        """Answer `operation` at once, or add its change set to `pending` (sent when full)."""
        if operation.action not in ("create", "upsert"):
            job.result = self._direct(operation)
            return
        if operation.key and self._address_key(operation.entity, operation.key) is None:
            # No GUID or usable alternate key: look the record up by its key columns, after
            # sending any pending document with the same key (it may create the record).
            if any(_same_key(d.operation, operation) for d in pending):
                self._flush(pending)
            found = self._find(operation.entity, operation.key)
            if found is not None and packet.doubts.found([write_key(operation)]):
                # Our plain POST, in doubt, committed after all.
                self._created(operation.entity, found, operation_label(operation))
                job.result = OpResult(Outcome.APPLIED, ref=found)
                return
            if found is not None:
                job.result = self._existing(operation, found)
                return
        document = self._document(job, packet, operation)
        if not document.by_key:
            packet.doubts.check_unsent([write_key(operation)])
        if len(document.parts) > MAX_BATCH_OPERATIONS:
            raise RecordRefused(
                f"This {operation.entity} record needs {len(document.parts)} operations; one "
                f"Dataverse change set holds at most {MAX_BATCH_OPERATIONS}. Split the "
                "document in the mobile app."
            )
        pending.append(document)
        if sum(len(d.parts) for d in pending) >= self.batch_size:
            self._flush(pending)

    def _existing(self, operation: Operation, found: str) -> OpResult:
        """A record found by a look-up: a duplicate, or unchanged after updating the
        mapping's `update_fields` (an upsert)."""
        if operation.prevent_duplicate:
            raise RecordRefused(operation.duplicate_message or f"{operation.entity} exists.")
        if operation.action == "upsert":
            names = operation.update_fields
            fields = {
                k: v
                for k, v in operation.body.items()
                if (names is None or k in names)
                and k not in self.shape.nested
                and k not in operation.key
            }
            if fields:
                self.client.update(operation.entity, found, fields)
        return OpResult(Outcome.UNCHANGED, ref=found)

    # --- lookups ------------------------------------------------------------------------

    def _resolve(self, operation: Operation, pending: list[_Document]) -> Operation:
        def resolver(ref: LookupRef) -> str | None:
            entity, column = self.lookup_at(ref)
            found = self.lookup(entity, column, ref.value)
            if found is None and pending:
                self._flush(pending)
                found = self.lookup(entity, column, ref.value)
            return found

        return resolve_or_refuse(operation, resolver)

    def lookup(self, entity_set: str, column: str, value: Any) -> str | None:
        """The GUID of the `entity_set` record whose `column` is `value` (hits are cached)."""
        id_attr = self.shape.id_column(entity_set)

        def find() -> str | None:
            rows = self.client.query(
                entity_set,
                select=[id_attr],
                filter=f"{column} eq {format_value(str(value))}",
                maxpagesize=1,
            )
            first = next(iter(rows), None)
            return None if first is None else str(first[id_attr])

        return self._ids.get(entity_set, column, value, find)

    # --- documents ----------------------------------------------------------------------

    def _next_id(self) -> str:
        return str(next(self._content_ids))

    def _document(self, job: Job, packet: Packet[Job], operation: Operation) -> _Document:
        """The change set of a create/upsert: the record by its GUID or alternate key with
        `If-None-Match: *`, or (no usable key; looked up already) a plain POST."""
        entity = operation.entity
        key = self._address_key(entity, operation.key)
        parts: list[BatchOperation] = []
        body: dict[str, Any] = {}
        for name, value in operation.body.items():
            target = self.shape.nested.get(name)
            if target is not None and isinstance(value, dict):
                nested_id = self._next_id()
                parts.append(BatchOperation("POST", target, value, content_id=nested_id))
                body[f"{name}@odata.bind"] = f"${nested_id}"
            else:
                body[name] = value
        if isinstance(key, str):
            body.pop(self.shape.id_column(entity), None)  # addressed by it already
        head = self._next_id()
        if key is None:
            parts.append(BatchOperation("POST", entity, body, content_id=head))
        else:
            parts.append(
                BatchOperation(
                    "PATCH",
                    record_path(entity, key),
                    body,
                    headers={"If-None-Match": "*"},
                    content_id=head,
                )
            )
        document = _Document(job, packet, operation, parts, head, by_key=key is not None)
        for collection, rows in operation.children.items():
            child_set = self.shape.collections.get(collection)
            if child_set is None:
                raise RecordRefused(
                    f"The mapping's collection {collection} has no Dataverse table here "
                    f"(known: {', '.join(sorted(self.shape.collections))})."
                )
            row_set, parent_lookup = child_set.entity, child_set.parent
            for row in rows:
                row_id = self._next_id()
                row_body = {**row, f"{parent_lookup}@odata.bind": f"${head}"}
                parts.append(BatchOperation("POST", row_set, row_body, content_id=row_id))
                document.rows.append(row_id)
        if operation.action == "upsert":
            names = operation.update_fields
            fields = {
                k: v
                for k, v in operation.body.items()
                if (names is None or k in names)
                and k not in self.shape.nested
                and k not in operation.key
            }
            document.existing_update = fields
        return document

    def _flush(self, pending: list[_Document]) -> None:
        """Send the pending documents of packets still going, and settle each one's job;
        a failure stops the packets it hits only."""
        documents = [d for d in pending if d.packet.error is None]
        pending.clear()
        if not documents:
            return
        try:
            answers = self._send_journalled(documents)
        except Exception as exc:  # e.g. the journal unreachable: nothing of theirs is known
            for document in documents:
                document.packet.fail(exc)
            return
        updates: list[_Document] = []
        again: list[_Document] = []
        for document in documents:
            if document.packet.error is not None:
                continue
            if self._key_refused(document, answers):
                self._keyless.add(document.operation.entity)
                again.append(document)
                continue
            try:
                result = self._settle(document, answers)
            except DataverseError as error:  # transient: the packet is retried
                document.packet.fail(error)
                continue
            if result is None:
                updates.append(document)
            else:
                document.job.result = result
        if updates:
            self._update_existing(updates)
        if again:  # the org has no such key: look up, then create (crm.md A.7)
            redo: list[_Document] = []
            for document in again:
                try:
                    self._prepare(document.job, document.packet, document.operation, redo)
                except Exception as exc:
                    _job_failed(document.job, document.packet, exc)
            self._flush(redo)

    def _send_journalled(self, documents: list[_Document]) -> dict[str, BatchResponse]:
        """Send the documents in `$batch`es of whole change sets; each batch's plain POSTs
        are journalled first, in their own packet's journal. A definitive answer settles
        one; no answer, or a 5xx, leaves it in doubt and stops its packet (`WriteInDoubt`).
        A batch that fails as a whole stops the packets it carried."""
        answers: dict[str, BatchResponse] = {}
        chunks = _chunked(documents, lambda d: len(d.parts), self.batch_size)
        if not self.use_batch:  # the baseline: each document on its own
            chunks = [[d] for d in documents]
        for chunk in chunks:
            answers.update(self._send_chunk(chunk))
        return answers

    def _send_chunk(self, chunk: list[_Document]) -> dict[str, BatchResponse]:
        """One `$batch` of whole change sets (one request per operation without batching);
        see `_send_journalled`."""
        posts: dict[int, tuple[Packet[Job], dict[str, _Document]]] = {}
        for d in chunk:  # addressed by key (If-None-Match: *): safe to repeat, not journalled
            entry = posts.setdefault(id(d.packet), (d.packet, {}))
            if not d.by_key:
                entry[1][write_key(d.operation)] = d
        for packet, own in posts.values():
            packet.doubts.sending(
                [
                    (key, f"POST {d.operation.entity}", lookup_keys(d.operation))
                    for key, d in own.items()
                ]
            )
        groups = [d.parts for d in chunk]  # one request: a chunk is never split again
        try:
            answers = (
                self._batch(groups) if self.use_batch else send_one_by_one(self.client, groups)
            )
        except DataverseError as error:
            for packet, own in posts.values():
                if own and outcome_unknown(error, NOT_RUN):
                    packet.fail(packet.doubts.unknown(list(own), f"Dataverse: {error.message}"))
                else:
                    packet.doubts.settled(own)
                    packet.fail(error)
            return {}
        for packet, own in posts.values():
            unknown = [key for key, d in own.items() if _answer_unknown(d, answers)]
            packet.doubts.settled(key for key in own if key not in unknown)
            if unknown:
                reason = "Dataverse answered a create without its outcome"
                packet.fail(packet.doubts.unknown(unknown, reason))
        return answers

    def _key_refused(self, document: _Document, answers: dict[str, BatchResponse]) -> bool:
        """Whether the org refused the alternate key this document was addressed by."""
        head = answers.get(document.head)
        if head is None or head.ok or not document.by_key:
            return False
        if _guid_key(document.operation) is not None:
            return False
        error = head.error()
        return error is not None and error.status == 400 and KEY_NOT_VALID in error.message

    def _send(self, groups: list[list[BatchOperation]]) -> dict[str, BatchResponse]:
        """Answers by content id: one $batch, or one request per operation (baseline)."""
        if self.use_batch:
            answers: dict[str, BatchResponse] = {}
            for chunk in _chunked(groups, len, self.batch_size):
                answers.update(self._batch(chunk))
            return answers
        return send_one_by_one(self.client, groups)

    def _batch(self, groups: list[list[BatchOperation]]) -> dict[str, BatchResponse]:
        responses = self.client.batch_changesets(groups, continue_on_error=True)
        return {r.content_id: r for r in responses if r.content_id}

    def _settle(
        self, document: _Document, answers: dict[str, BatchResponse]
    ) -> OpResult | RecordRefused | None:
        """The result of a document's change set; None when the record exists and an
        upsert must update it."""
        operation = document.operation
        failed = next(
            (
                answers[p.content_id]
                for p in document.parts
                if p.content_id in answers and not answers[p.content_id].ok
            ),
            None,
        )
        if failed is None:
            head = answers.get(document.head)
            if head is None:
                return _no_answer()
            ref = head.entity_id
            refs: list[str | None] = [ref]
            refs += [answers[r].entity_id if r in answers else ref for r in document.rows]
            if len(refs) != len(operation.source):
                refs = [ref] * len(operation.source)
            self._created(operation.entity, ref, operation_label(operation))
            return OpResult(Outcome.APPLIED, ref=ref, refs=refs)
        error = failed.error()
        if isinstance(error, DuplicateRecord) and failed.content_id == document.head:
            if operation.prevent_duplicate:
                return RecordRefused(operation.duplicate_message or error.message)
            if document.existing_update:
                return None
            return OpResult(Outcome.UNCHANGED, ref=_guid_key(operation))
        if isinstance(error, DuplicateDetected | DuplicateRecord):
            return RecordRefused(operation.duplicate_message or error.message)
        if isinstance(error, LookupTargetNotFound | RecordNotFound):
            return RecordRefused(
                f"A record this {operation.entity} refers to does not exist: {error.message}"
            )
        assert error is not None
        if error.transient:
            raise error
        return OpResult(Outcome.FAILED, message=_explain(error))

    def _update_existing(self, documents: list[_Document]) -> None:
        """Existing records of upserts: change only the mapping's `update_fields`."""
        groups = []
        for document in documents:
            key = self._address_key(document.operation.entity, document.operation.key)
            assert key is not None
            groups.append(
                [
                    BatchOperation(
                        "PATCH",
                        record_path(document.operation.entity, key),
                        document.existing_update,
                        headers={"If-Match": "*"},
                        content_id=self._next_id(),
                    )
                ]
            )
        try:
            answers = self._send(groups)
        except DataverseError as error:
            for document in documents:
                document.packet.fail(error)
            return
        for document, group in zip(documents, groups, strict=True):
            answer = answers.get(group[0].content_id or "")
            if answer is None:
                document.job.result = _no_answer()
            elif answer.ok:
                document.job.result = OpResult(Outcome.UNCHANGED, ref=answer.entity_id)
            else:
                error = answer.error()
                assert error is not None
                document.job.result = OpResult(Outcome.FAILED, message=error.message)

    def _direct(self, operation: Operation) -> OpResult:
        """Updates and deletes: one request each."""
        entity, action = operation.entity, operation.action
        key = self._address_key(entity, operation.key)
        if action == "delete":
            if key is None:
                found = self._find(entity, operation.key)
                if found is None:
                    return OpResult(Outcome.UNCHANGED)
                key = found
            try:
                self.client.delete(entity, key)
            except RecordNotFound:
                return OpResult(Outcome.UNCHANGED)
            return OpResult(Outcome.APPLIED)
        if action == "update":
            if key is None:
                key = self._find(entity, operation.key)
                if key is None:
                    return OpResult(
                        Outcome.FAILED, message=f"No {entity} record has {operation.key}."
                    )
            ref = self.client.upsert(entity, key, operation.body, mode="update")
            return OpResult(Outcome.APPLIED, ref=ref)
        return OpResult(Outcome.FAILED, message=f"The {action} action is not supported here.")

    def _address_key(self, entity_set: str, key: dict[str, Any]) -> str | dict[str, Any] | None:
        """`_address_key`, unless the org turned out to lack the table's alternate key."""
        address = _address_key(entity_set, key, self.shape)
        if isinstance(address, dict) and entity_set in self._keyless:
            return None
        return address

    def _find(self, entity_set: str, key: dict[str, Any]) -> str | None:
        if not key:
            return None
        id_attr = self.shape.id_column(entity_set)
        clauses = " and ".join(f"{c} eq {format_value(_literal(v))}" for c, v in key.items())
        first = next(iter(self.client.query(entity_set, select=[id_attr], filter=clauses)), None)
        return None if first is None else str(first[id_attr])

    # --- contacts (the contact mapping, kept where `contact_columns` say) ------------------

    def apply_contact(self, contact: ContactData) -> OpResult:
        store = self.contact_columns
        entity = store.entity
        company_id = company = None
        if contact.company is not None:
            company = self.lookup_at(contact.company)
            company_id = self.lookup(*company, contact.company.value)
            if company_id is None:
                raise RecordRefused(lookup_message(contact.company))
        rowid = contact.rowid.lower() if contact.rowid and is_guid(contact.rowid) else None
        existing = self._find(entity, {store.number: contact.number})
        if existing is None and contact.email and store.email:
            existing = self._find(entity, {store.email: contact.email})
        columns = contact_columns(contact, store, company=company, company_id=company_id)
        key = f"{entity} {store.number}={contact.number}"
        if existing is not None and rowid is None and self.doubts.found([key]):
            self._created(entity, existing, contact.label)
            return OpResult(Outcome.APPLIED, ref=existing)  # our POST in doubt committed
        if existing is not None:
            if rowid is not None and existing.lower() == rowid:
                return OpResult(Outcome.UNCHANGED, ref=existing)  # the same row, again
            if contact.prevent_duplicate:
                raise RecordRefused(contact.duplicate_message)
            self.client.update(entity, existing, columns)
            return OpResult(Outcome.UNCHANGED, ref=existing)
        try:  # detection on: the contact rules want a duplicate reported (crm.md A.9)
            if rowid is not None:  # If-None-Match: * by the row's GUID: safe to repeat
                ref = (
                    self.client.upsert(
                        entity, rowid, columns, mode="create", detect_duplicates=True
                    )
                    or rowid
                )
            else:
                self.doubts.check_unsent([key])
                keys = {store.number: contact.number}
                if store.email:
                    keys[store.email] = contact.email or ""
                ref = self.send_create(
                    key,
                    f"POST {entity}",
                    keys,
                    lambda: self.client.create(entity, columns, detect_duplicates=True),
                )
        except DuplicateRecord:
            if rowid is not None:  # a record with this row's GUID: an earlier send of ours
                return OpResult(Outcome.UNCHANGED, ref=rowid)
            raise RecordRefused(contact.duplicate_message) from None
        except DuplicateDetected:
            raise RecordRefused(contact.duplicate_message) from None
        except LookupTargetNotFound:
            assert contact.company is not None
            raise RecordRefused(lookup_message(contact.company)) from None
        self._created(entity, ref, contact.label)
        return OpResult(Outcome.APPLIED, ref=ref, message=extra_addresses_note(contact, store))


def _address_key(
    entity_set: str, key: dict[str, Any], shape: EntityShape
) -> str | dict[str, Any] | None:
    """How to address the record of `key`: its GUID (key = the primary column), the key as
    one of the mapping's `alternate_keys`, or None (an ordinary column: found by a query)."""
    if not key:
        return None
    id_attr = shape.id_column(entity_set)
    if list(key) == [id_attr]:
        value = str(key[id_attr])
        return value.lower() if is_guid(value) else None
    if list(key) == shape.alternate_keys.get(entity_set):
        return {column: _literal(value) for column, value in key.items()}
    return None


def _same_key(a: Operation, b: Operation) -> bool:
    return a.entity == b.entity and bool(a.key) and a.key == b.key


def _guid_key(operation: Operation) -> str | None:
    values = [str(v) for v in operation.key.values()]
    return values[0].lower() if len(values) == 1 and is_guid(values[0]) else None


def _literal(value: Any) -> str | int | float | bool:
    return value if isinstance(value, str | int | float | bool) else str(value)


def _explain(error: DataverseError) -> str:
    """The error's message; for a column the org lacks, also where the list of columns to
    create is (crm.md A.5: an undeclared property is a permanent 400)."""
    if error.status == 400 and "propert" in error.message:
        return (
            f"{error.message} Check the org's columns against the dataverse prerequisites "
            "(packetworker/targets/dataverse/prerequisites.toml)."
        )
    return error.message


def _answer_unknown(document: _Document, answers: dict[str, BatchResponse]) -> bool:
    """Whether a change set's answers leave it unknown if it ran: none came, or its failure
    is one that may have run (a 5xx, not a refusal)."""
    got = [answers[p.content_id] for p in document.parts if p.content_id in answers]
    if not got:
        return True
    for answer in got:
        error = None if answer.ok else answer.error()
        if error is not None:
            return outcome_unknown(error, NOT_RUN)
    return False


def _chunked(items: list[T], size_of: Callable[[T], int], limit: int) -> list[list[T]]:
    """`items` in runs of at most `limit` operations (an item is never split; one larger
    than `limit` goes alone)."""
    chunks: list[list[T]] = []
    size = 0
    for item in items:
        if not chunks or (chunks[-1] and size + size_of(item) > limit):
            chunks.append([])
            size = 0
        chunks[-1].append(item)
        size += size_of(item)
    return chunks


def _job_failed(job: Job, packet: Packet[Job], exc: Exception) -> None:
    """A job's error: a refused record or a permanent error answers the job; anything else
    (a transient error, a write in doubt) stops its packet."""
    if isinstance(exc, RecordRefused):
        job.result = exc
    elif isinstance(exc, DataverseError) and not exc.transient:
        job.result = OpResult(Outcome.FAILED, message=_explain(exc))
    else:
        packet.fail(exc)


def _no_answer() -> OpResult:
    return OpResult(Outcome.FAILED, message="Dataverse gave no answer for this operation.")


def target_from_settings(settings: Settings) -> DataverseTarget:
    """The configured dataverse target; `NotConfigured` names the settings it lacks."""
    require("TARGET=dataverse", missing_dataverse(settings))
    options = crm_options(settings, settings.dataverse_mapping)
    return DataverseTarget(
        DataverseClient.from_settings(settings),
        in_doubt_seconds=settings.dataverse_in_doubt_seconds,
        **options,
    )
