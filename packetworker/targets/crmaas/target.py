"""The crmaas target: mapped Field Sales records and contacts into CRM as a Service.

The API has no batch and no alternate keys, so every operation is one call (plus paged
`page`/`size` reads to find what exists): a record is looked for by its mapping `key`
before it is created, which makes a re-run answer `unchanged`. Lookups by a custom field
(`customer_number` of an organization) read the organization list once and keep an index,
read again on a miss (the organization may have been created since).

Contacts of the contact mapping become `/directory/contacts`: name, labelled email, the
organization (its company lookup, kept where the mapping's `lookup_entities` say), the first
address and phone, and the fields `[contact_columns]` names under `customFields` (with the
contact's number and source row, which tell "the same row again" from "a duplicate").

The API reference documents no error bodies, so nothing here depends on a status or code for a
duplicate, an invalid email or a missing organization. The contact rules' errors come from what
is documented: the mapping's checks (missing, invalid email), and looking records up
before creating (the organization, a contact with the same email or number). Should the
CRM still refuse a create (a 4xx: "failed given the information provided"), the records
are looked up again to name the cause — the organization gone, the contact there after
all — else the CRM's own message is reported. Either way it is a record error.

Writes in doubt (`targets.crm`): every create (organization, case, opportunity, contact) is
journalled before it is sent and, when its answer is lost, looked up again by its key — the
mapping `key` through the list filters, a contact by email and number — before any re-send,
which waits `in_doubt_seconds` (`CRMAAS_IN_DOUBT_SECONDS`). A create whose mapping has no
`key` has no look-up: one in doubt is re-sent once that window has passed. Contact persons
of a new organization are created right after it and are not journalled: a later run finds
the organization and sends none, so one whose answer was lost is never sent twice.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from packetworker.targets.base import Outcome, TargetError
from packetworker.targets.crm.contacts import ContactData
from packetworker.targets.crm.operations import (
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
from packetworker.targets.crmaas.client import CrmaasClient, Resource
from packetworker.targets.crmaas.errors import (
    CrmaasConflict,
    CrmaasError,
    CrmaasNotFound,
    CrmaasValidationError,
)
from packetworker.targets.mapping import ContactColumns, LookupRef, Operation
from packetworker.targets.required import missing_crmaas, require

if TYPE_CHECKING:
    from packetworker.settings import Settings

logger = logging.getLogger(__name__)

CUSTOM_FIELDS = "customFields"


class CrmaasTarget(CrmTarget):
    """`CrmaasTarget(client, mapping=..., contact_mapping=..., record_errors=...)`."""

    name = "crmaas"
    service = "CRM as a Service"
    client: CrmaasClient

    def __init__(self, client: CrmaasClient, **options: Any) -> None:
        super().__init__(client, **options)
        self._index: dict[tuple[str, str, str], str] = {}  # (entity, field, value) -> id

    # --- operations ---------------------------------------------------------------------

    def refusal(self, error: TargetError) -> str | None:
        """A 4xx refusal of a record's data (the API reference: "failed given the information
        provided") is a record error; a 404 may be a wrong URL, so it is not."""
        if isinstance(error, CrmaasValidationError | CrmaasConflict):
            return f"CRM as a Service refused the record (HTTP {error.status}): {error.message}"
        return None

    def apply_mapped(self, operation: Operation) -> OpResult:
        operation = resolve_or_refuse(operation, self._resolver)
        resource = self._resource(operation.entity)
        existing = self._find(resource, operation.key)
        action = operation.action
        if action == "delete":
            if existing is None:
                return OpResult(Outcome.UNCHANGED)
            resource.delete(existing["id"])
            return OpResult(Outcome.APPLIED, ref=existing["id"])
        body = {k: v for k, v in operation.body.items() if v is not None}
        key = write_key(operation)
        if existing is not None and self.doubts.found([key]):
            # Our create, in doubt, committed after all: applied, with its contact persons.
            ref = str(existing["id"])
            self._created(operation.entity, ref, operation_label(operation))
            return OpResult(Outcome.APPLIED, ref=ref, message=self._children(operation, ref))
        if existing is not None:
            if operation.prevent_duplicate:
                raise RecordRefused(operation.duplicate_message or "The record already exists.")
            if action == "create":
                return OpResult(Outcome.UNCHANGED, ref=existing["id"])
            names = operation.update_fields
            changes = {k: v for k, v in body.items() if names is None or k in names}
            if changes:
                resource.update(existing["id"], changes)
            outcome = Outcome.APPLIED if action == "update" else Outcome.UNCHANGED
            return OpResult(outcome, ref=existing["id"])
        if action == "update":
            return OpResult(Outcome.FAILED, message=f"No {operation.entity} has {operation.key}.")
        self.doubts.check_unsent([key])
        created = self.send_create(
            key, f"POST {resource.path}", lookup_keys(operation), lambda: resource.create(body)
        )
        ref = str(created["id"])
        self._created(operation.entity, ref, operation_label(operation))
        self._remember(operation.entity, created)
        notes = self._children(operation, ref)
        return OpResult(Outcome.APPLIED, ref=ref, message=notes)

    def _children(self, operation: Operation, parent_id: str) -> str | None:
        """Contacts of a new organization (the customer's contact person). A contact the
        CRM refuses does not undo the organization: the outcome's message reports it."""
        notes = []
        for collection, rows in operation.children.items():
            if operation.entity != "organizations" or collection != "contacts":
                notes.append(f"collection {collection} is not sent to CRM as a Service")
                continue
            for row in rows:
                try:
                    created = self.client.contacts.create({**row, "organizationId": parent_id})
                except CrmaasValidationError as error:
                    logger.warning("contact person of %s not created: %s", parent_id, error)
                    notes.append(f"contact {row.get('name')!r} not created: {error.message}")
                    continue
                self._created("contacts", str(created["id"]), str(row.get("name")))
        return "; ".join(notes) or None

    # --- finding records ----------------------------------------------------------------

    def _resource(self, entity: str) -> Resource:
        resource = getattr(self.client, entity, None)
        if not isinstance(resource, Resource):
            raise RecordRefused(f"CRM as a Service has no {entity} collection.")
        return resource

    def _find(self, resource: Resource, key: dict[str, Any]) -> dict[str, Any] | None:
        """The record whose key fields equal `key` (the list filters match loosely, so the
        answer is compared exactly)."""
        if not key:
            return None
        filters = {k: v for k, v in key.items() if isinstance(v, str | int | float | bool)}
        for record in resource.list(**filters):
            if all(_value(record, k) == v for k, v in key.items()):
                return record
        return None

    def _resolver(self, ref: LookupRef) -> str | None:
        return self.lookup(*self.lookup_at(ref), ref.value)

    def lookup(self, entity: str, field: str, value: Any) -> str | None:
        """The id of the `entity` record whose `field` (or custom field) is `value`."""
        key = (entity, field, str(value))
        if key not in self._index:
            for record in self._resource(entity).list():
                self._remember(entity, record)
        return self._index.get(key)

    def _remember(self, entity: str, record: dict[str, Any]) -> None:
        fields = {**(record.get(CUSTOM_FIELDS) or {}), **record}
        for name, value in fields.items():
            if isinstance(value, str | int) and not isinstance(value, bool):
                self._index.setdefault((entity, name, str(value)), str(record["id"]))

    # --- contacts (the contact mapping, kept where `contact_columns` say) ------------------

    def apply_contact(self, contact: ContactData) -> OpResult:
        store = self.contact_columns
        contacts = self._resource(store.entity)
        organization = None
        if contact.company is not None:
            organization = self.lookup(*self.lookup_at(contact.company), contact.company.value)
            if organization is None:
                raise RecordRefused(lookup_message(contact.company))
        existing = self._existing_contact(contact)  # the contact rules: check before creating
        body = _contact_body(contact, store, organization)
        key = f"{store.entity} {store.number}={contact.number}"
        if existing is not None and self.doubts.found([key]):
            ref = str(existing["id"])  # our create, in doubt, committed after all
            self._created(store.entity, ref, contact.label)
            return OpResult(Outcome.APPLIED, ref=ref)
        if existing is not None:
            if self._same_row(existing, contact):
                return OpResult(Outcome.UNCHANGED, ref=str(existing["id"]))
            if contact.prevent_duplicate:
                raise RecordRefused(contact.duplicate_message)
            contacts.update(str(existing["id"]), body)
            return OpResult(Outcome.UNCHANGED, ref=str(existing["id"]))
        self.doubts.check_unsent([key])
        keys = {"email": contact.email or "", store.number: contact.number}
        try:
            created = self.send_create(
                key, f"POST {contacts.path}", keys, lambda: contacts.create(body)
            )
        except CrmaasError as error:
            if error.transient or not isinstance(
                error, CrmaasValidationError | CrmaasConflict | CrmaasNotFound
            ):
                raise
            return self._refused_create(contact, organization, error)
        ref = str(created["id"])
        self._created(store.entity, ref, contact.label)
        return OpResult(Outcome.APPLIED, ref=ref)

    def _refused_create(
        self, contact: ContactData, organization: str | None, error: CrmaasError
    ) -> OpResult:
        """Name why the CRM refused a contact by looking again (not by its status)."""
        if organization is not None and contact.company is not None:
            entity, _ = self.lookup_at(contact.company)
            if not self._exists(self._resource(entity), organization):
                raise RecordRefused(lookup_message(contact.company))
        existing = self._existing_contact(contact)
        if existing is not None:
            if self._same_row(existing, contact):
                return OpResult(Outcome.UNCHANGED, ref=str(existing["id"]))
            raise RecordRefused(contact.duplicate_message)
        raise RecordRefused(
            f"CRM as a Service refused the contact (HTTP {error.status}): {error.message}"
        )

    def _exists(self, resource: Resource, record_id: str) -> bool:
        try:
            resource.get(record_id)
        except CrmaasNotFound:
            return False
        return True

    def _same_row(self, record: dict[str, Any], contact: ContactData) -> bool:
        """Whether `record` was created from the same mobile row (not a duplicate)."""
        rowid = self.contact_columns.rowid
        return bool(rowid and contact.rowid and _value(record, rowid) == contact.rowid)

    def _existing_contact(self, contact: ContactData) -> dict[str, Any] | None:
        """A contact with the same email (the list filter) or number (a custom field)."""
        contacts = self._resource(self.contact_columns.entity)
        if contact.email:
            wanted = contact.email.casefold()
            for record in contacts.list(email=contact.email):
                emails = {str(e.get("value")).casefold() for e in record.get("email") or []}
                if wanted in emails:
                    return record
        number = self.contact_columns.number
        for record in contacts.list():
            if str(_value(record, number)) == contact.number:
                return record
        return None


def _contact_body(
    contact: ContactData, store: ContactColumns, organization: str | None
) -> dict[str, Any]:
    """A directory contact: name, labelled email and phones, the first address as one line,
    and the fields `store.columns` names as custom fields (with the number and source row)."""
    custom: dict[str, Any] = {store.number: contact.number}
    if store.rowid:
        custom[store.rowid] = contact.rowid
    for name, value in contact.values.items():
        if name in store.columns:
            custom[store.columns[name]] = value
    body: dict[str, Any] = {
        "name": contact.full_name,
        "email": [{"label": "Work", "value": contact.email, "primary": True}]
        if contact.email
        else [],
        CUSTOM_FIELDS: {k: v for k, v in custom.items() if v is not None},
    }
    if organization is not None:
        body["organizationId"] = organization
    phones = [a["PhoneNumber"] for a in contact.addresses if a.get("PhoneNumber")]
    if phones:
        body["phone"] = [
            {"label": "Work", "value": p, "primary": i == 0} for i, p in enumerate(phones)
        ]
    if contact.addresses:
        first = contact.addresses[0]
        parts = [first.get(n) for n in ("Address1", "Address2", "City", "PostalCode", "Region")]
        parts.append(first.get("Country"))
        body["address"] = ", ".join(str(p) for p in parts if p)
    return body


def _value(record: dict[str, Any], name: str) -> Any:
    if name in record:
        return record[name]
    return (record.get(CUSTOM_FIELDS) or {}).get(name)


def target_from_settings(settings: Settings) -> CrmaasTarget:
    """The configured crmaas target; `NotConfigured` names the settings it lacks."""
    require("TARGET=crmaas", missing_crmaas(settings))
    options = crm_options(settings, settings.crmaas_mapping)
    return CrmaasTarget(
        CrmaasClient.from_settings(settings),
        in_doubt_seconds=settings.crmaas_in_doubt_seconds,
        **options,
    )
