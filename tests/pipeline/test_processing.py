"""Inbound processing rules: poll, process, dedupe, resume, quarantine, acknowledge.

Each test runs against a real portal sandbox over HTTP and a real Redis ledger (the memory
ledger has the same behaviour tests in test_ledger.py and runs processing in test_replay.py).
"""

from __future__ import annotations

import logging

import pytest
from pipeline_samples import order, xml_packet
from support.portal import DEMO_API_KEY

from packetworker.pipeline.archived import resolve_file
from packetworker.pipeline.ledger import PacketEntry, PacketState
from packetworker.pipeline.polling import flush_acks, poll_once
from packetworker.pipeline.processing import process_packet
from packetworker.pipeline.results import TransientError
from packetworker.targets.recording import RecordingTarget, SimulatedCrash


@pytest.fixture
def ledger(redis_ledger):
    return redis_ledger


def drain(ctx, app_area="DEMO"):
    """One poll, then every id it asked for processed in turn (what the actors do)."""
    polled = poll_once(ctx, app_area)
    results = [process_packet(ctx, app_area, i) for i in polled.new_ids + polled.requeue_ids]
    return polled, results


def test_twenty_packets_are_applied_once_and_acked_in_one_done_call(sandbox, make_ctx):
    ctx = make_ctx(sandbox)
    ids = [sandbox.enqueue("DEMO", order(f"SO{i}", lines=2), user="u1") for i in range(20)]

    polled, results = drain(ctx)
    acked = poll_once(ctx, "DEMO").acked

    assert sorted(polled.new_ids) == sorted(ids)
    assert {r.state for r in results} == {"applied"}
    assert acked == {"packet": 20}
    assert len(ctx.target.entries()) == 60
    assert [(c.packet_type, sorted(c.ids), c.rejected_ids) for c in sandbox.done_calls("DEMO")] == [
        ("packet", sorted(ids), ())
    ]
    assert sandbox.pending("DEMO") == []
    assert {ctx.ledger.get(i).state for i in ids} == {PacketState.ACKNOWLEDGED}


def test_processing_the_same_id_again_is_a_no_op(sandbox, make_ctx):
    ctx = make_ctx(sandbox)
    packet_id = sandbox.enqueue("DEMO", order("SO1", lines=3), user="u1")
    poll_once(ctx, "DEMO")
    first = process_packet(ctx, "DEMO", packet_id)
    calls = ctx.target.calls

    again = process_packet(ctx, "DEMO", packet_id)

    assert first.outcomes == {"applied": 4}
    assert again.state == "applied"
    assert again.outcomes == {}
    assert ctx.target.calls == calls
    assert ctx.ledger.get(packet_id).attempts == 1
    assert ctx.ledger.pending_acks("DEMO", "packet") == [packet_id]


def test_same_content_under_a_new_id_is_acked_not_applied(sandbox, make_ctx):
    ctx = make_ctx(sandbox)
    body = order("SO1", lines=2)
    first = sandbox.enqueue("DEMO", body, user="u1")
    second = sandbox.enqueue("DEMO", body, user="u1")
    poll_once(ctx, "DEMO")
    process_packet(ctx, "DEMO", first)

    result = process_packet(ctx, "DEMO", second)
    acked = poll_once(ctx, "DEMO").acked

    assert result.state == "duplicate"
    assert result.duplicate_of == first
    assert result.outcomes == {}
    assert len(ctx.target.entries()) == 3
    assert acked == {"packet": 2}
    assert sorted(sandbox.done_ids("DEMO")) == sorted([first, second])
    assert ctx.archive.exists(ctx.ledger.get(second).archive_key)


def test_a_quarantined_holder_hands_its_content_to_the_next_copy(sandbox, make_ctx):
    target = RecordingTarget(fail_tables={"SalesLine"})
    ctx = make_ctx(sandbox, target=target)
    body = order("SO1")
    first = sandbox.enqueue("DEMO", body, user="u1")
    second = sandbox.enqueue("DEMO", body, user="u1")
    poll_once(ctx, "DEMO")
    assert process_packet(ctx, "DEMO", first).state == "quarantined"
    target.fail_tables.clear()

    result = process_packet(ctx, "DEMO", second)

    assert result.state == "applied"
    assert result.duplicate_of is None
    assert ctx.ledger.claim_content("DEMO", ctx.ledger.get(second).sha256, "x") == second


def test_an_expired_link_is_replaced_by_a_fresh_one(sandbox, make_ctx):
    ctx = make_ctx(sandbox)
    packet_id = sandbox.enqueue("DEMO", order("SO1"), user="u1")
    poll_once(ctx, "DEMO")
    sandbox.faults.add(status=403, count=1, path_prefix=f"/{sandbox.storage.bucket}/")

    result = process_packet(ctx, "DEMO", packet_id)

    links = [r for r in sandbox.requests() if r.path.endswith("/pull/DEMO/link")]
    downloads = [r.status for r in sandbox.requests() if r.server == "storage"]
    assert result.state == "applied"
    assert len(links) == 2
    assert downloads == [403, 200]


def test_links_that_keep_expiring_are_a_transient_error(sandbox, make_ctx):
    ctx = make_ctx(sandbox, link_attempts=2)
    packet_id = sandbox.enqueue("DEMO", order("SO1"), user="u1")
    poll_once(ctx, "DEMO")
    sandbox.faults.add(status=403, count=2, path_prefix=f"/{sandbox.storage.bucket}/")

    with pytest.raises(TransientError, match="kept expiring"):
        process_packet(ctx, "DEMO", packet_id)

    entry = ctx.ledger.get(packet_id)
    assert entry.state is PacketState.DOWNLOADING
    assert entry.archive_key is None
    assert list(ctx.settings.spool_dir.iterdir()) == []


def test_a_crash_mid_packet_then_retry_applies_only_the_rest(sandbox, make_ctx):
    target = RecordingTarget(crash_after=3)
    ctx = make_ctx(sandbox, target=target, apply_batch_size=2)
    packet_id = sandbox.enqueue("DEMO", order("SO1", lines=4), user="u1")
    poll_once(ctx, "DEMO")

    with pytest.raises(SimulatedCrash):
        process_packet(ctx, "DEMO", packet_id)
    assert ctx.ledger.get(packet_id).state is PacketState.APPLYING
    sent_before_retry = len(target.entries())

    result = process_packet(ctx, "DEMO", packet_id)

    # Records 1-2 were linked (skipped without a call); record 3 reached the target before
    # the crash but not the ledger, so the target answers `unchanged`; 4-5 are new.
    assert sent_before_retry == 3
    assert result.state == "applied"
    assert result.outcomes == {"unchanged": 3, "applied": 2}
    assert [e["key"] for e in target.entries()] == [
        "SalesHeader/SO1-h",
        "SalesLine/SO1-l0",
        "SalesLine/SO1-l1",
        "SalesLine/SO1-l2",
        "SalesLine/SO1-l3",
    ]


def test_a_poison_packet_is_quarantined_after_max_attempts_then_acked(sandbox, make_ctx):
    ctx = make_ctx(sandbox, target=RecordingTarget(fail_transient=100), max_attempts=3)
    packet_id = sandbox.enqueue("DEMO", order("SO1"), user="u1")
    poll_once(ctx, "DEMO")
    for _ in range(3):
        with pytest.raises(TransientError):
            process_packet(ctx, "DEMO", packet_id)
    assert ctx.ledger.pending_acks("DEMO", "packet") == []

    result = process_packet(ctx, "DEMO", packet_id)
    acked = poll_once(ctx, "DEMO").acked

    entry = ctx.ledger.get(packet_id)
    assert result.state == "quarantined"
    assert result.error.startswith("gave up after 3 attempts: target unavailable")
    assert ctx.archive.exists(entry.archive_key)
    assert acked == {"packet": 1}
    assert sandbox.done_ids("DEMO") == [packet_id]
    assert ctx.ledger.quarantine("DEMO") == [packet_id]


def test_a_malformed_packet_is_quarantined_at_once_with_its_bytes(sandbox, make_ctx):
    ctx = make_ctx(sandbox)
    body = b"<NavMobileSync salesmancode='u1'><table tablename='T'><r>"
    packet_id = sandbox.enqueue("DEMO", body, user="u1")
    poll_once(ctx, "DEMO")

    result = process_packet(ctx, "DEMO", packet_id)

    entry = ctx.ledger.get(packet_id)
    assert result.state == "quarantined"
    assert result.error.startswith("invalid packet:")
    with ctx.archive.get(entry.archive_key) as stored:
        assert stored.read() == body
    assert ctx.ledger.pending_acks("DEMO", "packet") == [packet_id]


def test_a_hostile_packet_is_quarantined_never_expanded(sandbox, make_ctx):
    ctx = make_ctx(sandbox)
    body = b'<!DOCTYPE x [<!ENTITY a "aaaa">]><NavMobileSync salesmancode="u1"/>'
    packet_id = sandbox.enqueue("DEMO", body, user="u1")
    poll_once(ctx, "DEMO")

    result = process_packet(ctx, "DEMO", packet_id)

    assert result.state == "quarantined"
    assert "DOCTYPE" in result.error
    assert ctx.target.calls == 0


def test_a_failed_record_quarantines_with_the_target_message(sandbox, make_ctx):
    ctx = make_ctx(sandbox, target=RecordingTarget(fail_tables={"SalesLine"}))
    packet_id = sandbox.enqueue("DEMO", order("SO1"), user="u1")
    poll_once(ctx, "DEMO")

    result = process_packet(ctx, "DEMO", packet_id)

    assert result.state == "quarantined"
    assert result.error == "1 record(s) failed: SalesLine/SO1-l0: table SalesLine refused"
    assert result.outcomes == {"applied": 1, "failed": 1}


def test_bytes_never_downloaded_are_never_acked(sandbox, make_ctx):
    ctx = make_ctx(sandbox, max_attempts=2)
    packet_id = sandbox.enqueue("DEMO", order("SO1"), user="u1")
    poll_once(ctx, "DEMO")
    sandbox.faults.add(status=503, count=2, path_prefix="/mobile/erp/pull/DEMO/link")
    for _ in range(2):
        with pytest.raises(TransientError):
            process_packet(ctx, "DEMO", packet_id)

    result = process_packet(ctx, "DEMO", packet_id)

    assert result.state == "downloading"
    assert result.error.startswith("gave up after 2 attempts: portal unavailable")
    assert ctx.ledger.pending_acks("DEMO", "packet") == []
    assert sandbox.pending("DEMO") == [packet_id]


def test_a_failed_done_keeps_the_acks_queued_for_the_next_poll(sandbox, make_ctx):
    ctx = make_ctx(sandbox)
    packet_id = sandbox.enqueue("DEMO", order("SO1"), user="u1")
    drain(ctx)
    sandbox.faults.add(status=500, count=1, path_prefix="/mobile/erp/pull/DEMO/done")

    failed = poll_once(ctx, "DEMO")

    assert failed.acked == {}
    assert ctx.ledger.pending_acks("DEMO", "packet") == [packet_id]
    assert ctx.ledger.get(packet_id).state is PacketState.APPLIED
    assert poll_once(ctx, "DEMO").acked == {"packet": 1}
    assert sandbox.done_ids("DEMO") == [packet_id]


def test_the_ack_uses_the_latest_receipt_handle(sandbox, make_ctx):
    ctx = make_ctx(sandbox)
    packet_id = sandbox.enqueue("DEMO", order("SO1"), user="u1")
    drain(ctx)
    first_handle = ctx.ledger.get(packet_id).receipt_handle
    sandbox.clock.advance(sandbox.visibility_timeout + 1)  # listed again, with a new handle

    polled = poll_once(ctx, "DEMO")

    assert polled.new_ids == []
    assert ctx.ledger.get(packet_id).receipt_handle != first_handle
    assert polled.acked == {"packet": 1}
    assert [c.rejected_ids for c in sandbox.done_calls("DEMO")] == [()]
    assert sandbox.pending("DEMO") == []


def test_a_relisted_packet_that_was_already_acked_is_acked_again_not_reapplied(sandbox, make_ctx):
    ctx = make_ctx(sandbox)
    packet_id = sandbox.enqueue("DEMO", order("SO1"), user="u1")
    drain(ctx)
    # The ack is posted with a handle the portal no longer honours: it lists it again.
    ctx.ledger.record_listed(PacketEntry(packet_id, "DEMO", receipt_handle="stale"))
    poll_once(ctx, "DEMO")
    assert sandbox.pending("DEMO") == [packet_id]
    sandbox.clock.advance(sandbox.visibility_timeout + 1)

    polled, results = drain(ctx)

    assert results == []
    assert polled.acked == {"packet": 1}
    assert sandbox.pending("DEMO") == []
    assert len(ctx.target.entries()) == 2


def test_an_abandoned_packet_is_requeued_once_it_looks_stale(sandbox, make_ctx, clock):
    ctx = make_ctx(sandbox, target=RecordingTarget(crash_after=1), stale_after=600)
    packet_id = sandbox.enqueue("DEMO", order("SO1"), user="u1")
    poll_once(ctx, "DEMO")
    with pytest.raises(SimulatedCrash):
        process_packet(ctx, "DEMO", packet_id)

    assert poll_once(ctx, "DEMO").requeue_ids == []
    clock.advance(601)
    assert poll_once(ctx, "DEMO").requeue_ids == [packet_id]
    assert poll_once(ctx, "DEMO").requeue_ids == []
    assert process_packet(ctx, "DEMO", packet_id).state == "applied"


def test_a_packet_held_by_another_worker_is_skipped(sandbox, make_ctx):
    ctx = make_ctx(sandbox)
    packet_id = sandbox.enqueue("DEMO", order("SO1"), user="u1")
    poll_once(ctx, "DEMO")

    with ctx.ledger.locks.try_lock(f"packet:{packet_id}", ttl=30) as held:
        assert held is not None
        result = process_packet(ctx, "DEMO", packet_id)

    assert result.error == "busy: another worker holds the packet"
    assert result.state == "listed"
    assert ctx.target.calls == 0
    assert ctx.ledger.get(packet_id).attempts == 0


def test_file_packets_are_archived_and_resolve_from_dms_references(sandbox, make_ctx):
    ctx = make_ctx(sandbox)
    image = b"\xff\xd8\xff\xe0 not really a jpeg"
    file_id = sandbox.enqueue("DEMO", image, user="u1", packet_type="image")

    polled, results = drain(ctx)
    acked = poll_once(ctx, "DEMO").acked

    key = resolve_file(ctx, "DEMO", "u1", f"dms://{file_id}")
    assert polled.new_ids == [file_id]
    assert [r.state for r in results] == ["applied"]
    assert key.endswith(f"/{file_id}.bin")
    with ctx.archive.get(key) as stored:
        assert stored.read() == image
    assert resolve_file(ctx, "DEMO", "someone-else", f"dms://{file_id}") is None
    assert resolve_file(ctx, "DEMO", "u1", "dms://unknown") is None
    assert acked == {"file": 1}
    assert [c.packet_type for c in sandbox.done_calls("DEMO")] == ["file"]
    assert ctx.target.calls == 0


def test_every_log_line_names_app_area_and_packet_and_hides_the_key(sandbox, make_ctx, caplog):
    ctx = make_ctx(sandbox, target=RecordingTarget(fail_tables={"SalesHeader"}))
    packet_id = sandbox.enqueue("DEMO", order("SO1"), user="u1")
    poll_once(ctx, "DEMO")

    with caplog.at_level(logging.INFO, logger="packetworker.pipeline"):
        process_packet(ctx, "DEMO", packet_id)

    lines = [r for r in caplog.records if r.name == "packetworker.pipeline.processing"]
    assert lines
    assert {(r.app_area, r.packet_id) for r in lines} == {("DEMO", packet_id)}
    assert all(DEMO_API_KEY not in r.getMessage() for r in caplog.records)


def test_flush_acks_without_a_listing_uses_the_ledger_handles(sandbox, make_ctx):
    ctx = make_ctx(sandbox)
    packet_id = sandbox.enqueue("DEMO", order("SO1"), user="u1")
    drain(ctx)

    assert flush_acks(ctx, "DEMO") == {"packet": 1}
    assert sandbox.done_ids("DEMO") == [packet_id]


def test_an_unknown_packet_id_is_reported_not_raised(make_ctx):
    ctx = make_ctx()

    result = process_packet(ctx, "DEMO", "no-such-packet")

    assert (result.state, result.error) == ("unknown", "unknown packet")


def test_packets_with_duplicate_rows_apply_each_occurrence(sandbox, make_ctx):
    ctx = make_ctx(sandbox, apply_batch_size=1)
    body = xml_packet("u1", ("Customer", "c1", {"Name": "A"}), ("Customer", "c1", {"Name": "B"}))
    packet_id = sandbox.enqueue("DEMO", body, user="u1")
    poll_once(ctx, "DEMO")

    result = process_packet(ctx, "DEMO", packet_id)

    # The recording target keys on DMS_ROWID: the second occurrence is `unchanged` there,
    # but it was sent (not skipped by a ledger link of the first one).
    assert result.outcomes == {"applied": 1, "unchanged": 1}
    assert ctx.target.calls == 2


def test_a_failing_file_list_does_not_strand_the_new_data_packets(sandbox, make_ctx):
    ctx = make_ctx(sandbox)
    packet_id = sandbox.enqueue("DEMO", order("SO1", lines=1), user="u1")
    sandbox.faults.add(status=503, count=20, path_prefix="/mobile/erp/pull/DEMO?packetType=file")

    polled = poll_once(ctx, "DEMO")

    assert polled.new_ids == [packet_id]
    assert process_packet(ctx, "DEMO", packet_id).state == "applied"


def test_a_poll_whose_every_list_fails_is_transient(sandbox, make_ctx):
    ctx = make_ctx(sandbox)
    sandbox.faults.add(status=503, count=40, path_prefix="/mobile/erp/pull/DEMO?")

    with pytest.raises(TransientError, match=r"pull packet list.*pull file list"):
        poll_once(ctx, "DEMO")


class RoundTrips:
    """Counts requests sent to Redis: one per command, one per pipeline."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import redis.connection

        self.count = 0
        send = redis.connection.AbstractConnection.send_packed_command

        def counting(connection, command, check_health=True):
            self.count += 1
            return send(connection, command, check_health)

        monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counting)

    def take(self) -> int:
        count, self.count = self.count, 0
        return count


def test_redis_round_trips_do_not_grow_with_the_listing_and_stay_few_per_packet(
    sandbox, make_ctx, monkeypatch
):
    # Under load each round trip costs context switches on both sides; they add up to the
    # latency and CPU of every packet, so their number is part of the contract.
    ctx = make_ctx(sandbox, apply_batch_size=100)  # one batch per packet
    ids = [sandbox.enqueue("DEMO", order(f"SO{i}", lines=2), user="u1") for i in range(3)]
    trips = RoundTrips(monkeypatch)
    poll_once(ctx, "DEMO")  # warm-up: loads the scripts
    process_packet(ctx, "DEMO", ids[0])
    poll_once(ctx, "DEMO")
    trips.take()

    process_packet(ctx, "DEMO", ids[1])
    per_packet = trips.take()
    assert poll_once(ctx, "DEMO").acked == {"packet": 1}  # nothing visible to list
    small_poll = trips.take()
    new = [sandbox.enqueue("DEMO", order(f"SO-new{i}", lines=1), user="u1") for i in range(12)]
    process_packet(ctx, "DEMO", ids[2])
    trips.take()
    polled = poll_once(ctx, "DEMO")  # 12 new packets listed, one ack flushed
    busy_poll = trips.take()

    assert sorted(polled.new_ids) == sorted(new)
    assert polled.acked == {"packet": 1}
    assert per_packet <= 12  # lock, read, 5 state updates, claim, links x2, ack, unlock
    assert busy_poll <= small_poll + 2  # the listing is one pipeline (+ its script check)
