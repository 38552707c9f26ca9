"""The emulator's sales line pages: prices, units of measure, read-only and set-once fields
(business-central.md §3.5.1, the APIV2 line and document pages), over real HTTP."""

from __future__ import annotations

import pytest

from packetworker.targets.bc import BCError


@pytest.fixture
def order(sandbox, client) -> dict:
    sandbox.add_customer(number="C1")
    sandbox.add_item(number="I1", unitPrice=9.8, baseUnitOfMeasureCode="KG", units={"BOX": 12})
    return client.create("salesOrders", {"customerNumber": "C1"})


def add_line(client, order: dict, body: dict, lines: str = "salesOrderLines") -> dict:
    return client.create(f"salesOrders({order['id']})/{lines}", body)


def test_a_price_validated_after_item_unit_and_quantity_is_kept_zero_included(client, order):
    line = add_line(
        client,
        order,
        {"lineObjectNumber": "I1", "unitOfMeasureCode": "BOX", "quantity": 2, "unitPrice": 0},
    )

    assert (line["unitOfMeasureCode"], line["unitPrice"], line["netAmount"]) == ("BOX", 0, 0)


def test_a_price_validated_before_the_quantity_is_recalculated(client, order):
    line = add_line(client, order, {"lineObjectNumber": "I1", "unitPrice": 5, "quantity": 2})

    assert line["unitPrice"] == 9.8


def test_the_unit_of_measure_reprices_the_line_per_unit(client, order):
    line = add_line(client, order, {"lineObjectNumber": "I1", "unitOfMeasureCode": "box"})

    assert (line["unitOfMeasureCode"], line["unitPrice"]) == ("BOX", pytest.approx(117.6))


def test_in_page_order_credit_memo_lines_validate_the_price_before_the_quantity(
    sandbox, client, order
):
    sandbox.line_field_order = "page"
    memo = client.create("salesCreditMemos", {"customerNumber": "C1"})
    body = {"lineObjectNumber": "I1", "quantity": 2, "unitPrice": 0}

    memo_line = client.create(f"salesCreditMemos({memo['id']})/salesCreditMemoLines", body)
    order_line = add_line(client, order, body)

    assert memo_line["unitPrice"] == 9.8
    assert order_line["unitPrice"] == 0


def test_a_zero_price_that_fires_no_trigger_leaves_the_item_price_until_patched(
    sandbox, client, order
):
    sandbox.unchanged_fires = False  # 0 equals the new line's buffer: unconfirmed (§3.5.1)
    line = add_line(client, order, {"lineObjectNumber": "I1", "quantity": 2, "unitPrice": 0})
    assert line["unitPrice"] == 9.8

    patched = client.update(
        f"salesOrders({order['id']})/salesOrderLines", line["id"], {"unitPrice": 0}, etag="*"
    )

    assert patched["unitPrice"] == 0


def test_a_unit_the_item_does_not_have_is_refused_and_nothing_is_stored(sandbox, client, order):
    with pytest.raises(BCError) as info:
        add_line(client, order, {"lineObjectNumber": "I1", "unitOfMeasureCode": "PAL"})

    assert (info.value.status, info.value.code) == (400, "Internal_InvalidTableRelation")
    assert "(PAL)" in info.value.bc_message
    assert "Item Unit of Measure" in info.value.bc_message
    assert sandbox.store(None, "salesOrderLines") == []


def test_a_unit_of_measure_id_is_checked_as_its_code(sandbox, client, order):
    box = sandbox.add("unitsOfMeasure", code="BOX", displayName="Box")
    pallet = sandbox.add("unitsOfMeasure", code="PAL", displayName="Pallet")

    line = add_line(client, order, {"lineObjectNumber": "I1", "unitOfMeasureId": box["id"]})
    with pytest.raises(BCError) as info:
        add_line(client, order, {"lineObjectNumber": "I1", "unitOfMeasureId": pallet["id"]})

    assert line["unitOfMeasureCode"] == "BOX"
    assert info.value.code == "Internal_InvalidTableRelation"


@pytest.mark.parametrize(
    ("entity_set", "field"),
    [
        ("salesOrders", "number"),
        ("salesOrders", "billToName"),
        ("salesOrders", "totalAmountExcludingTax"),
        ("salesInvoices", "pricesIncludeTax"),
        ("customers", "balanceDue"),
    ],
)
def test_a_read_only_field_of_the_al_page_is_refused(sandbox, client, entity_set, field):
    sandbox.add_customer(number="C1")
    body = {"number": "X1"} if entity_set == "customers" else {"customerNumber": "C1"}

    with pytest.raises(BCError) as info:
        client.create(entity_set, {**body, field: "1" if field != "pricesIncludeTax" else True})

    assert (info.value.status, info.value.code) == (400, "BadRequest_InvalidOperation")
    assert [row["number"] for row in sandbox.store(None, entity_set)] == (
        ["C1"] if entity_set == "customers" else []
    )


def test_a_read_only_field_is_ignored_when_the_emulator_is_switched_so(sandbox, client):
    sandbox.readonly_writes = "ignore"  # which of the two BC does is unconfirmed (§3.4.1)
    sandbox.add_customer(number="C1")

    created = client.create("salesOrders", {"customerNumber": "C1", "number": "MINE-1"})

    assert created["number"].startswith("S-ORD")


def test_fields_the_al_page_lets_a_client_write_are_accepted(sandbox, client, order):
    item = client.create("items", {"number": "I2", "inventory": 4})
    line = add_line(client, order, {"lineObjectNumber": "I1", "shippedQuantity": 0})

    assert item["inventory"] == 4
    assert line["lineObjectNumber"] == "I1"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("sequence", 99999, "The value for sequence cannot be modified."),
        ("lineObjectNumber", "I2", 'The value for "lineObjectNumber" cannot be modified.'),
    ],
)
def test_a_line_s_sequence_and_item_cannot_be_changed(
    sandbox, client, order, field, value, message
):
    sandbox.add_item(number="I2")
    line = add_line(client, order, {"lineObjectNumber": "I1", "quantity": 1})

    with pytest.raises(BCError) as info:
        client.update(
            f"salesOrders({order['id']})/salesOrderLines", line["id"], {field: value}, etag="*"
        )

    assert info.value.code == "Application_DialogException"
    assert info.value.bc_message.startswith(message)


def test_a_value_equal_to_what_the_line_holds_is_not_validated_again(client, order):
    # The item already set unit KG; sending KG again after the price does not reprice.
    body = {"lineObjectNumber": "I1", "unitPrice": 0, "unitOfMeasureCode": "KG"}

    line = add_line(client, order, body)

    assert line["unitPrice"] == 0
