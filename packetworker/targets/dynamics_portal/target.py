"""The dynamics-portal target: the Dataverse mapping sent through the portal proxy.

The proxy has five endpoints — authenticate, create, update, get, delete — and no query, so
the target keeps a `RecordIndex` of what it knows is in Dynamics: every record it created
(by each of its columns and by its source row) and whatever a deployment seeds it with.
Lookups (an order's account, a line's product, a contact's company) and the checks before
a create (key, contact number and email) read the index; an indexed id is confirmed with a
GET before it is trusted. The index is written through to the durable reference map the
pipeline passes (`ApplyContext.refs`, kept in the Redis ledger) the moment a record is
created, so another worker process, or this one after a restart or a crash mid-packet,
finds it. The proxy's contract documents no error bodies, so a duplicate rule in Dynamics is only a
backstop (a 409 or Dataverse's duplicate codes passed through); the index decides.

Writes in doubt (`targets.crm`): every create is journalled before it is sent. The proxy has
no key look-up: the index learns a record's id only from the create's answer, so a create
whose answer was lost cannot be found. It is re-sent once `in_doubt_seconds`
(`DYNAMICS_PORTAL_IN_DOUBT_SECONDS`) have passed since it was sent, never sooner; only a
duplicate rule in Dynamics then keeps a create that committed late from existing twice. A
contact's re-send that such a rule refuses is that earlier create: applied, its id unknown.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping as MappingABC
from typing import TYPE_CHECKING, Any

from packetworker.targets.base import Outcome, TargetRefs
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
from packetworker.targets.dataverse.contacts import contact_columns, extra_addresses_note
from packetworker.targets.dataverse.shape import entity_shape
from packetworker.targets.dynamics_portal.client import DynamicsPortalClient
from packetworker.targets.dynamics_portal.errors import DuplicateRecord, RecordNotFound
from packetworker.targets.mapping import LookupRef, Operation
from packetworker.targets.required import missing_dynamics_portal, require
from packetworker.targets.skeleton import Packet

if TYPE_CHECKING:
    from packetworker.settings import Settings

API_PATH = "/api/data/v9.2/"
ID_UNKNOWN = (
    "Created by an earlier attempt whose answer was lost (Dynamics refused the re-send as a "
    "duplicate); the proxy cannot be queried, so its id is unknown."
)


def endpoint(entity_set: str) -> str:
    """The Dynamics Web API endpoint the proxy writes to."""
    return f"{API_PATH}{entity_set}"


class RecordIndex:
    """Record ids by (entity set, column, value) and by source row.

    Kept in memory and, once `share()`d, in the durable reference map the pipeline passes
    (`ApplyContext.refs`, in the ledger): what one worker process created is found by every
    other one and after a restart. Entries read from the shared map are cached here.
    """

    def __init__(self, shared: TargetRefs | None = None) -> None:
        self._known: dict[str, str] = {}
        self._shared = shared
        self._lock = threading.Lock()

    def share(self, refs: TargetRefs) -> None:
        """Read and write through `refs` from now on."""
        self._shared = refs

    def remember(
        self,
        entity_set: str,
        record_id: str,
        columns: MappingABC[str, Any],
        *,
        row: tuple[str, str | None] | None = None,
    ) -> None:
        entries = {
            _value_key(entity_set, column, value): record_id
            for column, value in columns.items()
            if isinstance(value, str | int) and not isinstance(value, bool)
        }
        if row is not None and row[1]:
            entries[_row_key(row[0], row[1])] = record_id
        with self._lock:
            self._known.update(entries)
        if self._shared is not None and entries:
            self._shared.put(entries)

    def find(self, entity_set: str, column: str, value: Any) -> str | None:
        return self._get(_value_key(entity_set, column, value))

    def row(self, table: str, rowid: str | None) -> str | None:
        return self._get(_row_key(table, rowid)) if rowid else None

    def forget(self, record_id: str) -> None:
        """Drop every entry naming `record_id` (it no longer exists in Dynamics)."""
        with self._lock:
            gone = [k for k, v in self._known.items() if v == record_id]
            for key in gone:
                del self._known[key]
        if self._shared is not None and gone:
            self._shared.put(dict.fromkeys(gone, ""))

    def _get(self, key: str) -> str | None:
        with self._lock:
            found = self._known.get(key)
        if found is None and self._shared is not None:
            found = self._shared.get([key]).get(key)
            if found:
                with self._lock:
                    self._known[key] = found
        return found or None


def _value_key(entity_set: str, column: str, value: Any) -> str:
    return f"value|{entity_set}|{column}|{str(value).casefold()}"


def _row_key(table: str, rowid: str) -> str:
    return f"row|{table}|{rowid}"


class DynamicsPortalTarget(CrmTarget):
    """`DynamicsPortalTarget(client, mapping=..., contact_mapping=..., index=...)`."""

    name = "dynamics-portal"
    service = "the Dynamics portal proxy"
    client: DynamicsPortalClient

    def __init__(
        self, client: DynamicsPortalClient, *, index: RecordIndex | None = None, **options: Any
    ) -> None:
        super().__init__(client, **options)
        self.shape = entity_shape(self.mapping)  # nested records and collections
        self.index = index or RecordIndex()

    def map(self, packet: Packet[Job]) -> None:
        if packet.ctx.refs is not None:  # the pipeline's durable map: survive restarts
            self.index.share(packet.ctx.refs)
        super().map(packet)

    # --- operations ---------------------------------------------------------------------

    def apply_mapped(self, operation: Operation) -> OpResult:
        operation = resolve_or_refuse(operation, self._resolver)
        entity = operation.entity
        existing = self._existing(entity, operation.key)
        key = write_key(operation)
        if existing is not None and self.doubts.found([key]):
            # Our create, in doubt, committed after all (the index knew it from its answer).
            return OpResult(Outcome.APPLIED, ref=existing, refs=self._children(operation, existing))
        if operation.action == "delete":
            if existing is None:
                return OpResult(Outcome.UNCHANGED)
            self.client.delete_record(existing, endpoint(entity))
            self.index.forget(existing)
            return OpResult(Outcome.APPLIED, ref=existing)
        if existing is not None:
            if operation.prevent_duplicate:
                raise RecordRefused(operation.duplicate_message or "The record already exists.")
            names = operation.update_fields
            if operation.action != "create":
                changes = {
                    k: v
                    for k, v in operation.body.items()
                    if (names is None or k in names) and k not in self.shape.nested
                }
                if changes:
                    self.client.update_record(existing, endpoint(entity), changes)
            refs = self._children(operation, existing)  # lines a crash left unsent
            outcome = Outcome.APPLIED if operation.action == "update" else Outcome.UNCHANGED
            return OpResult(outcome, ref=existing, refs=refs)
        if operation.action == "update":
            return OpResult(Outcome.FAILED, message=f"No {entity} record has {operation.key}.")
        body: dict[str, Any] = {}
        for name, value in operation.body.items():
            nested = self.shape.nested.get(name)
            if nested is not None and isinstance(value, dict):
                nested_id = self._create(nested, value, operation, key=f"{key} {name}")
                body[f"{name}@odata.bind"] = f"/{nested}({nested_id})"
            else:
                body[name] = value
        ref = self._create(entity, body, operation, key=key, row=operation.source[0])
        self._created(entity, ref, operation_label(operation))
        return OpResult(Outcome.APPLIED, ref=ref, refs=self._children(operation, ref))

    def _create(
        self,
        entity: str,
        body: dict[str, Any],
        operation: Operation,
        *,
        key: str,
        row: tuple[str, str | None] | None = None,
    ) -> str:
        """Create one record, journalled under `key` (sent only once its window is over if
        an earlier send of it is in doubt), and index it."""
        self.doubts.check_unsent([key])
        try:
            answer = self.send_create(
                key,
                f"POST {endpoint(entity)}",
                lookup_keys(operation),
                lambda: self.client.create_record(endpoint(entity), body),
            )
        except DuplicateRecord as error:
            raise RecordRefused(operation.duplicate_message or error.message) from None
        record_id = str(answer["dynamics_record_id"])
        self.index.remember(entity, record_id, body, row=row)
        return record_id

    def _children(self, operation: Operation, parent_id: str) -> list[str | None] | None:
        """Create the child rows not created yet; their ids, parent first (or None when
        rows and source records do not pair up)."""
        refs: list[str | None] = [parent_id]
        sources = operation.source[1:]
        rows = [row for collection in operation.children.values() for row in collection]
        paired = len(rows) == len(sources)
        position = 0
        for collection, collection_rows in operation.children.items():
            child_set = self.shape.collections.get(collection)
            if child_set is None:
                raise RecordRefused(
                    f"The mapping's collection {collection} has no Dynamics table here."
                )
            row_set, parent_lookup = child_set.entity, child_set.parent
            for row in collection_rows:
                source = sources[position] if paired else None
                position += 1
                done = self.index.row(*source) if source else None
                if done is not None:
                    refs.append(done)
                    continue
                body = {**row, f"{parent_lookup}@odata.bind": f"/{operation.entity}({parent_id})"}
                row_key = f"{write_key(operation)} {collection}#{position}"
                refs.append(self._create(row_set, body, operation, key=row_key, row=source))
        return refs if paired else None

    # --- the index ----------------------------------------------------------------------

    def _resolver(self, ref: LookupRef) -> str | None:
        return self._confirmed(self.index.find(*self.lookup_at(ref), ref.value))

    def _existing(self, entity: str, key: dict[str, Any]) -> str | None:
        for column, value in key.items():
            found = self._confirmed(self.index.find(entity, column, value))
            if found is not None:
                return found
        return None

    def _confirmed(self, record_id: str | None) -> str | None:
        """`record_id` if Dynamics still has it (a record deleted there is forgotten)."""
        if record_id is None:
            return None
        try:
            self.client.get_record(record_id)
        except RecordNotFound:
            self.index.forget(record_id)
            return None
        return record_id

    # --- contacts (the contact mapping, kept where `contact_columns` say) ------------------

    def apply_contact(self, contact: ContactData) -> OpResult:
        store = self.contact_columns
        entity = store.entity
        company_id = company = None
        if contact.company is not None:
            company = self.lookup_at(contact.company)
            company_id = self._confirmed(self.index.find(*company, contact.company.value))
            if company_id is None:
                raise RecordRefused(lookup_message(contact.company))
        existing = self._existing(entity, {store.number: contact.number})
        if existing is None and contact.email and store.email:
            existing = self._existing(entity, {store.email: contact.email})
        columns = contact_columns(contact, store, company=company, company_id=company_id)
        if existing is not None:
            if self.index.row("Contact", contact.rowid) == existing:
                return OpResult(Outcome.UNCHANGED, ref=existing)
            if contact.prevent_duplicate:
                raise RecordRefused(contact.duplicate_message)
            self.client.update_record(existing, endpoint(entity), columns)
            return OpResult(Outcome.UNCHANGED, ref=existing)
        key = f"{entity} {store.number}={contact.number}"
        was_in_doubt = key in self.doubts
        self.doubts.check_unsent([key])
        keys = {store.number: contact.number}
        if store.email:
            keys[store.email] = contact.email or ""
        try:
            answer = self.send_create(
                key,
                f"POST {endpoint(entity)}",
                keys,
                lambda: self.client.create_record(endpoint(entity), columns),
            )
        except DuplicateRecord:
            if was_in_doubt:  # the earlier create whose answer was lost, refused by the rule
                self._created(entity, None, contact.label)
                return OpResult(Outcome.APPLIED, message=ID_UNKNOWN)
            raise RecordRefused(contact.duplicate_message) from None
        ref = str(answer["dynamics_record_id"])
        self.index.remember(entity, ref, columns, row=("Contact", contact.rowid))
        self._created(entity, ref, contact.label)
        return OpResult(Outcome.APPLIED, ref=ref, message=extra_addresses_note(contact, store))


def target_from_settings(settings: Settings) -> DynamicsPortalTarget:
    """The configured dynamics-portal target; `NotConfigured` names the settings it lacks."""
    require("TARGET=dynamics-portal", missing_dynamics_portal(settings))
    options = crm_options(settings, settings.dynamics_portal_mapping)
    return DynamicsPortalTarget(
        DynamicsPortalClient.from_settings(settings),
        in_doubt_seconds=settings.dynamics_portal_in_doubt_seconds,
        **options,
    )
