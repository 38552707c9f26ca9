"""CRM as a Service answers the contact rules in ways its API reference does not document, so the
target must not depend on them: each variant of the emulator (`plain` 400s, invented
`coded` statuses, `lenient` acceptance) gives the same contact-rule outcomes, because the
target decides from its checks and look-ups, and names a refusal by looking again."""

from __future__ import annotations

import pytest

from packetworker.targets.base import Outcome, RecordOutcome
from tests.crm_targets.harness import CONTACTS, harness_for
from tests.crm_targets.test_contact_rules import (
    COMPANY_NOT_FOUND,
    DUPLICATE,
    DUPLICATE_ROW,
    INVALID_EMAIL,
    INVALID_ROW,
    LINKED_ROW,
    MISSING_EMAIL,
    MISSING_ROW,
    NOT_FOUND_ROW,
)

VARIANTS = ("plain", "coded", "lenient")
REFUSING = ("plain", "coded")


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_contact_rules_give_the_same_outcomes_whatever_the_crm_answers(variant) -> None:
    with harness_for("crmaas", emulator_options={"contact_errors": variant}) as crm:
        crm.apply_file(CONTACTS / "1-valid-contact.xml")
        outcomes = [
            crm.apply_file(CONTACTS / name)[0]
            for name in (
                "2-duplicate-contact.xml",
                "3-missing-email.xml",
                "4-linked-company.xml",
                "5-invalid-email.xml",
                "6-company-not-found.xml",
            )
        ]

        assert [(o.dms_rowid, o.outcome) for o in outcomes] == [
            (DUPLICATE_ROW, Outcome.FAILED),
            (MISSING_ROW, Outcome.FAILED),
            (LINKED_ROW, Outcome.APPLIED),
            (INVALID_ROW, Outcome.FAILED),
            (NOT_FOUND_ROW, Outcome.FAILED),
        ]
        assert [o.message for o in outcomes if o.outcome is Outcome.FAILED] == [
            DUPLICATE,
            MISSING_EMAIL,
            INVALID_EMAIL,
            COMPANY_NOT_FOUND,
        ]
        assert sorted(c.number for c in crm.contacts()) == ["CT-000101", "CT-000104"]


@pytest.mark.parametrize("variant", REFUSING)
def test_a_duplicate_created_after_the_look_up_is_named_by_looking_again(variant) -> None:
    with harness_for("crmaas", emulator_options={"contact_errors": variant}) as crm:
        crm.seed_contact(number="CT-999999", email="maria.ivanova@example.com")
        target = crm.target
        look_up = target._existing_contact
        calls = []

        def created_meanwhile(contact):  # the first look-up runs before another worker's create
            calls.append(contact.number)
            return None if len(calls) == 1 else look_up(contact)

        target._existing_contact = created_meanwhile

        outcomes = crm.apply_file(CONTACTS / "4-linked-company.xml")

        assert outcomes == [RecordOutcome("Contact", LINKED_ROW, Outcome.FAILED, message=DUPLICATE)]
        assert len(calls) == 2  # looked up again after the CRM refused
        assert [c.number for c in crm.contacts()] == ["CT-999999"]


@pytest.mark.parametrize("variant", REFUSING)
def test_an_organization_deleted_after_the_look_up_is_company_not_found(variant) -> None:
    with harness_for("crmaas", emulator_options={"contact_errors": variant}) as crm:
        crm.apply_file(CONTACTS / "1-valid-contact.xml")
        assert crm.target.lookup("organizations", "customer_number", "PV-01042")  # cached
        del crm.emulator.tables["organizations"][crm.company_id()]

        outcomes = crm.apply_file(CONTACTS / "4-linked-company.xml")

        assert outcomes == [
            RecordOutcome("Contact", LINKED_ROW, Outcome.FAILED, message=COMPANY_NOT_FOUND)
        ]
