"""Every inbound sample applied to every CRM: the expected records are read back from the
emulator, a re-run creates nothing new, and a 429 storm is ridden out.

Expected counts are derived from the sample files themselves, so a new sample does not
need a new number here."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from packetworker.targets.base import Outcome, RecordOutcome
from tests.crm_targets.harness import SAMPLES, Harness, harness_for, read_packet

INBOUND_XML = sorted(SAMPLES.glob("*.xml"))
INBOUND_JSON = sorted(SAMPLES.glob("*.json"))


def records(where: Callable[[object], bool] = lambda r: True) -> list:
    return [r for path in INBOUND_XML for r in read_packet(path)[1] if where(r)]


def of(table: str) -> Callable[[object], bool]:
    return lambda r: r.table.name == table


def is_order(record) -> bool:
    return record.table.name == "SalesHeader" and record.fields.get("documentType") == "0"


ORDER_NUMBERS = {r.fields["no"] for r in records(is_order)}


def apply_all(crm: Harness, paths=INBOUND_XML) -> list[RecordOutcome]:
    return [o for path in paths for o in crm.apply_file(path)]


def test_every_inbound_sample_applies_with_nothing_failed(crm: Harness) -> None:
    outcomes = apply_all(crm)

    assert len(outcomes) == len(records())
    assert [o for o in outcomes if o.outcome is Outcome.FAILED] == []


@pytest.mark.parametrize("name", ["dataverse", "dynamics-portal"])
def test_the_dataverse_mapping_creates_the_samples_records(name: str) -> None:
    with harness_for(name) as crm:
        before = crm.counts()
        apply_all(crm)

        assert crm.counts() == {
            "customers": before["customers"] + len(records(of("Customer"))),
            "contacts": len([r for r in records(of("Customer")) if r.fields.get("Contact")]),
            "activities": len(records(of("CustomerActivity"))),
            "orders": len(ORDER_NUMBERS),
            "order lines": len(
                [r for r in records(of("SalesLine")) if r.fields["documentNo"] in ORDER_NUMBERS]
            ),
        }


def test_crm_as_a_service_gets_the_samples_records(crm_as_a_service: Harness) -> None:
    before = crm_as_a_service.counts()

    outcomes = apply_all(crm_as_a_service)

    assert crm_as_a_service.counts() == {
        "customers": before["customers"] + len(records(of("Customer"))),
        # the customer's contact person has no email, which the CRM requires: reported
        "contacts": 0,
        "activities": len(records(of("CustomerActivity"))),
        "orders": len(records(of("SalesHeader"))),
    }
    [customer] = [o for o in outcomes if o.table == "Customer"]
    assert customer.outcome is Outcome.APPLIED
    assert customer.message == "contact 'Мария Петрова' not created: 400: email is required"


def test_an_order_becomes_a_sales_order_whose_lines_name_their_product_and_unit() -> None:
    with harness_for("dataverse") as crm:
        apply_all(crm)
        dv = crm.emulator
        [order] = dv.records("salesorders")
        products = {p["productid"]: p["productnumber"] for p in dv.records("products")}
        units = {u["uomid"]: u["name"] for u in dv.records("uoms")}
        lines = [r for r in records(of("SalesLine")) if r.fields["documentNo"] in ORDER_NUMBERS]

        assert (order["name"], order["_customerid_value"]) == ("BSO-000241", crm.company_id())
        assert sorted(
            (products[d["_productid_value"]], units[d["_uomid_value"]], d["quantity"])
            for d in dv.records("salesorderdetails")
            if d["_salesorderid_value"] == order["salesorderid"]
        ) == sorted(
            (r.fields["no"], r.fields["unitOfMeasure"], float(r.fields["quantity"])) for r in lines
        )


def test_an_order_becomes_an_opportunity_worth_its_total(crm_as_a_service: Harness) -> None:
    apply_all(crm_as_a_service)

    [order] = records(is_order)
    [opportunity] = [
        o
        for o in crm_as_a_service.emulator.records("opportunities")
        if o["title"] == f"Order {order.fields['no']}"
    ]
    assert opportunity["value"] == {"amount": float(order.fields["totalAmount"]), "code": "EUR"}
    assert opportunity["organizationId"] == crm_as_a_service.company_id()


def test_rerunning_every_sample_creates_nothing_new(crm: Harness) -> None:
    apply_all(crm)
    after_first = crm.counts()

    again = apply_all(crm)

    assert crm.counts() == after_first
    assert {o.outcome for o in again} <= {Outcome.UNCHANGED, Outcome.SKIPPED}


def test_the_json_samples_after_the_xml_ones_change_nothing(crm: Harness) -> None:
    apply_all(crm)
    after_xml = crm.counts()

    outcomes = apply_all(crm, INBOUND_JSON)

    assert crm.counts() == after_xml
    assert {o.outcome for o in outcomes} <= {Outcome.UNCHANGED, Outcome.SKIPPED}


def test_a_429_storm_is_ridden_out(crm: Harness) -> None:
    crm.emulator.faults.storm(3, retry_after=7)

    outcomes = crm.apply_file(SAMPLES / "sales-order.xml")

    assert [o for o in outcomes if o.outcome is Outcome.FAILED] == []
    assert Outcome.APPLIED in {o.outcome for o in outcomes}
    assert sum(crm.time.sleeps) >= 7 * 3
