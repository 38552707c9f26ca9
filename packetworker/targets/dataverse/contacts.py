"""A contact of the contact mapping as a Dataverse `contact` row (pure; shared with the
portal proxy).

Which column takes which field is data: `[contact_columns]` of the Dataverse mapping
(`dataverse-field-sales`): standard columns for the names, the email and up to
`address_slots` addresses, custom columns (publisher prefix `new_` in the shipped file) for
the number and the other fields, which the org must have before syncing
(`prerequisites.toml`).
"""

from __future__ import annotations

from typing import Any

from packetworker.targets.crm.contacts import ContactData
from packetworker.targets.mapping import ContactColumns


def contact_columns(
    contact: ContactData,
    columns: ContactColumns,
    *,
    company: tuple[str, str] | None = None,
    company_id: str | None = None,
) -> dict[str, Any]:
    """The contact's Dataverse columns; `company_id` is the resolved company's GUID in the
    entity set `company[0]` (where the mapping's company lookup looks)."""
    body: dict[str, Any] = {columns.number: contact.number}
    if columns.email:
        body[columns.email] = contact.email
    for name, value in contact.values.items():
        column = columns.columns.get(name)
        if column is not None:
            body[column] = value
    for slot, address in enumerate(contact.addresses[: columns.address_slots], start=1):
        for name, value in address.items():
            suffix = columns.address_columns.get(name)
            if suffix is not None and value not in (None, ""):
                body[columns.address_column.format(slot=slot, column=suffix)] = value
    if company_id is not None and company is not None and columns.company_bind:
        body[columns.company_bind] = f"/{company[0]}({company_id})"
    return {k: v for k, v in body.items() if v is not None}


def extra_addresses_note(contact: ContactData, columns: ContactColumns) -> str | None:
    """A sentence for addresses beyond those a contact can hold (reported, not lost)."""
    slots = columns.address_slots
    extra = len(contact.addresses) - slots
    if extra <= 0:
        return None
    return f"{extra} address(es) beyond the {slots} a Dataverse contact holds were not written."
