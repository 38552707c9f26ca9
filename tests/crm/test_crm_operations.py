"""What the CRM targets share (`targets.crm`): a contact read from the contact mapping's
operation, and the names a create is journalled and looked up by."""

from __future__ import annotations

from packetworker.targets.crm.contacts import contact_data
from packetworker.targets.crm.operations import lookup_keys, write_key
from packetworker.targets.mapping import ContactFields, Operation

FIELDS = ContactFields(
    number="CustomerNumber",
    first_name="FirstName",
    last_name="LastName",
    email="EmailAddress",
    addresses="Addresses",
    address_once="PreventDuplicate",
)


def test_an_address_flagged_once_is_kept_once_and_the_flag_is_not_stored() -> None:
    home = {"City": "Sofia", "Street": "Saborna 14"}
    operation = Operation(
        "customers",
        "upsert",
        {"CustomerNumber": "CT-1"},
        {"FirstName": "Elena", "LastName": "Georgieva", "EmailAddress": "e@example.com"},
        children={
            "Addresses": [
                {**home, "PreventDuplicate": True},
                {**home, "PreventDuplicate": True},
                {"City": "Plovdiv", "Street": "Maritsa 1", "PreventDuplicate": False},
                {"City": "Plovdiv", "Street": "Maritsa 1", "PreventDuplicate": False},
            ]
        },
        source=[("Contact", "row-1")],
    )

    contact = contact_data(operation, FIELDS)

    assert contact.addresses == [home, *[{"City": "Plovdiv", "Street": "Maritsa 1"}] * 2]
    assert (contact.number, contact.full_name, contact.rowid) == (
        "CT-1",
        "Elena Georgieva",
        "row-1",
    )


def test_a_create_is_journalled_by_its_key_else_by_its_first_source_row() -> None:
    keyed = Operation(
        "accounts", "create", {"accountnumber": "C-1"}, {}, source=[("Customer", "r1")]
    )
    keyless = Operation("tasks", "create", {}, {}, source=[("Task", "r2"), ("Note", "r3")])

    assert write_key(keyed) == "accounts accountnumber=C-1"
    assert write_key(keyless, "activities") == "activities row=Task/r2"
    assert lookup_keys(keyed) == {"accountnumber": "C-1"}
