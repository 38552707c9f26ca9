"""The crmaas target: mapped Field Sales records and seed-002 contacts into CRM as a Service.

The API has no batch and no alternate keys, so every operation is one call (plus paged
`page`/`size` reads to find what exists): a record is looked for by its mapping `key`
before it is created, which makes a re-run answer `unchanged`. Lookups by a custom field
(`customer_number` of an organization) read the organization list once and keep an index,
read again on a miss (the organization may have been created since).

Seed-002 contacts become `/directory/contacts`: name, labelled email, the organization
(`CompanyID_Contact` → organization by `customer_number`), the first address and phone,
and the seed's custom fields under `customFields` (with the contact's number and source
row, which tell "the same row again" from "a duplicate"). The CRM's own refusals (invalid
or missing email, duplicate email, unknown organization) map to the seed's four errors.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from packetworker.targets.base import Outcome, TargetError
from packetworker.targets.crm_common import (
    ContactData,
    CrmTarget,
    OpResult,
    RecordRefused,
    crm_options,
    lookup_message,
    operation_label,
    resolve_or_refuse,
)
from packetworker.targets.crmaas.client import CrmaasClient, Resource
from packetworker.targets.crmaas.errors import (
    CrmaasValidationError,
    DuplicateContact,
    InvalidEmail,
    MissingEmail,
    OrganizationNotFound,
)
from packetworker.targets.mapping import LookupRef, Operation
from packetworker.targets.required import missing_crmaas, require

if TYPE_CHECKING:
    from packetworker.settings import Settings

logger = logging.getLogger(__name__)

CUSTOM_FIELDS = "customFields"
NUMBER_FIELD = "customer_number"  # the custom field holding a customer's / contact's number
ROWID_FIELD = "dms_rowid"  # the custom field holding the mobile row a contact came from
ENTITY_ALIASES = {"company": ("organizations", NUMBER_FIELD)}
CUSTOM_NAMES = {
    "Customer Type": "customer_type",
    "Record Type": "record_type",
    "Role": "role",
    "Active": "active",
}


class CrmaasTarget(CrmTarget):
    """`CrmaasTarget(client, mapping=..., contact_mapping=..., record_errors=...)`."""

    name = "crmaas"
    entity_aliases = ENTITY_ALIASES
    client: CrmaasClient

    def __init__(self, client: CrmaasClient, **options: Any) -> None:
        super().__init__(client, **options)
        self._index: dict[tuple[str, str, str], str] = {}  # (entity, field, value) -> id

    # --- operations ---------------------------------------------------------------------

    def refusal(self, error: TargetError) -> str | None:
        """The CRM's own email refusal, in the mapping's words (the same either way)."""
        if not isinstance(error, InvalidEmail | MissingEmail):
            return None
        word = "Missing Email" if isinstance(error, MissingEmail) else "Invalid Email"
        sentence = next((s for s in self._check_sentences if s.startswith(word)), None)
        return sentence or error.message

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
        created = resource.create(body)
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

    # --- seed-002 contacts --------------------------------------------------------------

    def apply_contact(self, contact: ContactData) -> OpResult:
        organization = None
        if contact.company is not None:
            organization = self.lookup(*ENTITY_ALIASES["company"], contact.company.value)
            if organization is None:
                raise RecordRefused(lookup_message(contact.company))
        existing = None
        if contact.email:
            existing = next(iter(self.client.contacts.list(email=contact.email)), None)
        if existing is None:
            existing = self._find_number(contact.number)
        body = _contact_body(contact, organization)
        if existing is not None:
            same_row = (existing.get(CUSTOM_FIELDS) or {}).get(ROWID_FIELD) == contact.rowid
            if same_row and contact.rowid:
                return OpResult(Outcome.UNCHANGED, ref=str(existing["id"]))
            if contact.prevent_duplicate:
                raise RecordRefused(contact.duplicate_message)
            self.client.contacts.update(str(existing["id"]), body)
            return OpResult(Outcome.UNCHANGED, ref=str(existing["id"]))
        try:
            created = self.client.contacts.create(body)
        except DuplicateContact:
            raise RecordRefused(contact.duplicate_message) from None
        except OrganizationNotFound:
            assert contact.company is not None
            raise RecordRefused(lookup_message(contact.company)) from None
        ref = str(created["id"])
        self._created("contacts", ref, f"{contact.full_name} <{contact.email}>")
        return OpResult(Outcome.APPLIED, ref=ref)

    def _find_number(self, number: str) -> dict[str, Any] | None:
        for record in self.client.contacts.list():
            if str((record.get(CUSTOM_FIELDS) or {}).get(NUMBER_FIELD)) == number:
                return record
        return None


def _contact_body(contact: ContactData, organization: str | None) -> dict[str, Any]:
    custom: dict[str, Any] = {NUMBER_FIELD: contact.number, ROWID_FIELD: contact.rowid}
    for name, value in contact.custom.items():
        custom[CUSTOM_NAMES.get(name, name)] = value
    if contact.company_name:
        custom["company_name"] = contact.company_name
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
    return CrmaasTarget(CrmaasClient.from_settings(settings), **options)
