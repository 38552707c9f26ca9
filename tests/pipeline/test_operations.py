"""Status and the dead-letter queue: list, show, retry after the cause is fixed."""

from __future__ import annotations

import pytest
from pipeline_samples import order

from packetworker.pipeline.ledger import PacketState
from packetworker.pipeline.operations import (
    dlq_list,
    dlq_retry,
    dlq_retry_all,
    dlq_show,
    status,
)
from packetworker.pipeline.polling import poll_once
from packetworker.pipeline.processing import process_packet
from packetworker.targets.recording import RecordingTarget


@pytest.fixture
def ledger(redis_ledger):
    return redis_ledger


@pytest.fixture
def quarantined(sandbox, make_ctx):
    """One packet quarantined because the target refused its lines, and acknowledged."""
    target = RecordingTarget(fail_tables={"SalesLine"})
    ctx = make_ctx(sandbox, target=target)
    packet_id = sandbox.enqueue("DEMO", order("SO1", lines=2), user="u1")
    poll_once(ctx, "DEMO")
    process_packet(ctx, "DEMO", packet_id)
    poll_once(ctx, "DEMO")
    return ctx, packet_id


def test_dlq_retry_after_fixing_the_cause_applies_only_what_was_missing(quarantined, sandbox):
    ctx, packet_id = quarantined
    ctx.target.fail_tables.clear()

    result = dlq_retry(ctx, packet_id)
    acked = poll_once(ctx, "DEMO").acked

    assert result.state == "applied"
    assert result.outcomes == {"unchanged": 1, "applied": 2}
    assert [e["table"] for e in ctx.target.entries()] == ["SalesHeader", "SalesLine", "SalesLine"]
    assert ctx.ledger.quarantine("DEMO") == []
    # Its ack was posted when it was quarantined; the spent handle is not used again.
    assert acked == {}
    assert len(sandbox.done_calls("DEMO")) == 1


def test_dlq_retry_can_hand_the_packet_to_a_queue(quarantined):
    ctx, packet_id = quarantined
    sent = []

    result = dlq_retry(ctx, packet_id, enqueue=lambda area, pid: sent.append((area, pid)))

    entry = ctx.ledger.get(packet_id)
    assert result is None
    assert sent == [("DEMO", packet_id)]
    assert (entry.state, entry.attempts) == (PacketState.ARCHIVED, 0)


def test_dlq_retry_refuses_a_packet_that_is_not_quarantined(sandbox, make_ctx):
    ctx = make_ctx(sandbox)
    packet_id = sandbox.enqueue("DEMO", order("SO1"), user="u1")
    poll_once(ctx, "DEMO")
    process_packet(ctx, "DEMO", packet_id)

    with pytest.raises(LookupError, match="is applied, not quarantined"):
        dlq_retry(ctx, packet_id)


def test_dlq_list_and_show_give_the_error_but_no_receipt_handle(quarantined):
    ctx, packet_id = quarantined

    [listed] = dlq_list(ctx)
    shown = dlq_show(ctx, packet_id)

    assert listed["packet_id"] == packet_id
    assert listed["last_error"] == "1 record(s) failed: SalesLine/SO1-l0: table SalesLine refused"
    assert "receipt_handle" not in listed
    assert shown["entry"]["state"] == "acknowledged"
    assert shown["archive"]["packet_id"] == packet_id
    assert "AQEB" not in str(shown)
    assert dlq_show(ctx, "nope") is None


def test_dlq_retry_all_redrives_every_quarantined_packet(quarantined):
    ctx, packet_id = quarantined
    ctx.target.fail_tables.clear()

    results = dlq_retry_all(ctx, "DEMO")

    assert {k: v.state for k, v in results.items()} == {packet_id: "applied"}


def test_status_counts_states_ages_quarantine_and_acks(sandbox, make_ctx, clock):
    ctx = make_ctx(sandbox, target=RecordingTarget(fail_tables={"SalesLine"}))
    bad = sandbox.enqueue("DEMO", order("SO1"), user="u1")
    sandbox.enqueue("DEMO", order("SO2"), user="u1")
    poll_once(ctx, "DEMO")
    process_packet(ctx, "DEMO", bad)
    clock.advance(42)

    report = status(ctx)

    demo = report["DEMO"]
    assert set(report) == {"DEMO"}
    assert demo["counts"]["quarantined"] == 1
    assert demo["counts"]["listed"] == 1
    assert demo["oldest_pending_age"] == 42
    assert demo["quarantined"] == 1
    assert demo["pending_acks"] == {"packet": 1, "file": 0}
    assert demo["stuck"] == 0


def test_a_packet_out_of_attempts_without_bytes_shows_as_stuck_and_can_be_retried(
    sandbox, make_ctx
):
    ctx = make_ctx(sandbox, max_attempts=1)
    packet_id = sandbox.enqueue("DEMO", order("SO1"), user="u1")
    poll_once(ctx, "DEMO")
    sandbox.faults.add(status=404, count=1, path_prefix="/mobile/erp/pull/DEMO/link")
    process_packet(ctx, "DEMO", packet_id)

    assert status(ctx)["DEMO"]["stuck"] == 1
    assert [e["packet_id"] for e in dlq_list(ctx, "DEMO")] == [packet_id]
    assert dlq_retry(ctx, packet_id).state == "applied"
