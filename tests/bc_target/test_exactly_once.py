"""Nothing is created twice: a packet applied again, a worker killed mid-batch, a customer
seen again. Look-ups cost one query per entity set per packet."""

from __future__ import annotations

import pytest

from packetworker.targets import Outcome

from .conftest import (
    SAMPLES,
    CrashAfter,
    SimulatedCrash,
    api_requests,
    apply_file,
    apply_records,
    credit_memos,
    orders,
    payments,
    rec,
)

INBOUND = ["sales-order", "return-order", "payment", "new-customer"]

# Orders are looked for as open orders and as what BC makes of them once posted.
ORDER_LOOK_UPS = [("GET", "salesOrders"), ("GET", "salesInvoices"), ("GET", "salesShipments")]


def order_packet(count: int, lines: int) -> list:
    records = []
    for n in range(count):
        records.append(
            rec(
                "SalesHeader",
                DMS_ROWID=f"h{n}",
                documentType="0",
                no=f"SO-{n:04d}",
                customerNo="PV-01042",
                dateCreated="2026-03-11T09:00:00Z",
            )
        )
        records.extend(
            rec(
                "SalesLine",
                DMS_ROWID=f"h{n}-l{i}",
                documentNo=f"SO-{n:04d}",
                lineNo=str(i * 1000),
                no="W-1001",
                quantity=str(i),
            )
            for i in range(1, lines + 1)
        )
    return records


def stored(bc) -> tuple:
    return (
        orders(bc),
        credit_memos(bc),
        payments(bc),
        sorted(c["number"] for c in bc.store(None, "customers")),
    )


@pytest.mark.parametrize("name", INBOUND)
def test_a_packet_applied_twice_is_unchanged_the_second_time(bc, target, name):
    first = apply_file(target, SAMPLES / f"{name}.xml")
    after_first = stored(bc)

    second = apply_file(target, SAMPLES / f"{name}.xml")

    assert stored(bc) == after_first
    assert [o.outcome for o in second] == [
        Outcome.UNCHANGED if o.outcome is Outcome.APPLIED else o.outcome for o in first
    ]
    # Unchanged records point at what the first run created (lines at their document).
    first_refs = {o.target_ref for o in first if o.outcome is Outcome.APPLIED}
    second_refs = [o.target_ref for o in second if o.outcome is Outcome.UNCHANGED]
    assert second_refs
    assert set(second_refs) <= first_refs


def test_the_same_document_in_xml_and_json_is_created_once(bc, target):
    apply_file(target, SAMPLES / "sales-order.xml")
    outcomes = apply_file(target, SAMPLES / "sales-order.json")

    assert list(orders(bc)) == ["BSO-000241"]
    assert Outcome.APPLIED not in {o.outcome for o in outcomes}


def test_a_worker_killed_after_the_first_batch_leaves_no_duplicate_after_the_retry(bc, make_target):
    records = order_packet(count=6, lines=3)
    crashing = make_target(transport=CrashAfter(1), batch_size=2)  # 2 documents per $batch

    with pytest.raises(SimulatedCrash):
        apply_records(crashing, records)
    assert sorted(orders(bc)) == ["SO-0000", "SO-0001"]

    outcomes = apply_records(make_target(batch_size=2), records)

    assert orders(bc) == {
        f"SO-{n:04d}": [("W-1001", 1, "БР"), ("W-1001", 2, "БР"), ("W-1001", 3, "БР")]
        for n in range(6)
    }
    assert [o.outcome for o in outcomes] == [Outcome.UNCHANGED] * 8 + [Outcome.APPLIED] * 16


def test_a_payment_cut_off_half_way_posts_only_its_missing_lines_on_retry(bc, make_target):
    crashing = make_target(transport=CrashAfter(1), batch_size=1)  # one journal line per call

    with pytest.raises(SimulatedCrash):
        apply_file(crashing, SAMPLES / "payment.xml")
    assert payments(bc) == [("BPM-000052", "PV-01042", -120, "INV-2026-00981")]

    apply_file(make_target(), SAMPLES / "payment.xml")

    assert payments(bc) == [
        ("BPM-000052", "PV-01042", -120, "INV-2026-00981"),
        ("BPM-000052", "PV-01042", -52.8, "INV-2026-01013"),
        ("BPM-000052", "PV-01042", -7.2, ""),
    ]


def test_a_known_customer_gets_only_its_contact_fields_patched(bc, target):
    bc.add_customer(number="C-7", displayName="Old Name", city="Varna", blocked=" ")

    [outcome] = apply_records(
        target,
        [
            rec(
                "Customer",
                DMS_ROWID="c7",
                No="C-7",
                Name="New Name",
                City="Burgas",
                PhoneNo="+359 1",
            )
        ],
    )

    [customer] = [c for c in bc.store(None, "customers") if c["number"] == "C-7"]
    assert (customer["displayName"], customer["city"], customer["phoneNumber"]) == (
        "Old Name",
        "Burgas",
        "+359 1",
    )
    assert customer["blocked"] == " "
    assert outcome.outcome is Outcome.APPLIED
    assert ("PATCH", f"customers({customer['id']})") not in api_requests(bc)  # inside $batch


def test_a_known_customer_with_the_same_contact_fields_is_unchanged_without_a_write(bc, target):
    bc.add_customer(number="C-8", displayName="Shop", city="Ruse")
    before = len([r for r in api_requests(bc) if r[1] == "$batch"])

    [outcome] = apply_records(target, [rec("Customer", DMS_ROWID="c8", No="C-8", City="RUSE")])

    assert outcome.outcome is Outcome.UNCHANGED
    assert len([r for r in api_requests(bc) if r[1] == "$batch"]) == before


def test_a_packet_costs_one_look_up_per_entity_set_and_one_batch(bc, target):
    apply_records(target, [rec("Customer", DMS_ROWID="c0", No="C-0", Name="Warm-up")])
    bc.requests.clear()

    apply_records(target, order_packet(count=30, lines=3))

    assert api_requests(bc) == [*ORDER_LOOK_UPS, ("POST", "$batch")]


def test_many_keys_are_looked_up_in_chunks_that_keep_urls_short(bc, target):
    apply_records(target, [rec("Customer", DMS_ROWID="c0", No="C-0", Name="Warm-up")])
    bc.requests.clear()

    apply_records(target, order_packet(count=90, lines=1))

    assert api_requests(bc) == [
        *[("GET", "salesOrders")] * 3,
        *[("GET", "salesInvoices")] * 3,
        *[("GET", "salesShipments")] * 3,
        ("POST", "$batch"),
    ]
    assert len(orders(bc)) == 90
