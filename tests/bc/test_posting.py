"""The emulator posts documents through BC's bound actions (business-central.md §3.4-3.7):
`Microsoft.NAV.shipAndInvoice` on a sales order, `Microsoft.NAV.post` on a draft invoice or
credit memo."""

from __future__ import annotations

import pytest

from packetworker.targets.bc.errors import BCError


@pytest.fixture
def order(sandbox, client) -> dict:
    sandbox.add_customer(number="C1")
    sandbox.add_item(number="1896-S", unitPrice=4)
    return client.create(
        "salesOrders",
        {
            "customerNumber": "C1",
            "externalDocumentNumber": "WEB-1001",
            "salesOrderLines": [{"lineType": "Item", "lineObjectNumber": "1896-S", "quantity": 3}],
        },
    )


def test_ship_and_invoice_replaces_the_order_by_a_posted_invoice_and_shipment(
    sandbox, client, order
):
    client.action("salesOrders", order["id"], "shipAndInvoice")

    [invoice] = client.list(
        "salesInvoices", filter="externalDocumentNumber eq 'WEB-1001'", expand="salesInvoiceLines"
    )
    [shipment] = client.list(
        "salesShipments", filter="externalDocumentNumber eq 'WEB-1001'", expand="salesShipmentLines"
    )
    assert sandbox.store("CRONUS", "salesOrders") == []
    assert sandbox.store("CRONUS", "salesOrderLines") == []
    assert (invoice["status"], invoice["orderId"], invoice["orderNumber"]) == (
        "Open",
        order["id"],
        order["number"],
    )
    assert [
        (line["lineObjectNumber"], line["quantity"]) for line in invoice["salesInvoiceLines"]
    ] == [("1896-S", 3)]
    assert invoice["totalAmountExcludingTax"] == 12.0
    assert shipment["orderNumber"] == order["number"]
    assert [
        (line["lineObjectNumber"], line["quantity"], line["documentNo"])
        for line in shipment["salesShipmentLines"]
    ] == [("1896-S", 3, shipment["number"])]


def test_an_order_without_lines_cannot_be_posted_and_stays(sandbox, client):
    sandbox.add_customer(number="C1")
    order = client.create("salesOrders", {"customerNumber": "C1"})

    with pytest.raises(BCError) as info:
        client.action("salesOrders", order["id"], "shipAndInvoice")

    assert (info.value.status, info.value.code) == (400, "Application_DialogException")
    assert [o["id"] for o in sandbox.store("CRONUS", "salesOrders")] == [order["id"]]
    assert sandbox.store("CRONUS", "salesInvoices") == []
    assert sandbox.store("CRONUS", "salesShipments") == []


def test_posting_a_draft_credit_memo_keeps_it_in_its_set_with_status_open(sandbox, client):
    sandbox.add_customer(number="C1")
    sandbox.add_item(number="X")
    memo = client.create(
        "salesCreditMemos",
        {
            "customerNumber": "C1",
            "externalDocumentNumber": "RET-7",
            "salesCreditMemoLines": [{"lineObjectNumber": "X", "quantity": 1}],
        },
    )

    client.action("salesCreditMemos", memo["id"], "post")

    assert [(m["id"], m["status"]) for m in client.list("salesCreditMemos")] == [
        (memo["id"], "Open")
    ]


def test_a_posted_document_cannot_be_posted_again(sandbox, client, order):
    invoice = sandbox.add_invoice(
        customer_number="C1", lines=[{"lineObjectNumber": "1896-S", "quantity": 1}]
    )

    with pytest.raises(BCError) as info:
        client.action("salesInvoices", invoice["id"], "post")

    assert (info.value.status, info.value.code) == (400, "Application_DialogException")


def test_an_unknown_bound_action_is_refused(client, order):
    with pytest.raises(BCError) as info:
        client.action("salesOrders", order["id"], "releaseEverything")

    assert (info.value.status, info.value.code) == (400, "BadRequest_NotFound")
    assert [o["id"] for o in client.list("salesOrders")] == [order["id"]]
