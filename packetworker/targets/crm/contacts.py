"""The contact mapping's contacts: a `ContactData` read from one operation by the contact
mapping's `[contact_fields]`, stored where the CRM mapping's `[contact_columns]` say."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from packetworker.targets.mapping import (
    ContactColumns,
    ContactFields,
    LookupRef,
    Mapping,
    MappingError,
    Operation,
)


@dataclass(slots=True)
class ContactData:
    """A contact, read from the contact mapping's operation by its `[contact_fields]`.

    `values` holds every field it produced (custom fields included, by name); a CRM stores
    those its `[contact_columns]` names. `company` is the lookup naming its company.
    """

    number: str
    first_name: str | None
    last_name: str | None
    email: str | None
    values: dict[str, Any]
    addresses: list[dict[str, Any]]
    company: LookupRef | None
    rowid: str | None
    prevent_duplicate: bool
    duplicate_message: str

    @property
    def full_name(self) -> str:
        return " ".join(p for p in (self.first_name, self.last_name) if p)

    @property
    def label(self) -> str:
        """How `describe` names the contact."""
        return f"{self.full_name} <{self.email}>"


def contact_data(operation: Operation, fields: ContactFields) -> ContactData:
    """Read the contact mapping's operation. Addresses flagged `address_once` are kept
    once each (the same address twice would otherwise be written twice)."""
    body = dict(operation.body)
    custom = dict(body.pop(fields.custom, None) or {}) if fields.custom else {}
    if fields.company:
        custom.pop(fields.company, None)
    number = next(iter(operation.key.values()), body.get(fields.number))
    values = {**body, **custom}
    addresses: list[dict[str, Any]] = []
    rows = operation.children.get(fields.addresses, []) if fields.addresses else []
    for row in rows:
        once = bool(fields.address_once and row.get(fields.address_once))
        address = {k: v for k, v in row.items() if k != fields.address_once}
        if once and address in addresses:
            continue
        addresses.append(address)
    refs = operation.lookups.values() if fields.company else ()
    company = next((ref for ref in refs if ref.field == fields.company), None)
    rowid = next((rowid for _, rowid in operation.source[:1]), None)
    return ContactData(
        number=str(number),
        first_name=body.get(fields.first_name),
        last_name=body.get(fields.last_name),
        email=body.get(fields.email) or None,
        values=values,
        addresses=addresses,
        company=company,
        rowid=rowid,
        prevent_duplicate=operation.prevent_duplicate,
        duplicate_message=operation.duplicate_message
        or f"A contact with number {number} already exists.",
    )


def contact_settings(
    mapping: Mapping, contact_mapping: Mapping
) -> tuple[ContactFields, ContactColumns]:
    """The contact mapping's `[contact_fields]` and the CRM mapping's `[contact_columns]`;
    `MappingError` names the file that lacks its part."""
    if contact_mapping.contact_fields is None:
        raise MappingError(
            "a contact mapping needs [contact_fields] (which fields are the contact's number, "
            "names and email)",
            source=contact_mapping.source or contact_mapping.name,
            path="contact_fields",
        )
    if mapping.contact_columns is None:
        raise MappingError(
            "a CRM mapping used with a contact mapping needs [contact_columns] (where this CRM "
            "keeps a contact)",
            source=mapping.source or mapping.name,
            path="contact_columns",
        )
    return contact_mapping.contact_fields, mapping.contact_columns
