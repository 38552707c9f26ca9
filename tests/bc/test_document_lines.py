"""The emulator keeps each document's lines (listed, expanded, totalled, numbered, posted and
deleted with it) right through creates, updates, deletes and rolled-back writes."""

from __future__ import annotations

import pytest

from packetworker.targets.bc import BatchRequest
from packetworker.targets.bc.errors import BCError


@pytest.fixture
def order(sandbox, client) -> dict:
    sandbox.add_customer(number="C1")
    sandbox.add_item(number="A", unitPrice=2)
    sandbox.add_item(number="B", unitPrice=5)
    return client.create(
        "salesOrders",
        {
            "customerNumber": "C1",
            "salesOrderLines": [
                {"lineObjectNumber": "A", "quantity": 1},
                {"lineObjectNumber": "B", "quantity": 2},
            ],
        },
    )


def lines_of(client, order: dict) -> list[tuple[str, int]]:
    """(item, sequence) of the order's lines, read through the order's navigation."""
    [found] = client.list("salesOrders", filter=f"id eq {order['id']}", expand="salesOrderLines")
    return [(line["lineObjectNumber"], line["sequence"]) for line in found["salesOrderLines"]]


def total(client, order: dict) -> float:
    return client.get("salesOrders", order["id"])["totalAmountExcludingTax"]


def test_a_line_posted_to_its_document_is_listed_numbered_and_totalled(client, order):
    client.create(
        "salesOrderLines", {"documentId": order["id"], "lineObjectNumber": "A", "quantity": 1}
    )

    assert lines_of(client, order) == [("A", 10000), ("B", 20000), ("A", 30000)]
    assert total(client, order) == 14.0


def test_the_lines_of_one_document_are_not_another_documents(client, order):
    other = client.create(
        "salesOrders",
        {"customerNumber": "C1", "salesOrderLines": [{"lineObjectNumber": "B", "quantity": 1}]},
    )

    assert lines_of(client, other) == [("B", 10000)]
    assert total(client, other) == 5.0
    assert lines_of(client, order) == [("A", 10000), ("B", 20000)]


def test_a_deleted_line_leaves_its_document_and_its_total(client, order):
    [first, _] = client.list(f"salesOrders({order['id']})/salesOrderLines")

    client.delete("salesOrderLines", first["id"], etag="*")

    assert lines_of(client, order) == [("B", 20000)]
    assert total(client, order) == 10.0


def test_a_deleted_document_takes_its_lines(sandbox, client, order):
    client.delete("salesOrders", order["id"], etag="*")

    assert sandbox.store("CRONUS", "salesOrderLines") == []
    with pytest.raises(BCError):
        client.list(f"salesOrders({order['id']})/salesOrderLines").__next__()


def test_a_deep_insert_refused_at_a_line_leaves_no_line_behind(sandbox, client, order):
    with pytest.raises(BCError):
        client.create(
            "salesOrders",
            {
                "customerNumber": "C1",
                "salesOrderLines": [
                    {"lineObjectNumber": "A", "quantity": 1},
                    {"lineObjectNumber": "NO-SUCH-ITEM", "quantity": 1},
                ],
            },
        )

    assert len(sandbox.store("CRONUS", "salesOrderLines")) == 2
    assert lines_of(client, order) == [("A", 10000), ("B", 20000)]


def test_an_atomic_batch_rolled_back_restores_the_documents_lines(client, order):
    [first, second] = client.list(f"salesOrders({order['id']})/salesOrderLines")
    ops = [
        BatchRequest("DELETE", f"salesOrderLines({first['id']})", headers={"If-Match": "*"}),
        BatchRequest(
            "POST", "salesOrderLines", {"documentId": order["id"], "lineObjectNumber": "NONE"}
        ),
    ]

    results = client.batch(ops, atomic=True)

    assert not any(r.committed for r in results)
    assert lines_of(client, order) == [("A", 10000), ("B", 20000)]
    client.delete("salesOrderLines", second["id"], etag="*")  # the restored lines are live
    assert lines_of(client, order) == [("A", 10000)]
    assert total(client, order) == 2.0


def test_posting_an_order_copies_exactly_its_lines(client, order):
    client.create("salesOrders", {"customerNumber": "C1", "salesOrderLines": []})

    client.action("salesOrders", order["id"], "shipAndInvoice")

    [invoice] = client.list("salesInvoices", expand="salesInvoiceLines")
    assert [line["lineObjectNumber"] for line in invoice["salesInvoiceLines"]] == ["A", "B"]


def test_a_changed_line_keeps_its_place_among_its_documents_lines(client, order):
    [first, _] = client.list(f"salesOrders({order['id']})/salesOrderLines")

    client.update("salesOrderLines", first["id"], {"quantity": 4}, etag=first["@odata.etag"])

    assert lines_of(client, order) == [("A", 10000), ("B", 20000)]
    assert total(client, order) == 18.0
