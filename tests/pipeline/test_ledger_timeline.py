"""The ledger's timeline, result index and last poll, on both backends."""

from __future__ import annotations

from packetworker.pipeline.ledger import (
    MAX_EVENTS,
    PacketEntry,
    PacketEvent,
    PacketState,
    RedisLedger,
)


def listed(packet_id: str = "p1", handle: str = "h1") -> PacketEntry:
    return PacketEntry(packet_id=packet_id, app_area="DEMO", receipt_handle=handle, url="/p")


def test_each_state_change_and_error_is_a_timeline_step_with_time_and_attempt(ledger, clock):
    ledger.record_listed(listed())
    clock.advance(1)
    ledger.update("p1", state=PacketState.DOWNLOADING, attempts=1)
    clock.advance(1)
    ledger.update("p1", last_error="portal unavailable: 503")
    ledger.update("p1", attempts=2)  # no state change, no error: no step
    clock.advance(1)
    ledger.update("p1", state=PacketState.ARCHIVED, note="downloaded: 10 bytes")
    ledger.update("p1", state=PacketState.APPLIED, result="duplicate", duplicate_of="p0")
    ledger.mark_acknowledged("DEMO", "packet", ["p1"])

    steps = [(e.event, e.attempt, e.detail) for e in ledger.events("p1")]

    assert steps == [
        ("listed", 0, None),
        ("downloading", 1, None),
        ("error", 1, "portal unavailable: 503"),
        ("archived", 2, "downloaded: 10 bytes"),
        ("duplicate", 2, None),
        ("acknowledged", 2, None),
    ]
    times = [e.at for e in ledger.events("p1")]
    assert times == sorted(times)
    assert times[0] < times[1] < times[2] < times[3]


def test_a_long_timeline_keeps_its_latest_steps(ledger):
    ledger.record_listed(listed())
    for attempt in range(1, MAX_EVENTS + 6):
        ledger.update("p1", attempts=attempt, last_error=f"failure {attempt}")

    steps = ledger.events("p1")

    assert len(steps) == MAX_EVENTS
    assert steps[-1].detail == f"failure {MAX_EVENTS + 5}"
    assert steps[0].detail == "failure 6"


def test_a_new_life_of_a_packet_id_starts_a_new_timeline_in_redis(redis_namespace, clock):
    client, namespace = redis_namespace
    ledger = RedisLedger(client, namespace, retention=3600, clock=clock)
    ledger.record_listed(listed())
    ledger.update("p1", state=PacketState.DOWNLOADING, attempts=1)
    client.delete(f"{namespace}:packet:p1")  # its entry lost, its timeline left over

    ledger.record_listed(listed())

    assert [e.event for e in ledger.events("p1")] == ["listed"]


def test_steps_that_are_no_state_are_added_only_to_known_packets(ledger):
    ledger.record_listed(listed())
    ledger.add_events("p1", [PacketEvent("re-driven", 5.0, 0, "was quarantined")])
    ledger.add_events("nobody", [PacketEvent("re-driven", 5.0)])

    assert ledger.events("p1")[-1] == PacketEvent("re-driven", 5.0, 0, "was quarantined")
    assert ledger.events("nobody") == []


def test_results_are_counted_acknowledged_or_not_and_leave_on_redrive(ledger):
    for packet_id in ("a", "b", "c"):
        ledger.record_listed(listed(packet_id, handle=f"h-{packet_id}"))
    ledger.update("a", state=PacketState.APPLIED, result="applied")
    ledger.update("b", state=PacketState.QUARANTINED, result="quarantined")
    ledger.update("c", state=PacketState.QUARANTINED, result="quarantined")
    ledger.mark_acknowledged("DEMO", "packet", ["a", "b", "c"])

    assert ledger.result_counts("DEMO") == {"applied": 1, "quarantined": 2}
    assert ledger.counts("DEMO")["acknowledged"] == 3

    ledger.update("c", state=PacketState.ARCHIVED, result=None)  # re-driven

    assert ledger.result_counts("DEMO") == {"applied": 1, "quarantined": 1}


def test_the_last_poll_is_kept_per_app_area(ledger, clock):
    assert ledger.last_poll("DEMO") is None
    ledger.note_poll("DEMO", "3 listed, 1 new")

    assert ledger.last_poll("DEMO") == {"at": clock(), "result": "3 listed, 1 new"}
