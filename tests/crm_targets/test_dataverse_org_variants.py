"""The dataverse target on orgs as they really come: with or without the account-number
alternate key, with or without the contact columns, duplicate detection off unless asked
for, and documents larger than one `$batch` may carry (docs/crm.md A.5, A.7, A.9, A.11)."""

from __future__ import annotations

import dataclasses
import uuid

from packetworker.packets.model import Record, Status, Table
from packetworker.targets.base import Outcome, RecordOutcome
from tests.crm_targets.harness import CONTACTS, SAMPLES, harness_for, read_packet
from tests.crm_targets.test_contact_rules import DUPLICATE, LINKED_ROW

NEW_CUSTOMER = "NEW-PV07-0003"


def accounts_numbered(crm, number: str) -> list[dict]:
    return [a for a in crm.emulator.records("accounts") if a.get("accountnumber") == number]


def test_without_the_account_number_key_a_customer_is_looked_up_then_created_once() -> None:
    with harness_for("dataverse", org={}) as crm:
        first = crm.apply_file(SAMPLES / "new-customer.xml")
        again = crm.apply_file(SAMPLES / "new-customer.xml")

        [account] = accounts_numbered(crm, NEW_CUSTOMER)
        assert [(o.outcome, o.target_ref) for o in first + again] == [
            (Outcome.APPLIED, account["accountid"]),
            (Outcome.UNCHANGED, account["accountid"]),
        ]
        assert account["_primarycontactid_value"]  # created with its primary contact
        assert len(crm.emulator.requests_to("POST", "$batch")) == 2  # key refused, then POST


def test_the_org_lacking_the_key_is_remembered_so_the_key_is_tried_once() -> None:
    with harness_for("dataverse", org={}) as crm:
        crm.apply_file(SAMPLES / "new-customer.xml")
        header, [customer] = read_packet(SAMPLES / "new-customer.xml")
        other = Record(customer.table, Status.INSERT, {**customer.fields, "No": "NEW-2"})

        [outcome] = crm.apply([other], header=header)

        assert outcome.outcome is Outcome.APPLIED
        assert len(crm.emulator.requests_to("POST", "$batch")) == 3  # one more, no retry


def test_with_an_active_key_a_customer_is_written_by_its_key_without_a_lookup() -> None:
    with harness_for("dataverse", org={"account_number_key": "Active"}) as crm:
        [outcome] = crm.apply_file(SAMPLES / "new-customer.xml")

        assert outcome.outcome is Outcome.APPLIED
        assert len(accounts_numbered(crm, NEW_CUSTOMER)) == 1
        assert crm.emulator.requests_to("GET", "/accounts") == []
        assert len(crm.emulator.requests_to("POST", "$batch")) == 1


def test_a_key_still_being_indexed_is_not_relied_on() -> None:
    with harness_for("dataverse", org={"account_number_key": "Pending"}) as crm:
        crm.apply_file(SAMPLES / "new-customer.xml")
        [outcome] = crm.apply_file(SAMPLES / "new-customer.xml")

        assert outcome.outcome is Outcome.UNCHANGED
        assert len(accounts_numbered(crm, NEW_CUSTOMER)) == 1


def test_the_same_new_customer_twice_in_one_packet_creates_one_account() -> None:
    with harness_for("dataverse", org={}) as crm:
        header, [customer] = read_packet(SAMPLES / "new-customer.xml")
        twice = Record(customer.table, Status.UPDATE, {**customer.fields, "PhoneNo": "+359 1"})

        outcomes = crm.apply([customer, twice], header=header)

        [account] = accounts_numbered(crm, NEW_CUSTOMER)
        assert [o.outcome for o in outcomes] == [Outcome.APPLIED, Outcome.UNCHANGED]
        assert account["telephone1"] == "+359 1"


def test_a_contact_create_asks_dataverse_to_run_its_duplicate_rules() -> None:
    with harness_for("dataverse") as crm:
        contacts = crm.emulator.entities["contacts"]
        # A rule the look-ups by number and email cannot see: same last name.
        crm.emulator.entities["contacts"] = dataclasses.replace(
            contacts, duplicate_rule=("lastname",)
        )
        crm.emulator.seed("contacts", lastname="Иванова", emailaddress1="other@example.com")

        outcomes = crm.apply_file(CONTACTS / "4-linked-company.xml")

        assert outcomes == [RecordOutcome("Contact", LINKED_ROW, Outcome.FAILED, message=DUPLICATE)]
        assert len(crm.emulator.records("contacts")) == 1


def test_an_org_without_the_contact_columns_quarantines_with_the_column_named() -> None:
    with harness_for("dataverse", org={"custom_columns": {}}) as crm:
        [outcome] = crm.apply_file(CONTACTS / "4-linked-company.xml")

        assert outcome.outcome is Outcome.FAILED
        assert "'new_customernumber'" in (outcome.message or "")
        assert "prerequisites" in (outcome.message or "")
        assert crm.emulator.records("contacts") == []


def order(number: str, lines: int) -> list[Record]:
    def rec(table: str, **fields: str) -> Record:
        return Record(Table(table), Status.INSERT, fields)

    header = rec(
        "SalesHeader",
        DMS_ROWID=str(uuid.uuid4()),
        no=number,
        documentType="0",
        customerNo="PV-01042",
    )
    return [header] + [
        rec(
            "SalesLine",
            DMS_ROWID=str(uuid.uuid4()),
            documentNo=number,
            lineNo=str(n),
            no="W-1001",
            quantity="1",
            unitOfMeasure="БР",
            unitPrice="1",
        )
        for n in range(lines)
    ]


def test_documents_beyond_a_thousand_operations_travel_in_several_batches() -> None:
    with harness_for("dataverse") as crm:
        records = [r for n in range(520) for r in order(f"SO-{n}", 1)]  # 1,040 operations

        outcomes = crm.apply(records)

        assert {o.outcome for o in outcomes} == {Outcome.APPLIED}
        assert len(crm.emulator.records("salesorders")) == 520
        assert len(crm.emulator.records("salesorderdetails")) == 520
        assert len(crm.emulator.requests_to("POST", "$batch")) == 2


def test_a_document_larger_than_one_batch_is_refused_with_a_reason() -> None:
    with harness_for("dataverse") as crm:
        outcomes = crm.apply(order("SO-HUGE", 1000) + order("SO-SMALL", 1))

        assert {o.outcome for o in outcomes[:1001]} == {Outcome.FAILED}
        assert outcomes[0].message == (
            "This salesorders record needs 1001 operations; one Dataverse change set holds at "
            "most 1000. Split the document in the mobile app."
        )
        assert [o.outcome for o in outcomes[1001:]] == [Outcome.APPLIED] * 2
        assert [o["name"] for o in crm.emulator.records("salesorders")] == ["SO-SMALL"]
