"""A line's location and variant codes reach Business Central as the ids its line pages take
(`locationId`, `itemVariantId`), by look-ups the mapping file declares; a variant code is
looked up among the line's item's variants only (over real HTTP, emulator)."""

from __future__ import annotations

import pytest

from packetworker.targets.base import Outcome

from .conftest import apply_records, rec


@pytest.fixture
def stock(bc) -> dict[str, str]:
    """Two locations, and a variant code RED that two items each have."""
    [bread] = [i for i in bc.store(None, "items") if i["number"] == "10017"]
    [cheese] = [i for i in bc.store(None, "items") if i["number"] == "60102"]
    return {
        "MAIN": bc.add("locations", code="MAIN", displayName="Main warehouse")["id"],
        "VAN-7": bc.add("locations", code="VAN-7", displayName="Van 7")["id"],
        "bread RED": bc.add("itemVariants", itemId=bread["id"], code="RED")["id"],
        "cheese RED": bc.add("itemVariants", itemId=cheese["id"], code="RED")["id"],
        "cheese OLD": bc.add("itemVariants", itemId=cheese["id"], code="OLD")["id"],
    }


def order(*lines: dict[str, str]) -> list:
    """A connector-style order (the names of the vendor's BC connector) with `lines`."""
    header = rec(
        "SalesHeader",
        DMS_ROWID="h-1",
        No="SO-1",
        DocumentType="0",
        SelltoCustomerNo="BG00002",
        OrderDate="2026-07-01",
    )
    return [
        header,
        *(
            rec("SalesLine", DocumentNo="SO-1", LineNo=str(n * 1000), Quantity="1", **line)
            for n, line in enumerate(lines, start=1)
        ),
    ]


def stored_lines(bc) -> list[dict]:
    [stored] = bc.store(None, "salesOrders")
    lines = [ln for ln in bc.store(None, "salesOrderLines") if ln["documentId"] == stored["id"]]
    return sorted(lines, key=lambda ln: ln["sequence"])


def test_location_and_variant_codes_become_the_lines_ids(bc, target, stock):
    outcomes = apply_records(
        target,
        order(
            {"No": "10017", "LocationCode": "MAIN", "VariantCode": "RED"},
            {"No": "60102", "LocationCode": "VAN-7", "VariantCode": "RED"},
            {"No": "60102"},
        ),
    )

    assert {o.outcome for o in outcomes} == {Outcome.APPLIED}
    assert [(ln["locationId"], ln["itemVariantId"]) for ln in stored_lines(bc)] == [
        (stock["MAIN"], stock["bread RED"]),
        (stock["VAN-7"], stock["cheese RED"]),
        ("00000000-0000-0000-0000-000000000000",) * 2,
    ]


def test_a_variant_code_of_another_item_fails_the_document_with_the_mappings_sentence(
    bc, target, stock
):
    # OLD is a variant of 60102 only.
    outcomes = apply_records(target, order({"No": "10017", "VariantCode": "OLD"}))

    [header] = [o for o in outcomes if o.table == "SalesHeader"]
    assert header.outcome == Outcome.FAILED
    assert "variant code is not a variant of its item" in header.message
    assert bc.store(None, "salesOrders") == []


def test_an_unknown_location_code_fails_the_document_with_the_mappings_sentence(bc, target, stock):
    outcomes = apply_records(target, order({"No": "10017", "LocationCode": "NOWHERE"}))

    [header] = [o for o in outcomes if o.table == "SalesHeader"]
    assert header.outcome == Outcome.FAILED
    assert "location code is not in Business Central's Locations" in header.message
    assert bc.store(None, "salesOrders") == []
