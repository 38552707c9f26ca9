"""The seed-002 contact as a Dataverse `contact` row (pure; shared with the portal proxy).

The contact mapping (`ipaas-contact`) produces an iPaaS.com Customer; Dataverse stores it as
a contact. Standard columns take what they can (name, email, up to three addresses, the
company as `parentcustomerid`); the seed's custom fields need custom columns, created with
the `new_` publisher prefix (seed 002 asks for the custom fields to exist before syncing):
`new_customernumber` (the contact's No, checked before insert), `new_customertype`,
`new_recordtype`, `new_role`, `new_active`, `new_companyname`.
"""

from __future__ import annotations

from typing import Any

from packetworker.targets.crm_common import ContactData

NUMBER_COLUMN = "new_customernumber"
EMAIL_COLUMN = "emailaddress1"
COMPANY_BIND = "parentcustomerid_account@odata.bind"
COMPANY_ENTITY = ("accounts", "accountnumber")  # where CompanyID_Contact is looked up
CUSTOM_COLUMNS = {
    "Customer Type": "new_customertype",
    "Record Type": "new_recordtype",
    "Role": "new_role",
    "Active": "new_active",
}
ADDRESS_COLUMNS = {
    "Address1": "line1",
    "Address2": "line2",
    "City": "city",
    "Region": "stateorprovince",
    "Country": "country",
    "PostalCode": "postalcode",
    "PhoneNumber": "telephone1",
}
ADDRESS_SLOTS = 3  # a Dataverse contact has address1_*, address2_* and address3_*


def contact_columns(contact: ContactData, *, company_id: str | None) -> dict[str, Any]:
    """The contact's Dataverse columns; `company_id` is the resolved account's GUID."""
    body: dict[str, Any] = {
        NUMBER_COLUMN: contact.number,
        "firstname": contact.first_name,
        "lastname": contact.last_name,
        EMAIL_COLUMN: contact.email,
        "new_companyname": contact.company_name,
    }
    for name, value in contact.custom.items():
        column = CUSTOM_COLUMNS.get(name)
        if column is not None:
            body[column] = value
    for slot, address in enumerate(contact.addresses[:ADDRESS_SLOTS], start=1):
        for name, value in address.items():
            suffix = ADDRESS_COLUMNS.get(name)
            if suffix is not None and value not in (None, ""):
                body[f"address{slot}_{suffix}"] = value
    if company_id is not None:
        body[COMPANY_BIND] = f"/{COMPANY_ENTITY[0]}({company_id})"
    return {k: v for k, v in body.items() if v is not None}


def extra_addresses_note(contact: ContactData) -> str | None:
    """A sentence for addresses beyond the three a contact can hold (reported, not lost)."""
    extra = len(contact.addresses) - ADDRESS_SLOTS
    if extra <= 0:
        return None
    return (
        f"{extra} address(es) beyond the {ADDRESS_SLOTS} a Dataverse contact holds "
        "were not written."
    )
