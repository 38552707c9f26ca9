"""The BC emulator serves `locations` and `itemVariants`, and a document line's `locationId`
and `itemVariantId` must name one of them (a variant of the line's item), as the relations of
Sales Invoice Line Aggregate (the line pages' buffer) require; over real HTTP."""

from __future__ import annotations

import pytest

from packetworker.sandbox.bc.entities import EMPTY_GUID
from packetworker.targets.bc import BCError

LINES = {
    "salesOrders": "salesOrderLines",
    "salesInvoices": "salesInvoiceLines",
    "salesCreditMemos": "salesCreditMemoLines",
}


@pytest.fixture
def known(sandbox) -> dict[str, str]:
    sandbox.add_customer(number="C1")
    bread = sandbox.add_item(number="I1", unitPrice=1.1)
    cheese = sandbox.add_item(number="I2", unitPrice=9.8)
    return {
        "location": sandbox.add("locations", code="MAIN", displayName="Main")["id"],
        "bread variant": sandbox.add("itemVariants", itemId=bread["id"], code="RED")["id"],
        "cheese variant": sandbox.add("itemVariants", itemId=cheese["id"], code="RED")["id"],
    }


def add_line(client, entity_set: str, body: dict) -> dict:
    document = client.create(entity_set, {"customerNumber": "C1"})
    return client.create(f"{entity_set}({document['id']})/{LINES[entity_set]}", body)


def test_locations_and_item_variants_are_served(client, known):
    assert [row["code"] for row in client.list("locations")] == ["MAIN"]
    variants = client.list("itemVariants", filter="code eq 'RED' and itemNumber eq 'I2'")
    assert [row["id"] for row in variants] == [known["cheese variant"]]


@pytest.mark.parametrize("entity_set", LINES)
def test_a_line_takes_a_location_and_a_variant_of_its_item(client, known, entity_set):
    line = add_line(
        client,
        entity_set,
        {
            "lineObjectNumber": "I1",
            "quantity": 2,
            "itemVariantId": known["bread variant"],
            "locationId": known["location"],
        },
    )

    assert (line["itemVariantId"], line["locationId"]) == (
        known["bread variant"],
        known["location"],
    )


@pytest.mark.parametrize(
    ("field", "value", "table"),
    [
        ("locationId", "5b1e6f0a-0000-4000-8000-000000000001", "Location"),
        ("itemVariantId", "5b1e6f0a-0000-4000-8000-000000000001", "Item Variant"),
        ("itemVariantId", "cheese variant", "Item Variant"),  # a variant of another item
    ],
)
def test_a_line_naming_no_such_record_is_refused(sandbox, client, known, field, value, table):
    with pytest.raises(BCError) as refused:
        add_line(
            client,
            "salesOrders",
            {"lineObjectNumber": "I1", "quantity": 1, field: known.get(value, value)},
        )

    assert (refused.value.status, refused.value.code) == (400, "Internal_InvalidTableRelation")
    assert f"cannot be found in the related table ({table})" in refused.value.bc_message
    assert sandbox.store(None, "salesOrderLines") == []


def test_a_blank_id_clears_the_location(client, known):
    line = add_line(
        client,
        "salesOrders",
        {"lineObjectNumber": "I1", "quantity": 1, "locationId": known["location"]},
    )

    patched = client.update(
        f"salesOrders({line['documentId']})/salesOrderLines",
        line["id"],
        {"locationId": EMPTY_GUID},
        etag=line["@odata.etag"],
    )

    assert patched["locationId"] == EMPTY_GUID
