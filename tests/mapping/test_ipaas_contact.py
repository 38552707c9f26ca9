"""The shipped `ipaas-contact` mapping: seeds/002, row for row, with its four error cases."""

from __future__ import annotations

import json

import pytest

from packetworker.packets.model import Record
from packetworker.targets.mapping import (
    LookupNotFound,
    LookupRef,
    MappedItem,
    Operation,
    load_mapping,
    resolve_lookups,
)

from .conftest import rec, run

ACTIVE = json.dumps([{"Name": "Active_Web_User", "Value": "true"}])
COMPANY_NOT_FOUND = (
    "Company Not Found: Company ID not found in iPaaS.com. The CompanyID_Contact references "
    "a company that does not exist in iPaaS.com. Resolution: Ensure the company exists in "
    "iPaaS.com before syncing contacts with company relationships."
)


def contact(**overrides: str) -> Record:
    fields = {
        "DMS_ROWID": "k1",
        "No": "44552",
        "Type": "Person",
        "RecordType": "Contact",
        "CustomerType": "Retail",
        "WebUserRole_Contact": "Buyer",
        "AdditionalProperties": ACTIVE,
        "CompanyID_Contact": "C-7",
        "FirstName_Contact": "Ada",
        "LastName_Contact": "Lovelace",
        "EMail": " ada@example.com ",
        "CompanyName_Contact": "Analytical Engines",
    }
    fields.update(overrides)
    return rec("Contact", **{k: v for k, v in fields.items() if v != "<absent>"})


def address(rowid: str, **fields: str) -> Record:
    return rec("ContactAddress", DMS_ROWID=rowid, ContactNo="44552", **fields)


def ipaas(records: list[Record]) -> list[MappedItem]:
    return run("ipaas-contact", records)


def test_a_valid_contact_maps_every_row_of_the_seed() -> None:
    items = ipaas(
        [
            contact(),
            address(
                "a1",
                Address="12 St James's Square",
                Address2="Floor 2",
                City="London",
                County="Greater London",
                CountryRegionCode="GB",
                PostCode="SW1Y 4JH",
                PhoneNo="+44 20 0000",
            ),
        ]
    )
    assert items == [
        MappedItem(
            Operation(
                entity="customers",
                action="upsert",
                key={"CustomerNumber": "44552"},
                body={
                    "CustomFields": {
                        "Customer Type": "Retail",
                        "Record Type": "Contact",
                        "Role": "Buyer",
                        "Active": "true",
                    },
                    "CustomerNumber": "44552",
                    "FirstName": "Ada",
                    "LastName": "Lovelace",
                    "Company": "Analytical Engines",
                    "EmailAddress": "ada@example.com",
                },
                children={
                    "Addresses": [
                        {
                            "Address1": "12 St James's Square",
                            "Address2": "Floor 2",
                            "City": "London",
                            "Region": "Greater London",
                            "Country": "GB",
                            "PostalCode": "SW1Y 4JH",
                            "PhoneNumber": "+44 20 0000",
                            "PreventDuplicate": True,
                        }
                    ]
                },
                lookups={
                    "iPaaS.com Company ID": LookupRef(
                        path=("body", "CustomFields", "iPaaS.com Company ID"),
                        entity="company",
                        match="external_id",
                        value="C-7",
                        message=COMPANY_NOT_FOUND,
                    )
                },
                source=[("Contact", "k1"), ("ContactAddress", "a1")],
                prevent_duplicate=True,
                duplicate_message=(
                    "Duplicate Contact: Contact already exists in iPaaS.com. A contact with the "
                    "same identifier already exists. Resolution: Check for existing records "
                    "before creating new contacts."
                ),
            ),
            "mapped",
            "Contact",
            "k1",
        )
    ]


@pytest.mark.parametrize(("field", "value"), [("Type", "Company"), ("RecordType", "Customer")])
def test_the_seed_filter_keeps_only_person_contacts(field: str, value: str) -> None:
    items = ipaas([contact(**{field: value}), address("a1", City="London")])
    assert [(i.outcome, i.table, i.dms_rowid) for i in items] == [
        ("filtered", "Contact", "k1"),
        ("filtered", "ContactAddress", "a1"),
    ]


def test_parent_only_addresses_are_filtered_out_of_the_collection() -> None:
    items = ipaas(
        [
            contact(),
            address("a1", City="London", SourceTypeName="ParentOnly"),
            address("a2", City="Paris", SourceTypeName="Ship-to"),
        ]
    )
    assert [(i.outcome, i.table, i.dms_rowid) for i in items] == [
        ("mapped", "Contact", "k1"),
        ("filtered", "ContactAddress", "a1"),
    ]
    assert items[0].operation is not None
    assert items[0].operation.children == {
        "Addresses": [{"City": "Paris", "PreventDuplicate": True}]
    }


MISSING_EMAIL = (
    "Missing Email: Email field is empty. The email field is required for contact creation. "
    "Resolution: Ensure email is present in Microsoft Dynamics 365 before syncing. "
    "(Contact row k1; mapping ipaas-contact, tables.Contact.checks[0])"
)
INVALID_EMAIL = (
    "Invalid Email: Email format is incorrect. The email field format is invalid. "
    "Resolution: Ensure the email field is valid and follows the format user@example.com. "
    "(Contact row k1; mapping ipaas-contact, tables.Contact.checks[1])"
)


@pytest.mark.parametrize(
    ("email", "message"),
    [("<absent>", MISSING_EMAIL), ("   ", MISSING_EMAIL), ("ada.example.com", INVALID_EMAIL)],
    ids=["absent", "blank", "malformed"],
)
def test_an_unusable_email_is_the_seeds_error_with_its_resolution(email: str, message: str) -> None:
    [item] = ipaas([contact(EMail=email)])
    assert (item.outcome, item.operation, item.message) == ("error", None, message)


def test_a_contact_without_company_declares_no_lookup() -> None:
    [item] = ipaas([contact(CompanyID_Contact="<absent>")])
    assert item.operation is not None
    assert item.operation.lookups == {}


def test_the_company_lookup_resolves_into_the_custom_field() -> None:
    [item] = ipaas([contact()])
    assert item.operation is not None
    resolved = resolve_lookups(item.operation, lambda ref: {"C-7": "900"}.get(ref.value))
    assert resolved.body["CustomFields"] == {
        "Customer Type": "Retail",
        "Record Type": "Contact",
        "Role": "Buyer",
        "Active": "true",
        "iPaaS.com Company ID": "900",
    }


def test_an_unknown_company_reports_the_seeds_company_not_found_error() -> None:
    [item] = ipaas([contact()])
    assert item.operation is not None
    with pytest.raises(LookupNotFound) as caught:
        resolve_lookups(item.operation, lambda ref: None)
    assert caught.value.message == COMPANY_NOT_FOUND


def test_a_contact_without_first_name_is_a_required_field_error() -> None:
    [item] = ipaas([contact(FirstName_Contact="<absent>")])
    assert item.message == (
        "Contact row k1: required field FirstName has no value (from FirstName_Contact) "
        "(mapping ipaas-contact, tables.Contact.required)."
    )


def test_the_filter_keeps_the_seeds_text_with_single_quoted_literals() -> None:
    when = load_mapping("ipaas-contact").tables["Contact"].when
    assert when is not None
    assert when.text == "Type == 'Person' && RecordType == 'Contact'"
