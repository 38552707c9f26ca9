"""CRUD, paging, companies and etags over real HTTP against the emulator."""

from __future__ import annotations

import pytest

from packetworker.targets.bc import BCError, EntityChanged


def test_company_resolved_by_name(sandbox, make_client):
    assert make_client(company="cronus").company_id == sandbox.company("CRONUS")["id"]


def test_company_resolved_by_id(sandbox, make_client):
    company_id = sandbox.company()["id"]

    assert make_client(company=company_id).company_id == company_id


def test_unknown_company_is_a_permanent_error(make_client):
    with pytest.raises(BCError) as info:
        _ = make_client(company="Nope Ltd").company_id

    assert info.value.code == "Internal_CompanyNotFound"
    assert info.value.transient is False


def test_list_follows_next_links_across_pages(sandbox, client):
    for n in range(25):  # page_size is 10 in the fixture → 3 pages
        sandbox.add_item(number=f"I{n:03d}")

    numbers = [item["number"] for item in client.list("items")]

    assert numbers == [f"I{n:03d}" for n in range(25)]
    pages = [r for r in sandbox.requests if r.path.endswith("/items")]
    assert len(pages) == 3
    assert [("skiptoken" in r.query) for r in pages] == [False, True, True]


def test_list_filters_and_selects(sandbox, client):
    sandbox.add_item(number="A", unitPrice=5)
    sandbox.add_item(number="B", unitPrice=15)
    sandbox.add_item(number="C", unitPrice=25)

    rows = list(client.list("items", filter="unitPrice ge 10 and unitPrice lt 20", select="number"))

    assert [{k: v for k, v in r.items() if k != "@odata.etag"} for r in rows] == [{"number": "B"}]


def test_unsupported_filter_is_a_clear_400(client):
    with pytest.raises(BCError) as info:
        list(client.list("items", filter="startswith(number,'A')"))

    assert info.value.status == 400
    assert info.value.transient is False


def test_deep_insert_of_order_with_lines_reads_back(sandbox, client):
    sandbox.add_customer(number="C100")
    sandbox.add_item(number="1896-S", unitPrice=10.0)
    sandbox.add_item(number="1900-S", unitPrice=2.5)

    created = client.create(
        "salesOrders",
        {
            "customerNumber": "C100",
            "externalDocumentNumber": "WEB-1001",
            "orderDate": "2024-05-01",
            "salesOrderLines": [
                {"lineType": "Item", "lineObjectNumber": "1896-S", "quantity": 5},
                {"lineType": "Item", "lineObjectNumber": "1900-S", "quantity": 2},
            ],
        },
    )
    order = client.get("salesOrders", created["id"], expand="salesOrderLines")
    lines = list(client.list(f"salesOrders({created['id']})/salesOrderLines"))

    assert created["number"] == "S-ORD101001"
    assert order["totalAmountExcludingTax"] == 55.0
    assert [(ln["lineObjectNumber"], ln["quantity"]) for ln in order["salesOrderLines"]] == [
        ("1896-S", 5),
        ("1900-S", 2),
    ]
    assert [ln["sequence"] for ln in lines] == [10000, 20000]
    assert (
        client.find_one("salesOrders", "externalDocumentNumber eq 'WEB-1001'")["id"]
        == created["id"]
    )


def test_deep_insert_with_a_bad_line_stores_nothing(sandbox, client):
    sandbox.add_customer(number="C100")

    with pytest.raises(BCError) as info:
        client.create(
            "salesOrders",
            {"customerNumber": "C100", "salesOrderLines": [{"lineObjectNumber": "NOPE"}]},
        )

    assert info.value.code == "Internal_RecordNotFound"
    assert sandbox.store("CRONUS", "salesOrders") == []
    assert sandbox.store("CRONUS", "salesOrderLines") == []


def test_duplicate_number_is_entity_with_same_key_exists(sandbox, client):
    sandbox.add_customer(number="C100")

    with pytest.raises(BCError) as info:
        client.create("customers", {"number": "C100", "displayName": "Again"})

    assert (info.value.status, info.value.code) == (400, "Internal_EntityWithSameKeyExists")
    assert info.value.transient is False


def test_update_with_current_etag_changes_the_etag(sandbox, client):
    item = client.create("items", {"number": "1000", "displayName": "Bike"})

    updated = client.update(
        "items", item["id"], {"displayName": "Red bike"}, etag=item["@odata.etag"]
    )

    assert updated["displayName"] == "Red bike"
    assert updated["@odata.etag"] != item["@odata.etag"]
    assert sandbox.store("CRONUS", "items")[0]["displayName"] == "Red bike"


@pytest.mark.parametrize("status", [409, 412])
def test_update_with_stale_etag_raises_entity_changed(sandbox, client, status):
    sandbox.etag_conflict_status = status  # business-central.md §4.3 / §9.5: either
    item = client.create("items", {"number": "1000", "displayName": "Bike"})
    client.update("items", item["id"], {"displayName": "v2"}, etag=item["@odata.etag"])

    with pytest.raises(EntityChanged) as info:
        client.update("items", item["id"], {"displayName": "v3"}, etag=item["@odata.etag"])

    assert (info.value.status, info.value.code) == (status, "Request_EntityChanged")
    assert sandbox.store("CRONUS", "items")[0]["displayName"] == "v2"


def test_delete_with_star_etag_removes_the_entity(sandbox, client):
    item = client.create("items", {"number": "1000"})

    client.delete("items", item["id"], etag="*")

    assert sandbox.store("CRONUS", "items") == []


def test_posted_shipments_are_read_only_but_readable_with_lines(sandbox, client):
    sandbox.add_customer(number="C1")
    shipment = sandbox.add_shipment(
        customer_number="C1",
        orderNumber="S-ORD101005",
        lines=[{"lineObjectNumber": "1896-S", "quantity": 3}],
    )

    found = list(
        client.list(
            "salesShipments", filter="orderNumber eq 'S-ORD101005'", expand="salesShipmentLines"
        )
    )
    with pytest.raises(BCError) as info:
        client.create("salesShipments", {"customerNumber": "C1"})

    assert [s["id"] for s in found] == [shipment["id"]]
    assert found[0]["salesShipmentLines"][0]["quantity"] == 3
    assert info.value.status == 405


def test_posted_invoice_seed_is_listed_with_lines(sandbox, client):
    sandbox.add_customer(number="C1")
    sandbox.add_item(number="1896-S", unitPrice=4)
    invoice = sandbox.add_invoice(
        customer_number="C1", lines=[{"lineObjectNumber": "1896-S", "quantity": 2}]
    )

    got = client.get("salesInvoices", invoice["id"], expand="salesInvoiceLines")

    assert got["status"] == "Open"
    assert got["totalAmountExcludingTax"] == 8.0
    assert got["salesInvoiceLines"][0]["itemId"] == sandbox.store("CRONUS", "items")[0]["id"]


def test_item_variants_under_an_item(sandbox, client):
    item = sandbox.add_item(number="1896-S")

    client.create(f"items({item['id']})/itemVariants", {"code": "RED", "description": "Red"})

    variants = list(client.list("itemVariants", filter=f"itemId eq {item['id']}"))
    assert [(v["code"], v["itemNumber"]) for v in variants] == [("RED", "1896-S")]
