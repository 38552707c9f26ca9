"""Never twice, also once BC has posted a document: a fully posted order leaves
`salesOrders`, and its posted invoice and shipment carry the mobile document number
(business-central.md §3.6, §3.7, §7)."""

from __future__ import annotations

import pytest

from packetworker.targets import Outcome
from packetworker.targets.mapping import MappingError, parse_mapping
from packetworker.targets.mapping.config import read_mapping_file

from .conftest import SAMPLES, api_requests, apply_file, credit_memos, orders

ORDER = SAMPLES / "sales-order.xml"
RETURN = SAMPLES / "return-order.xml"


def applied_as_unchanged(outcomes) -> list[Outcome]:
    return [Outcome.UNCHANGED if o.outcome is Outcome.APPLIED else o.outcome for o in outcomes]


def test_an_order_posted_in_bc_is_not_created_again_when_redelivered(bc, target):
    first = apply_file(target, ORDER)
    [order] = bc.store(None, "salesOrders")
    bc.post_document("salesOrders", order["id"])
    [invoice] = bc.store(None, "salesInvoices")

    second = apply_file(target, ORDER)

    assert orders(bc) == {}
    assert [o.outcome for o in second] == applied_as_unchanged(first)
    assert {o.target_ref for o in second if o.outcome is Outcome.UNCHANGED} == {
        f"salesInvoices({invoice['id']})"
    }


def test_a_redelivered_posted_order_costs_the_look_ups_and_no_write(bc, target):
    apply_file(target, ORDER)
    [order] = bc.store(None, "salesOrders")
    bc.post_document("salesOrders", order["id"])
    bc.requests.clear()

    apply_file(target, ORDER)

    assert api_requests(bc) == [
        ("GET", "salesOrders"),
        ("GET", "salesInvoices"),
        ("GET", "salesShipments"),
    ]


def test_an_order_whose_posted_invoice_is_paid_is_not_created_again(bc, target):
    apply_file(target, ORDER)
    [order] = bc.store(None, "salesOrders")
    bc.post_document("salesOrders", order["id"])
    [invoice] = bc.store(None, "salesInvoices")
    bc.db.get(bc.company()["id"], "salesInvoices", invoice["id"])["status"] = "Paid"

    outcomes = apply_file(target, ORDER)

    assert orders(bc) == {}
    assert Outcome.APPLIED not in {o.outcome for o in outcomes}


def test_a_posted_shipment_alone_is_enough_to_know_the_order(bc, target):
    shipment = bc.add_shipment(
        customer_number="PV-01042",
        externalDocumentNumber="BSO-000241",
        orderNumber="S-ORD100999",
        lines=[{"lineObjectNumber": "W-1001", "quantity": 24}],
    )

    outcomes = apply_file(target, ORDER)

    assert orders(bc) == {}
    assert {o.target_ref for o in outcomes if o.outcome is Outcome.UNCHANGED} == {
        f"salesShipments({shipment['id']})"
    }


def test_a_draft_invoice_with_the_same_number_does_not_stand_for_the_order(bc, target):
    bc.add_invoice(
        customer_number="PV-01042",
        externalDocumentNumber="BSO-000241",
        status="Draft",
        lines=[{"lineObjectNumber": "W-1001", "quantity": 1}],
    )

    apply_file(target, ORDER)

    assert list(orders(bc)) == ["BSO-000241"]


def test_a_return_whose_credit_memo_was_posted_is_not_credited_again(bc, target):
    first = apply_file(target, RETURN)
    [memo] = bc.store(None, "salesCreditMemos")
    bc.post_document("salesCreditMemos", memo["id"])

    second = apply_file(target, RETURN)

    assert [(m["id"], m["status"]) for m in bc.store(None, "salesCreditMemos")] == [
        (memo["id"], "Open")
    ]
    assert list(credit_memos(bc)) == ["BRO-000017"]
    assert [o.outcome for o in second] == applied_as_unchanged(first)


def test_the_posted_look_ups_are_the_ones_the_mapping_declares(bc, make_target):
    text, source = read_mapping_file("bc-field-sales")
    invoices = '  { entity = "salesInvoices", statuses = ["Open", "Paid"] },\n'
    assert invoices in text
    target = make_target(mapping=parse_mapping(text.replace(invoices, ""), source=source))
    apply_file(target, ORDER)
    [order] = bc.store(None, "salesOrders")
    bc.post_document("salesOrders", order["id"])
    bc.requests.clear()

    apply_file(target, ORDER)

    assert api_requests(bc)[:2] == [("GET", "salesOrders"), ("GET", "salesShipments")]
    assert ("GET", "salesInvoices") not in api_requests(bc)


def test_a_broken_posted_look_up_is_refused_naming_file_and_path(make_target):
    text, source = read_mapping_file("bc-field-sales")
    broken = text.replace('{ entity = "salesShipments" }', '{ entity = "salesShipments", x = 1 }')

    with pytest.raises(MappingError) as caught:
        make_target(mapping=parse_mapping(broken, source=source))

    assert caught.value.source == "bc-field-sales.toml"
    assert caught.value.path == "options.posted.documents.salesOrders.1.x"
