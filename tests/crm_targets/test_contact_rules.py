"""The contact rules on every CRM: a valid contact, a duplicate, a missing email, a contact
linked to its company, an invalid email and an unknown company.

Each scenario is a sample packet in `samples/contacts/`; outcomes are compared exactly,
and what the CRM holds afterwards is read back from its emulator.
"""

from __future__ import annotations

import pytest

from packetworker.packets import validate_packet
from packetworker.targets.base import Outcome, RecordOutcome
from tests.crm_targets.harness import CONTACTS, Harness

VALID_ROW = "6f1c2a8e-3d41-4b6e-9a55-1e2f7c0b9d11"
DUPLICATE_ROW = "9c0d1e2f-3a4b-4c5d-8e6f-708192a3b4c5"
MISSING_ROW = "1d2e3f40-5a6b-4c7d-8e9f-a0b1c2d3e4f5"
LINKED_ROW = "2e3f4051-6b7c-4d8e-9fa0-b1c2d3e4f506"
INVALID_ROW = "3f405162-7c8d-4e9f-a0b1-c2d3e4f50617"
NOT_FOUND_ROW = "40516273-8d9e-4fa0-b1c2-d3e4f5061728"

DUPLICATE = (
    "Duplicate Contact: Contact already exists in iPaaS.com. A contact with the same "
    "identifier already exists. Resolution: Check for existing records before creating new "
    "contacts."
)
MISSING_EMAIL = (
    "Missing Email: Email field is empty. The email field is required for contact creation. "
    "Resolution: Ensure email is present in Microsoft Dynamics 365 before syncing. "
    f"(Contact row {MISSING_ROW}; mapping ipaas-contact, tables.Contact.checks[0])"
)
INVALID_EMAIL = (
    "Invalid Email: Email format is incorrect. The email field format is invalid. "
    "Resolution: Ensure the email field is valid and follows the format user@example.com. "
    f"(Contact row {INVALID_ROW}; mapping ipaas-contact, tables.Contact.checks[1])"
)
COMPANY_NOT_FOUND = (
    "Company Not Found: Company ID not found in iPaaS.com. The CompanyID_Contact references "
    "a company that does not exist in iPaaS.com. Resolution: Ensure the company exists in "
    "iPaaS.com before syncing contacts with company relationships."
)
FILTERED = "Filtered out by the mapping's `when` rule; nothing to apply."


def kinds(outcomes: list[RecordOutcome]) -> list[tuple[str, str | None, Outcome]]:
    return [(o.table, o.dms_rowid, o.outcome) for o in outcomes]


def test_a_valid_contact_is_created_with_its_address(crm: Harness) -> None:
    outcomes = crm.apply_file(CONTACTS / "1-valid-contact.xml")

    assert kinds(outcomes) == [
        ("Contact", VALID_ROW, Outcome.APPLIED),
        ("Contact", "0b8e4f7a-92c6-4d0e-8f31-5a6b7c8d9e01", Outcome.SKIPPED),
        ("ContactAddress", "a3d5e7f9-1b2c-4d4e-8f60-718293a4b5c6", Outcome.APPLIED),
        ("ContactAddress", "b4e6f8a0-2c3d-4e5f-9071-8293a4b5c6d7", Outcome.SKIPPED),
    ]
    [contact] = crm.contacts()
    assert (contact.number, contact.name, contact.email, contact.company_id) == (
        "CT-000101",
        "Елена Георгиева",
        "elena.georgieva@example.com",
        None,
    )
    assert outcomes[0].target_ref == contact.id
    assert "ул. Съборна 14" in contact.address
    assert "бул. Марица 1" not in contact.address  # the ParentOnly address is filtered


def test_the_company_type_contact_is_filtered_out_with_a_reason(crm: Harness) -> None:
    outcomes = crm.apply_file(CONTACTS / "1-valid-contact.xml")

    assert outcomes[1].message == FILTERED


def test_a_duplicate_contact_is_refused_with_the_duplicate_contact_message(crm: Harness) -> None:
    crm.apply_file(CONTACTS / "1-valid-contact.xml")

    outcomes = crm.apply_file(CONTACTS / "2-duplicate-contact.xml")

    assert outcomes == [RecordOutcome("Contact", DUPLICATE_ROW, Outcome.FAILED, message=DUPLICATE)]
    assert [c.number for c in crm.contacts()] == ["CT-000101"]


def test_a_contact_already_in_the_crm_from_elsewhere_is_a_duplicate(crm: Harness) -> None:
    crm.seed_contact(number="CT-000104", email="someone.else@example.com")

    outcomes = crm.apply_file(CONTACTS / "4-linked-company.xml")

    assert outcomes == [RecordOutcome("Contact", LINKED_ROW, Outcome.FAILED, message=DUPLICATE)]


def test_the_same_email_under_another_number_is_a_duplicate(crm: Harness) -> None:
    crm.seed_contact(number="CT-999999", email="maria.ivanova@example.com")

    outcomes = crm.apply_file(CONTACTS / "4-linked-company.xml")

    assert outcomes == [RecordOutcome("Contact", LINKED_ROW, Outcome.FAILED, message=DUPLICATE)]


def test_a_contact_without_email_fails_with_the_missing_email_message(crm: Harness) -> None:
    outcomes = crm.apply_file(CONTACTS / "3-missing-email.xml")

    assert outcomes == [
        RecordOutcome("Contact", MISSING_ROW, Outcome.FAILED, message=MISSING_EMAIL)
    ]
    assert crm.contacts() == []


def test_a_contact_is_linked_to_its_company(crm: Harness) -> None:
    outcomes = crm.apply_file(CONTACTS / "4-linked-company.xml")

    assert kinds(outcomes) == [("Contact", LINKED_ROW, Outcome.APPLIED)]
    [contact] = crm.contacts()
    assert (contact.number, contact.email, contact.company_id) == (
        "CT-000104",
        "maria.ivanova@example.com",
        crm.company_id(),
    )


def test_the_json_form_of_a_contact_packet_applies_alike(crm: Harness) -> None:
    outcomes = crm.apply_file(CONTACTS / "4-linked-company.json")

    assert kinds(outcomes) == [("Contact", LINKED_ROW, Outcome.APPLIED)]
    [contact] = crm.contacts()
    assert contact.company_id == crm.company_id()


def test_an_invalid_email_fails_with_the_invalid_email_message(crm: Harness) -> None:
    outcomes = crm.apply_file(CONTACTS / "5-invalid-email.xml")

    assert outcomes == [
        RecordOutcome("Contact", INVALID_ROW, Outcome.FAILED, message=INVALID_EMAIL)
    ]
    assert crm.contacts() == []


def test_an_unknown_company_fails_with_the_company_not_found_message(crm: Harness) -> None:
    outcomes = crm.apply_file(CONTACTS / "6-company-not-found.xml")

    assert outcomes == [
        RecordOutcome("Contact", NOT_FOUND_ROW, Outcome.FAILED, message=COMPANY_NOT_FOUND)
    ]
    assert crm.contacts() == []


def test_the_same_contact_row_again_is_unchanged_not_a_duplicate(crm: Harness) -> None:
    first = crm.apply_file(CONTACTS / "4-linked-company.xml")

    again = crm.apply_file(CONTACTS / "4-linked-company.json")

    assert kinds(again) == [("Contact", LINKED_ROW, Outcome.UNCHANGED)]
    assert again[0].target_ref == first[0].target_ref
    assert len(crm.contacts()) == 1


@pytest.mark.parametrize(
    "path", sorted([*CONTACTS.glob("*.xml"), *CONTACTS.glob("*.json")]), ids=lambda p: p.name
)
def test_every_contact_sample_is_a_valid_packet(path) -> None:
    assert validate_packet(path) == []
