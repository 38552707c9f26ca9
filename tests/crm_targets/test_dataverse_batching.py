"""Dataverse specifics: documents travel in `$batch` change sets, not one call per record."""

from __future__ import annotations

import uuid

from packetworker.packets.model import Record, Status, Table
from packetworker.targets.base import ApplyContext, Outcome
from packetworker.targets.dataverse.target import DataverseTarget
from packetworker.targets.mapping import load_mapping
from tests.crm_targets.harness import SAMPLES, harness_for, read_packet


def test_an_order_and_its_lines_go_in_one_batch_request() -> None:
    with harness_for("dataverse") as crm:
        outcomes = crm.apply_file(SAMPLES / "sales-order.xml")
        writes = [
            r
            for r in crm.emulator.requests
            if r.method in ("POST", "PATCH") and r.path.startswith("/api/data/")
        ]

        assert [(r.method, r.path) for r in writes] == [("POST", "/api/data/v9.2/$batch")]
        assert [o.outcome for o in outcomes if o.table in ("SalesHeader", "SalesLine")] == [
            Outcome.APPLIED
        ] * len([o for o in outcomes if o.table in ("SalesHeader", "SalesLine")])


def test_each_line_reports_the_id_of_its_own_order_line() -> None:
    with harness_for("dataverse") as crm:
        outcomes = crm.apply_file(SAMPLES / "sales-order.xml")

        line_refs = {o.target_ref for o in outcomes if o.table == "SalesLine"}
        assert line_refs == {
            d["salesorderdetailid"] for d in crm.emulator.records("salesorderdetails")
        }


def test_an_existing_order_rolls_back_its_whole_change_set() -> None:
    with harness_for("dataverse") as crm:
        header, records = read_packet(SAMPLES / "sales-order.xml")
        crm.apply(records, header=header)
        lines_before = crm.emulator.records("salesorderdetails")

        again = crm.apply(records, header=header)

        assert crm.emulator.records("salesorderdetails") == lines_before
        assert {o.outcome for o in again if o.table == "SalesHeader"} == {Outcome.UNCHANGED}


def test_describe_lists_what_the_target_created() -> None:
    with harness_for("dataverse") as crm:
        outcomes = crm.apply_file(SAMPLES / "sales-order.xml")

        order = next(o for o in outcomes if o.table == "SalesHeader")
        assert f"salesorders {order.target_ref}: salesorderid={order.target_ref}" in (
            crm.target.describe()
        )


def order(number: str, item: str) -> list:
    def rec(table: str, **fields: str) -> Record:
        return Record(Table(table), Status.INSERT, fields)

    return [
        rec(
            "SalesHeader",
            DMS_ROWID=str(uuid.uuid4()),
            no=number,
            documentType="0",
            customerNo="PV-01042",
        ),
        rec(
            "SalesLine",
            DMS_ROWID=str(uuid.uuid4()),
            documentNo=number,
            lineNo="1000",
            no=item,
            quantity="2",
            unitOfMeasure="БР",
            unitPrice="1.5",
        ),
    ]


def item_deleted_behind_our_back(crm, number: str) -> None:
    """Orders SO-1 (W-1001) and SO-2 (`number`) applied, so the ids are cached; then the
    item `number` is deleted in the CRM without the target knowing."""
    crm.apply(order("SO-1", "W-1001") + order("SO-2", number))
    gone = next(
        p["productid"] for p in crm.emulator.records("products") if p["productnumber"] == number
    )
    del crm.emulator.tables["products"][gone]


def test_a_failing_change_set_is_refused_alone_and_the_others_apply() -> None:
    with harness_for("dataverse") as crm:
        item_deleted_behind_our_back(crm, "C-3007")

        outcomes = crm.apply(order("SO-3", "C-3007") + order("SO-4", "W-1001"))

        assert [o.outcome for o in outcomes] == [Outcome.FAILED] * 2 + [Outcome.APPLIED] * 2
        assert outcomes[0].message.startswith("A record this salesorders refers to does not exist")
        assert sorted(o["name"] for o in crm.emulator.records("salesorders")) == [
            "SO-1",
            "SO-2",
            "SO-4",
        ]


def test_an_existing_customer_gets_only_its_update_fields_changed() -> None:
    with harness_for("dataverse") as crm:
        header, records = read_packet(SAMPLES / "new-customer.xml")
        crm.apply(records, header=header)
        [customer] = records
        changed = Record(
            customer.table,
            Status.UPDATE,
            {**customer.fields, "PhoneNo": "+359 32 000 000", "Name": "Renamed"},
        )

        [outcome] = crm.apply([changed], header=header)

        [account] = [
            a
            for a in crm.emulator.records("accounts")
            if a["accountnumber"] == customer.fields["No"]
        ]
        assert (outcome.outcome, outcome.target_ref) == (Outcome.UNCHANGED, account["accountid"])
        assert (account["telephone1"], account["name"]) == (
            "+359 32 000 000",
            customer.fields["Name"],
        )
        assert len(crm.emulator.records("contacts")) == 1  # no second primary contact


def group_of(orders: list[list[Record]]) -> list[tuple[list[Record], ApplyContext]]:
    """One packet per order, as the pipeline's `process_packets` hands them over."""
    return [
        (records, ApplyContext("TEST", f"packet-{n}", user="rep-plovdiv-07"))
        for n, records in enumerate(orders)
    ]


def batches(crm) -> int:
    return len(crm.emulator.requests_to("POST", "$batch"))


def test_a_group_of_packets_shares_batches_of_at_most_a_thousand_operations() -> None:
    with harness_for("dataverse") as crm:
        crm.apply(order("SO-0", "W-1001"))  # the customer, item and unit ids are cached now
        before = batches(crm)

        results = crm.target.apply_group(
            group_of([order(f"SO-{n}", "W-1001") for n in range(1, 601)])
        )

        # 600 documents (an order and its line, 2 operations each): 1,200 operations go in
        # ceil(1,200 / 1,000) = 2 requests, not 600 (crm.md: up to 1,000 per $batch).
        assert batches(crm) - before == 2
        assert all(isinstance(r, list) for r in results)
        assert {o.outcome for r in results for o in r} == {Outcome.APPLIED}
        assert len(crm.emulator.records("salesorders")) == 601


def test_a_refused_document_fails_only_its_own_packet_of_the_group() -> None:
    with harness_for("dataverse") as crm:
        item_deleted_behind_our_back(crm, "C-3007")
        before = batches(crm)

        first, refused, last = crm.target.apply_group(
            group_of([order("SO-3", "W-1001"), order("SO-4", "C-3007"), order("SO-5", "W-1001")])
        )

        assert batches(crm) - before == 1
        assert [o.outcome for o in first] == [Outcome.APPLIED] * 2
        assert [o.outcome for o in refused] == [Outcome.FAILED] * 2
        assert refused[0].message.startswith("A record this salesorders refers to does not exist")
        assert [o.outcome for o in last] == [Outcome.APPLIED] * 2
        assert sorted(o["name"] for o in crm.emulator.records("salesorders")) == [
            "SO-1",
            "SO-2",
            "SO-3",
            "SO-5",
        ]


def test_a_batch_carries_whole_change_sets_and_never_more_operations_than_its_limit() -> None:
    with harness_for("dataverse") as crm:
        crm.apply(order("SO-0", "W-1001"))  # ids cached: only the documents are sent below
        crm.target.batch_size = 5
        before = batches(crm)

        results = crm.target.apply_group(group_of([order(f"SO-{n}", "W-1001") for n in (1, 2, 3)]))

        # 3 documents of 2 operations: 4 fit in one $batch of at most 5, the third goes next.
        assert batches(crm) - before == 2
        assert {o.outcome for r in results for o in r} == {Outcome.APPLIED}


def test_without_batch_each_operation_is_its_own_request_and_lines_bind_to_their_order() -> None:
    with harness_for("dataverse") as crm:
        target = DataverseTarget(
            crm.target.client, mapping=load_mapping("dataverse-field-sales"), use_batch=False
        )
        header, records = read_packet(SAMPLES / "sales-order.xml")

        outcomes = target.apply(records, ctx=ApplyContext("TEST", "packet-1", header=header))

        [stored] = crm.emulator.records("salesorders")
        lines = crm.emulator.records("salesorderdetails")
        assert {o.outcome for o in outcomes if o.table == "SalesLine"} == {Outcome.APPLIED}
        assert {line["_salesorderid_value"] for line in lines} == {stored["salesorderid"]}
        assert crm.emulator.requests_to("POST", "$batch") == []
