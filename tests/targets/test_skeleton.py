"""The flow every system target shares (`targets.skeleton`): outcomes in record order, one
wording for records without an operation, a group answered per packet, `apply` as a group of
one, and the look-up cache. The target here is a stand-in that maps `Order` rows to
operations and settles them in reverse order; BC and the CRMs run the same flow against
their emulators in tests/bc_target and tests/crm_targets."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pytest

from packetworker.packets.model import PacketHeader, Record, Status, Table
from packetworker.targets.base import ApplyContext, Outcome, RecordOutcome, TargetError
from packetworker.targets.mapping import MappedItem, Operation
from packetworker.targets.skeleton import (
    FILTERED,
    IGNORED,
    NO_OUTCOME,
    LookupCache,
    Outcomes,
    Packet,
    SystemTarget,
)


def row(table: str, rowid: str | None) -> Record:
    fields = {"DMS_ROWID": rowid} if rowid else {}
    return Record(Table(table), Status.INSERT, fields)


class Orders(SystemTarget[Operation]):
    """`Order` rows become operations, `Note` rows are ignored, `Draft` rows filtered out;
    an order numbered "bad" makes `send` stop its packet."""

    def __init__(self) -> None:
        self.sends: list[list[str]] = []  # packet ids per `send` call

    def map_records(self, header: PacketHeader, records: Sequence[Record]) -> list[MappedItem]:
        items = []
        for record in records:
            table, rowid = record.table.name, record.dms_rowid
            if table == "Order":
                op = Operation("orders", "create", {"no": rowid}, {}, source=[(table, rowid)])
                items.append(MappedItem(op, "mapped", table, rowid))
            else:
                items.append(
                    MappedItem(None, "ignored" if table == "Note" else "filtered", table, rowid)
                )
        return items

    def work(self, item: MappedItem, packet: Packet[Operation]) -> Operation:
        assert item.operation is not None
        return item.operation

    def send(self, packets: list[Packet[Operation]]) -> None:
        self.sends.append([p.ctx.packet_id for p in packets])
        for packet in packets:
            if any(op.key["no"] == "bad" for op in packet.works):
                packet.fail(TargetError("refused", transient=False))

    def outcomes(self, work: Operation, packet: Packet[Operation]) -> Iterable[RecordOutcome]:
        table, rowid = work.source[0]
        yield RecordOutcome(table, rowid, Outcome.APPLIED, target_ref=f"orders({rowid})")


def ctx(packet_id: str) -> ApplyContext:
    return ApplyContext(app_area="sales", packet_id=packet_id)


def test_outcomes_come_back_in_record_order_whatever_order_they_are_settled_in() -> None:
    records = [row("Order", "a"), row("Line", None), row("Order", "b"), row("Line", None)]
    outcomes = Outcomes(records)

    outcomes.put(RecordOutcome("Order", "b", Outcome.APPLIED))
    outcomes.put(RecordOutcome("Line", None, Outcome.SKIPPED, message="first"))
    outcomes.put(RecordOutcome("Order", "a", Outcome.UNCHANGED))
    outcomes.put(RecordOutcome("Order", "a", Outcome.APPLIED))  # no free record: dropped

    assert [(o.table, o.dms_rowid, o.outcome, o.message) for o in outcomes.result()] == [
        ("Order", "a", Outcome.UNCHANGED, None),
        ("Line", None, Outcome.SKIPPED, "first"),
        ("Order", "b", Outcome.APPLIED, None),
        ("Line", None, Outcome.FAILED, NO_OUTCOME),  # never lost silently
    ]


def test_records_without_an_operation_are_skipped_with_one_wording() -> None:
    outcomes = Orders().apply([row("Note", "n"), row("Draft", "d")], ctx=ctx("p1"))

    assert [(o.outcome, o.message) for o in outcomes] == [
        (Outcome.SKIPPED, IGNORED),
        (Outcome.SKIPPED, FILTERED),
    ]


def test_a_group_is_sent_once_and_answered_per_packet() -> None:
    target = Orders()
    results = target.apply_group(
        [
            ([row("Order", "a"), row("Note", "n")], ctx("p1")),
            ([row("Order", "bad")], ctx("p2")),
            ([row("Order", "c")], ctx("p3")),
        ]
    )

    assert target.sends == [["p1", "p2", "p3"]]
    first, second, third = results
    assert isinstance(first, list)
    assert isinstance(third, list)
    assert [(o.dms_rowid, o.outcome, o.target_ref) for o in first] == [
        ("a", Outcome.APPLIED, "orders(a)"),
        ("n", Outcome.SKIPPED, None),
    ]
    assert isinstance(second, TargetError)
    assert second.message == "refused"
    assert [o.outcome for o in third] == [Outcome.APPLIED]


def test_apply_is_a_group_of_one_and_raises_what_stopped_its_packet() -> None:
    target = Orders()

    assert [o.outcome for o in target.apply([row("Order", "a")], ctx=ctx("p1"))] == [
        Outcome.APPLIED
    ]
    with pytest.raises(TargetError, match="refused"):
        target.apply([row("Order", "bad")], ctx=ctx("p2"))
    assert target.sends == [["p1"], ["p2"]]


def test_a_failure_send_does_not_pin_on_a_packet_stops_every_packet_of_the_group() -> None:
    class Broken(Orders):
        def send(self, packets: list[Packet[Operation]]) -> None:
            raise TargetError("connection lost", transient=True)

    results = Broken().apply_group([([row("Order", "a")], ctx("p1")), ([], ctx("p2"))])

    assert [str(r) for r in results] == ["connection lost", "connection lost"]


@pytest.mark.parametrize(("keep_misses", "asks"), [(False, 3), (True, 2)])
def test_the_lookup_cache_asks_once_per_value(keep_misses: bool, asks: int) -> None:
    cache = LookupCache(keep_misses=keep_misses)
    asked: list[str] = []

    def find(value: str) -> str | None:
        asked.append(value)
        return None if value == "missing" else f"id-{value}"

    for value in ("C-1", "C-1", "missing", "missing"):
        found = cache.get("customers", "number", value, lambda v=value: find(v))
        assert found == (None if value == "missing" else "id-C-1")

    assert len(asked) == asks  # a hit is asked once; a miss again unless misses are kept


def test_the_first_error_that_stops_a_packet_is_the_one_it_answers() -> None:
    class Twice(Orders):
        def send(self, packets: list[Packet[Operation]]) -> None:
            for packet in packets:  # e.g. writes in doubt, then a later request refused
                packet.fail(TargetError("in doubt", transient=True))
                packet.fail(TargetError("busy", transient=True))

    with pytest.raises(TargetError, match="in doubt"):
        Twice().apply([row("Order", "a")], ctx=ctx("p1"))
