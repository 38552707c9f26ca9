"""Held packets: a record the target holds (its customer is blocked for review) parks the
packet in `waiting` — not acknowledged, not a failed attempt — until a scheduled retry or a
wake-up finds it applicable, or the hold limit quarantines it. Runs on both ledgers against
a real portal sandbox over HTTP."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest
from pipeline_samples import order, xml_packet

from packetworker.pipeline.holds import due_held, wake_for_customer_change, wake_held_customer
from packetworker.pipeline.ledger import PacketState
from packetworker.pipeline.operations import dlq_list, dlq_retry, status
from packetworker.pipeline.polling import poll_once
from packetworker.pipeline.processing import process_packet
from packetworker.sandbox.bc import BCSandbox
from packetworker.targets.base import ApplyContext, Outcome, RecordOutcome, held_key
from packetworker.targets.bc import BCAuth, BCClient
from packetworker.targets.recording import RecordingTarget


class CustomerGate(RecordingTarget):
    """Records whose `customerNo` is blocked are held, as the BC target holds a document of
    a customer BC refuses it for; the rest are recorded."""

    def __init__(self, *blocked: str) -> None:
        super().__init__()
        self.blocked = set(blocked)
        self.companies: list[str | None] = []

    def apply(self, records: Sequence, *, ctx: ApplyContext) -> list[RecordOutcome]:
        self.companies.append(ctx.company)
        out: list[RecordOutcome | None] = [None] * len(records)
        free = []
        for n, record in enumerate(records):
            customer = record.fields.get("customerNo")
            if customer in self.blocked:
                reason = f"salesOrders {record.fields['no']}: customer {customer} is blocked (All)"
                wake = held_key("customer", customer)
                out[n] = RecordOutcome(
                    record.table.name, record.dms_rowid, Outcome.HELD, None, reason, wake
                )
            else:
                free.append(n)
        applied = super().apply([records[n] for n in free], ctx=ctx)
        for n, outcome in zip(free, applied, strict=True):
            out[n] = outcome
        return out  # type: ignore[return-value]


def held_order(no: str, customer: str) -> bytes:
    return xml_packet("u1", ("SalesHeader", f"{no}-h", {"no": no, "customerNo": customer}))


@pytest.fixture
def gate() -> CustomerGate:
    return CustomerGate("C-100")


@pytest.fixture
def ctx(sandbox, make_ctx, gate):
    return make_ctx(sandbox, target=gate, max_attempts=2, bc_hold_retry_interval=300)


def test_an_order_for_a_blocked_customer_waits_unacknowledged_with_its_reason(sandbox, ctx):
    packet_id = sandbox.enqueue("DEMO", held_order("SO-1", "C-100"), user="u1")
    poll_once(ctx, "DEMO")

    result = process_packet(ctx, "DEMO", packet_id)
    poll_once(ctx, "DEMO")

    entry = ctx.ledger.get(packet_id)
    assert result.state == "waiting"
    assert entry.state is PacketState.WAITING
    assert entry.last_error == "held: salesOrders SO-1: customer C-100 is blocked (All)"
    assert entry.held_on == "customer:c-100"
    assert entry.held_since == ctx.ledger.clock()
    assert ctx.ledger.pending_acks("DEMO", "packet") == []
    assert sandbox.done_calls("DEMO") == []
    assert packet_id in sandbox.pending("DEMO")


def test_held_runs_are_not_attempts_so_a_packet_never_quarantines_for_them(sandbox, ctx):
    packet_id = sandbox.enqueue("DEMO", held_order("SO-1", "C-100"), user="u1")
    poll_once(ctx, "DEMO")

    results = [process_packet(ctx, "DEMO", packet_id) for _ in range(5)]  # max_attempts is 2

    assert {r.state for r in results} == {"waiting"}
    assert ctx.ledger.get(packet_id).attempts == 0
    assert ctx.ledger.quarantine("DEMO") == []


def test_a_held_packet_does_not_block_the_other_packets_of_its_app_area(sandbox, ctx):
    held = sandbox.enqueue("DEMO", held_order("SO-1", "C-100"), user="u1")
    other = sandbox.enqueue("DEMO", order("SO-2"), user="u1")
    poll_once(ctx, "DEMO")

    process_packet(ctx, "DEMO", held)
    applied = process_packet(ctx, "DEMO", other)
    acked = poll_once(ctx, "DEMO").acked

    assert applied.state == "applied"
    assert acked == {"packet": 1}
    assert [sorted(c.ids) for c in sandbox.done_calls("DEMO")] == [[other]]


def test_the_poll_retries_a_held_packet_once_its_retry_interval_has_passed(
    sandbox, ctx, clock, gate
):
    packet_id = sandbox.enqueue("DEMO", held_order("SO-1", "C-100"), user="u1")
    poll_once(ctx, "DEMO")
    process_packet(ctx, "DEMO", packet_id)

    clock.advance(299)
    early = poll_once(ctx, "DEMO").requeue_ids
    clock.advance(2)
    due = poll_once(ctx, "DEMO").requeue_ids
    again = poll_once(ctx, "DEMO").requeue_ids
    gate.blocked.clear()  # someone reviewed the customer and unblocked it
    result = process_packet(ctx, "DEMO", packet_id)
    acked = poll_once(ctx, "DEMO").acked

    assert (early, due, again) == ([], [packet_id], [])
    assert result.state == "applied"
    assert acked == {"packet": 1}
    entry = ctx.ledger.get(packet_id)
    assert (entry.state, entry.held_on, entry.held_since) == (PacketState.ACKNOWLEDGED, None, None)


def test_waking_a_customer_enqueues_only_the_packets_waiting_on_it(sandbox, ctx, gate):
    gate.blocked.add("C-200")
    first = sandbox.enqueue("DEMO", held_order("SO-1", "C-100"), user="u1")
    second = sandbox.enqueue("DEMO", held_order("SO-2", "C-200"), user="u1")
    poll_once(ctx, "DEMO")
    process_packet(ctx, "DEMO", first)
    process_packet(ctx, "DEMO", second)
    enqueued: list[tuple[str, str]] = []

    woken = wake_held_customer(ctx, "c-100", enqueue=lambda *args: enqueued.append(args))

    assert woken == [first]
    assert enqueued == [("DEMO", first)]
    assert wake_held_customer(ctx, "C-999", enqueue=lambda *args: enqueued.append(args)) == []


def test_a_packet_held_longer_than_the_limit_is_quarantined_and_acknowledged(
    sandbox, make_ctx, gate, clock
):
    ctx = make_ctx(sandbox, target=gate, bc_hold_max_hours=2)
    packet_id = sandbox.enqueue("DEMO", held_order("SO-1", "C-100"), user="u1")
    poll_once(ctx, "DEMO")
    process_packet(ctx, "DEMO", packet_id)

    clock.advance(3600)
    still = process_packet(ctx, "DEMO", packet_id)
    clock.advance(3600)
    result = process_packet(ctx, "DEMO", packet_id)
    acked = poll_once(ctx, "DEMO").acked

    assert still.state == "waiting"
    assert result.state == "quarantined"
    assert result.error == (
        "held for more than 2 h (BC_HOLD_MAX_HOURS): "
        "held: salesOrders SO-1: customer C-100 is blocked (All)"
    )
    assert acked == {"packet": 1}


def test_a_failed_record_beside_a_held_one_quarantines_the_packet(sandbox, make_ctx):
    class Refusing(CustomerGate):
        def apply(self, records, *, ctx):
            out = super().apply(records, ctx=ctx)
            return [
                RecordOutcome(o.table, o.dms_rowid, Outcome.FAILED, None, "unknown item")
                if o.table == "SalesLine"
                else o
                for o in out
            ]

    ctx = make_ctx(sandbox, target=Refusing("C1"))
    packet_id = sandbox.enqueue("DEMO", order("SO-1"), user="u1")
    poll_once(ctx, "DEMO")

    result = process_packet(ctx, "DEMO", packet_id)

    assert result.state == "quarantined"
    assert "unknown item" in result.error


def test_status_and_dlq_list_show_held_packets_and_why(sandbox, ctx, clock):
    packet_id = sandbox.enqueue("DEMO", held_order("SO-1", "C-100"), user="u1")
    poll_once(ctx, "DEMO")
    process_packet(ctx, "DEMO", packet_id)
    clock.advance(90)

    [held] = status(ctx)["DEMO"]["held_packets"]
    [listed] = dlq_list(ctx)

    assert held == {
        "packet_id": packet_id,
        "user": "u1",
        "company": "CRONUS",
        "held_for": 90.0,
        "reason": "held: salesOrders SO-1: customer C-100 is blocked (All)",
    }
    assert status(ctx)["DEMO"]["counts"]["held"] == 1
    assert (listed["packet_id"], listed["state"], listed["last_error"]) == (
        packet_id,
        "held",
        "held: salesOrders SO-1: customer C-100 is blocked (All)",
    )


def test_dlq_retry_of_a_held_packet_tries_it_again_now(sandbox, ctx, gate):
    packet_id = sandbox.enqueue("DEMO", held_order("SO-1", "C-100"), user="u1")
    poll_once(ctx, "DEMO")
    process_packet(ctx, "DEMO", packet_id)
    gate.blocked.clear()

    result = dlq_retry(ctx, packet_id)

    assert result.state == "applied"


def test_the_target_is_told_the_packets_company(sandbox, ctx, gate):
    packet_id = sandbox.enqueue("DEMO", order("SO-1"), user="u1", company_id="BIOTRADE_COSM")
    poll_once(ctx, "DEMO")

    process_packet(ctx, "DEMO", packet_id)

    assert gate.companies == ["BIOTRADE_COSM"]


def test_held_packets_are_not_stale_and_are_due_by_their_own_interval(ledger, sandbox, ctx, clock):
    packet_id = sandbox.enqueue("DEMO", held_order("SO-1", "C-100"), user="u1")
    poll_once(ctx, "DEMO")
    process_packet(ctx, "DEMO", packet_id)
    clock.advance(301)

    stale = ledger.stale("DEMO", before=clock() + 1)
    due = due_held(ctx, "DEMO")

    assert stale == []
    assert due == [packet_id]
    assert [e.packet_id for e in ledger.held("DEMO")] == [packet_id]


@pytest.fixture
def bc() -> Iterator[BCClient]:
    """A client of a BC emulator holding customer C-100 (what outbound reads with)."""
    with BCSandbox() as emulator:
        emulator.add_customer(number="C-100", displayName="Review me")
        auth = BCAuth(
            token_url=emulator.token_url,
            client_id=emulator.client_id,
            client_secret=emulator.client_secret,
        )
        with BCClient(
            api_url=emulator.api_url,
            tenant=emulator.tenant,
            environment=emulator.environment,
            auth=auth,
            company="CRONUS",
        ) as client:
            yield client


def test_a_customers_notification_wakes_the_documents_held_on_that_customer(sandbox, ctx, gate, bc):
    client = bc
    gate.blocked.add("C-200")
    first = sandbox.enqueue("DEMO", held_order("SO-1", "C-100"), user="u1")
    second = sandbox.enqueue("DEMO", held_order("SO-2", "C-200"), user="u1")
    poll_once(ctx, "DEMO")
    process_packet(ctx, "DEMO", first)
    process_packet(ctx, "DEMO", second)
    [customer] = client.list("customers", filter="number eq 'C-100'")
    enqueued: list[tuple[str, str]] = []

    woken = wake_for_customer_change(
        ctx, client, customer["id"], enqueue=lambda *a: enqueued.append(a)
    )

    assert woken == [first]
    assert enqueued == [("DEMO", first)]


def test_a_notification_that_names_no_customer_wakes_every_document_held_on_one(
    sandbox, ctx, gate, bc
):
    client = bc
    gate.blocked.add("C-200")
    ids = [
        sandbox.enqueue("DEMO", held_order(f"SO-{n}", c), user="u1")
        for n, c in ((1, "C-100"), (2, "C-200"))
    ]
    poll_once(ctx, "DEMO")
    for packet_id in ids:
        process_packet(ctx, "DEMO", packet_id)

    woken = wake_for_customer_change(ctx, client, None, enqueue=lambda *a: None)

    assert sorted(woken) == sorted(ids)
