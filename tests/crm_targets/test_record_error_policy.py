"""`crm_record_errors`: each of the contact rules' four errors quarantines the packet by default,
or is skipped and reported while the rest of the packet applies. Never dropped silently."""

from __future__ import annotations

import pytest

from packetworker.packets.model import Record, Status, Table
from packetworker.targets.base import Outcome
from tests.crm_targets.harness import CONTACTS, Harness, read_packet
from tests.crm_targets.test_contact_rules import (
    COMPANY_NOT_FOUND,
    DUPLICATE,
    INVALID_EMAIL,
    LINKED_ROW,
    MISSING_EMAIL,
)

ERRORS = {
    "2-duplicate-contact.xml": DUPLICATE,
    "3-missing-email.xml": MISSING_EMAIL,
    "5-invalid-email.xml": INVALID_EMAIL,
    "6-company-not-found.xml": COMPANY_NOT_FOUND,
}


def packet_with_a_good_contact(harness: Harness, sample: str) -> list:
    """The error sample's contact followed by a valid, company-linked one."""
    if sample == "2-duplicate-contact.xml":
        harness.apply_file(CONTACTS / "1-valid-contact.xml")
    _, bad = read_packet(CONTACTS / sample)
    _, good = read_packet(CONTACTS / "4-linked-company.xml")
    return bad + good


@pytest.mark.parametrize("sample", ERRORS)
def test_by_default_a_record_error_fails_the_record_so_the_packet_is_quarantined(
    crm: Harness, sample: str
) -> None:
    outcomes = crm.apply(packet_with_a_good_contact(crm, sample))

    assert [(o.outcome, o.message) for o in outcomes[:1]] == [(Outcome.FAILED, ERRORS[sample])]


@pytest.mark.parametrize("sample", ERRORS)
def test_with_skip_a_record_error_is_reported_and_the_rest_applies(
    crm_skipping: Harness, sample: str
) -> None:
    outcomes = crm_skipping.apply(packet_with_a_good_contact(crm_skipping, sample))

    assert [(o.outcome, o.message) for o in outcomes[:1]] == [(Outcome.SKIPPED, ERRORS[sample])]
    assert (outcomes[1].dms_rowid, outcomes[1].outcome) == (LINKED_ROW, Outcome.APPLIED)
    assert "CT-000104" in [c.number for c in crm_skipping.contacts()]


def test_a_skipped_record_is_logged_with_its_message(crm_skipping: Harness, caplog) -> None:
    crm_skipping.apply(packet_with_a_good_contact(crm_skipping, "6-company-not-found.xml"))

    refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert refused == [
        "packet packet-1: Contact/40516273-8d9e-4fa0-b1c2-d3e4f5061728 refused (skipped): "
        + COMPANY_NOT_FOUND
    ]


def test_a_mapping_error_quoting_a_rule_in_its_data_is_not_taken_for_a_rule_failure(
    crm_skipping: Harness,
) -> None:
    # The orphan's join key echoes in its message; it happens to read like a rule's sentence.
    # Only a failed check row is a record error the skip policy may skip; this one fails.
    orphan = Record(
        Table("ContactAddress"),
        Status.UPSERT,
        {"DMS_ROWID": "orphan-1", "ContactNo": MISSING_EMAIL, "Address": "Main St 1"},
    )

    [outcome] = crm_skipping.apply([orphan])

    assert outcome.outcome is Outcome.FAILED
    assert MISSING_EMAIL in (outcome.message or "")
