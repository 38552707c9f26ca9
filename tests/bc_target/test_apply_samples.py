"""Every inbound sample and vendor packet applies to the BC emulator with the expected
documents, checked by reading the emulator back."""

from __future__ import annotations

import re

import pytest

from packetworker.targets import Outcome
from packetworker.targets.skeleton import IGNORED

from .conftest import (
    SAMPLES,
    apply_file,
    apply_records,
    credit_memos,
    orders,
    payments,
    rec,
    vendor_packet,
)

FORMATS = ["xml", "json"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_sales_order_becomes_one_order_with_exactly_its_lines(bc, target, fmt):
    outcomes = apply_file(target, SAMPLES / f"sales-order.{fmt}")

    assert orders(bc) == {
        "BSO-000241": [("W-1001", 24, "БР"), ("J-2040", 6, "БР"), ("C-3007", 10, "ПК")]
    }
    [order] = bc.store(None, "salesOrders")
    assert (order["customerNumber"], order["orderDate"]) == ("PV-01042", "2026-03-11")
    assert [(o.table, o.outcome) for o in outcomes] == [
        ("CustomerActivity", Outcome.SKIPPED),
        ("SalesHeader", Outcome.APPLIED),
        ("SalesLine", Outcome.APPLIED),
        ("SalesLine", Outcome.APPLIED),
        ("SalesLine", Outcome.APPLIED),
        ("SalesLineInventory", Outcome.SKIPPED),
        ("SalesLineInventory", Outcome.SKIPPED),
        ("SalesLineInventory", Outcome.SKIPPED),
    ]


def test_applied_records_point_at_their_bc_entities(bc, target):
    outcomes = apply_file(target, SAMPLES / "sales-order.xml")

    [order] = bc.store(None, "salesOrders")
    lines = sorted(bc.store(None, "salesOrderLines"), key=lambda line: line["sequence"])
    assert [o.target_ref for o in outcomes if o.outcome is Outcome.APPLIED] == [
        f"salesOrders({order['id']})",
        *(f"salesOrderLines({line['id']})" for line in lines),
    ]


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_return_order_becomes_a_credit_memo(bc, target, fmt):
    apply_file(target, SAMPLES / f"return-order.{fmt}")

    assert credit_memos(bc) == {"BRO-000017": [("J-2040", 2, "БР"), ("C-3007", 1, "ПК")]}
    assert bc.store(None, "salesOrders") == []


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_new_customer_is_created_blocked_for_review(bc, target, fmt):
    [outcome] = apply_file(target, SAMPLES / f"new-customer.{fmt}")

    [created] = [c for c in bc.store(None, "customers") if c["number"] == "NEW-PV07-0003"]
    assert (created["displayName"], created["city"], created["blocked"]) == (
        "Кафе „Старият град“",
        "Пловдив",
        "All",
    )
    assert (outcome.outcome, outcome.target_ref) == (
        Outcome.APPLIED,
        f"customers({created['id']})",
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_payment_becomes_journal_lines_with_the_unapplied_rest(bc, target, fmt):
    apply_file(target, SAMPLES / f"payment.{fmt}")

    assert payments(bc) == [
        ("BPM-000052", "PV-01042", -120, "INV-2026-00981"),
        ("BPM-000052", "PV-01042", -52.8, "INV-2026-01013"),
        ("BPM-000052", "PV-01042", -7.2, ""),
    ]
    [journal] = bc.store(None, "customerPaymentJournals")
    assert {p["journalId"] for p in bc.store(None, "customerPayments")} == {journal["id"]}


@pytest.mark.parametrize("name", ["visit-start", "visit-stop", "document-series-update"], ids=str)
def test_visits_and_counters_are_kept_in_the_ledger_only(bc, target, name):
    outcomes = apply_file(target, SAMPLES / f"{name}.xml")

    assert [o.outcome for o in outcomes] == [Outcome.SKIPPED]
    assert outcomes[0].message == IGNORED
    assert [r.method for r in bc.requests if "$batch" in r.path] == []


def test_connector_style_field_names_give_the_same_order(bc, target):
    apply_records(
        target,
        [
            rec(
                "SalesHeader",
                DMS_ROWID="h1",
                DocumentType="0",
                No="SO-9",
                SelltoCustomerNo="PV-01042",
                OrderDate="2026-03-12",
            ),
            rec(
                "SalesLine",
                DMS_ROWID="l1",
                DocumentNo="SO-9",
                LineNo="1000",
                No="W-1001",
                Quantity="5",
                UnitofMeasureCode="БР",
            ),
            rec(
                "SalesLine",
                DMS_ROWID="l2",
                DocumentNo="SO-9",
                LineNo="2000",
                No="C-3007",
                Quantity="2",
                UnitofMeasureCode="ПК",
            ),
        ],
    )

    assert orders(bc) == {"SO-9": [("W-1001", 5, "БР"), ("C-3007", 2, "ПК")]}


def test_the_vendor_return_order_becomes_a_credit_memo_with_its_four_lines(bc, target):
    outcomes = apply_file(target, vendor_packet("438a12ad-d3cf-43e3-aa5e-f6dbea35224a"))

    assert credit_memos(bc) == {
        "RO-000018": [
            ("60105", 2, "КГ"),
            ("10017", 3, "БР"),
            ("60105", 2, "КГ"),
            ("60102", 3, "КГ"),
        ]
    }
    assert sorted(o.outcome for o in outcomes).count(Outcome.APPLIED) == 5


@pytest.mark.parametrize(
    "packet_id",
    [
        "4418ef1a-340a-4aa1-864c-48e94fc1ee88",
        "5bb216a7-977c-4a2f-95d7-ee20e09b4f21",
        "5e9c9c7d-7802-462e-89e9-862f604d09ef",
        "8fbc6c6f-b4c6-4584-9bc2-a37777919dd8",
        "a0911410-d2f2-4bc6-88a7-9d97fd5d5bad",
        "b45ab1e9-e721-4019-bf97-ff0860ab65b7",
    ],
)
def test_the_vendor_visit_and_counter_packets_create_nothing(bc, target, packet_id):
    outcomes = apply_file(target, vendor_packet(packet_id))

    assert {o.outcome for o in outcomes} == {Outcome.SKIPPED}
    assert orders(bc) == credit_memos(bc) == {}
    assert payments(bc) == []


def test_an_unknown_item_fails_the_document_naming_it_and_bc_s_error(bc, target):
    outcomes = apply_records(
        target,
        [
            rec("SalesHeader", DMS_ROWID="h1", documentType="0", no="SO-X", customerNo="PV-01042"),
            rec(
                "SalesLine",
                DMS_ROWID="l1",
                documentNo="SO-X",
                lineNo="1000",
                no="NOPE-1",
                quantity="1",
            ),
        ],
    )

    assert [o.outcome for o in outcomes] == [Outcome.FAILED, Outcome.FAILED]
    # BC ends each message with a fresh CorrelationId (for Microsoft support).
    assert re.fullmatch(
        r"salesOrders externalDocumentNumber SO-X: Business Central refused it "
        r"\(400 Internal_RecordNotFound\): The items does not exist\. Identification fields "
        r"and values: number='nope-1'  CorrelationId:  [0-9a-f-]{36}\.",
        outcomes[0].message,
    )
    assert outcomes[1].message == outcomes[0].message
    assert orders(bc) == {}


def test_a_missing_payment_journal_fails_the_payment_with_a_plain_message(bc, make_target):
    target = make_target(payment_journal="CASH")

    outcomes = apply_file(target, SAMPLES / "payment.xml")

    assert [o.outcome for o in outcomes] == [Outcome.SKIPPED, *[Outcome.FAILED] * 3]
    assert outcomes[1].message == (
        "customerPayments externalDocumentNumber BPM-000052: Business Central has no customer "
        "payment journal 'CASH' (set BC_PAYMENT_JOURNAL to an existing one)."
    )
    assert payments(bc) == []
