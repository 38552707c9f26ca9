"""Ledger behaviour, the same on Redis and in memory."""

from __future__ import annotations

import pytest

from packetworker.pipeline.ledger import MemoryLedger, PacketEntry, PacketState, RedisLedger
from packetworker.targets.base import PendingWrite, WriteJournal


def listed(packet_id: str = "p1", *, app_area: str = "DEMO", handle: str = "h1", **extra):
    return PacketEntry(
        packet_id=packet_id, app_area=app_area, receipt_handle=handle, user="u1", **extra
    )


def test_first_listing_creates_a_listed_entry(ledger, clock):
    entry, created = ledger.record_listed(listed())

    assert created is True
    assert entry.state is PacketState.LISTED
    assert entry.attempts == 0
    assert entry.listed_at == clock.now
    assert ledger.ids("DEMO", PacketState.LISTED) == ["p1"]


def test_relisting_keeps_state_and_takes_the_latest_receipt_handle(ledger):
    ledger.record_listed(listed(handle="h1"))
    ledger.update("p1", state=PacketState.APPLYING, attempts=2)

    entry, created = ledger.record_listed(listed(handle="h2"))

    assert created is False
    assert entry.receipt_handle == "h2"
    assert entry.state is PacketState.APPLYING
    assert entry.attempts == 2


def test_recording_a_listing_at_once_is_recording_each_entry_in_order(ledger, clock):
    ledger.record_listed(listed("p1", handle="h1"))
    ledger.update("p1", state=PacketState.APPLYING, attempts=1)

    recorded = ledger.record_listed_many(
        [listed("p1", handle="h2"), listed("p2", handle="h3"), listed("p2", handle="h4")]
    )

    assert [(e.packet_id, e.receipt_handle, e.state, created) for e, created in recorded] == [
        ("p1", "h2", PacketState.APPLYING, False),
        ("p2", "h3", PacketState.LISTED, True),
        ("p2", "h4", PacketState.LISTED, False),
    ]
    assert recorded[1][0].listed_at == clock.now
    assert ledger.get("p2").receipt_handle == "h4"
    assert ledger.ids("DEMO", PacketState.LISTED) == ["p2"]
    assert ledger.record_listed_many([]) == []


def test_get_many_returns_the_known_entries_by_id(ledger):
    ledger.record_listed(listed("p1"))
    ledger.record_listed(listed("p2", handle="h2"))

    found = ledger.get_many(["p2", "nope", "p1"])

    assert {k: v.receipt_handle for k, v in found.items()} == {"p1": "h1", "p2": "h2"}
    assert ledger.get_many([]) == {}


def test_update_returns_the_entry_even_when_a_terminal_one_expires_at_once(redis_namespace, clock):
    client, namespace = redis_namespace
    ledger = RedisLedger(client, namespace, retention=0, clock=clock)
    ledger.record_listed(listed("p1"))

    entry = ledger.update("p1", state=PacketState.APPLIED, result="applied")

    assert (entry.state, entry.result) == (PacketState.APPLIED, "applied")
    assert ledger.get("p1") is None


def test_acknowledging_skips_unfinished_and_unknown_packets_in_one_call(ledger):
    for packet_id in ("p1", "p2", "p3"):
        ledger.record_listed(listed(packet_id))
        ledger.queue_ack("DEMO", "packet", packet_id)
    ledger.update("p1", state=PacketState.APPLIED, result="applied")
    ledger.update("p3", state=PacketState.QUARANTINED, result="quarantined")
    ledger.queue_ack("DEMO", "packet", "gone")

    ledger.mark_acknowledged("DEMO", "packet", ["p1", "p2", "p3", "gone"])

    states = {i: ledger.get(i).state for i in ("p1", "p2", "p3")}
    assert states == {
        "p1": PacketState.ACKNOWLEDGED,
        "p2": PacketState.LISTED,
        "p3": PacketState.ACKNOWLEDGED,
    }
    assert ledger.get("gone") is None
    assert ledger.pending_acks("DEMO", "packet") == []
    assert ledger.quarantine("DEMO") == ["p3"]


def test_update_moves_the_state_index_and_clears_none_fields(ledger, clock):
    ledger.record_listed(listed(last_error="boom"))
    clock.advance(5)

    entry = ledger.update("p1", state=PacketState.ARCHIVED, last_error=None, sha256="ab")

    assert entry.state is PacketState.ARCHIVED
    assert entry.last_error is None
    assert entry.sha256 == "ab"
    assert entry.updated_at == clock.now
    assert ledger.ids("DEMO", PacketState.LISTED) == []
    assert ledger.ids("DEMO", PacketState.ARCHIVED) == ["p1"]


def test_update_of_an_unknown_packet_raises_key_error(ledger):
    with pytest.raises(KeyError, match="nope"):
        ledger.update("nope", state=PacketState.APPLIED)


def test_content_claim_goes_to_the_first_packet_only(ledger):
    assert ledger.claim_content("DEMO", "sha", "p1") == "p1"
    assert ledger.claim_content("DEMO", "sha", "p2") == "p1"
    assert ledger.claim_content("OTHER", "sha", "p2") == "p2"


def test_claim_is_replaced_only_if_the_old_holder_still_holds_it(ledger):
    ledger.claim_content("DEMO", "sha", "p1")

    assert ledger.replace_claim("DEMO", "sha", old="p9", new="p2") is False
    assert ledger.replace_claim("DEMO", "sha", old="p1", new="p2") is True
    assert ledger.claim_content("DEMO", "sha", "p3") == "p2"


def test_ack_queue_per_list_type_and_acknowledge_moves_state(ledger):
    ledger.record_listed(listed("p1"))
    ledger.record_listed(listed("f1", list_type="file"))
    ledger.update("p1", state=PacketState.APPLIED, result="applied")
    ledger.queue_ack("DEMO", "packet", "p1")
    ledger.queue_ack("DEMO", "file", "f1")

    ledger.mark_acknowledged("DEMO", "packet", ["p1"])

    assert ledger.pending_acks("DEMO", "packet") == []
    assert ledger.pending_acks("DEMO", "file") == ["f1"]
    assert ledger.get("p1").state is PacketState.ACKNOWLEDGED


def test_acknowledging_a_packet_being_redriven_keeps_its_state(ledger):
    ledger.record_listed(listed("p1"))
    ledger.update("p1", state=PacketState.ARCHIVED)
    ledger.queue_ack("DEMO", "packet", "p1")

    ledger.mark_acknowledged("DEMO", "packet", ["p1"])

    assert ledger.get("p1").state is PacketState.ARCHIVED
    assert ledger.pending_acks("DEMO", "packet") == []


def test_links_return_only_applied_record_keys(ledger):
    ledger.record_listed(listed())
    ledger.add_links("p1", {"SalesLine/r1": "ref-1", "SalesLine/r2": ""})

    assert ledger.links("p1", ["SalesLine/r1", "SalesLine/r2", "SalesLine/r3"]) == {
        "SalesLine/r1": "ref-1",
        "SalesLine/r2": "",
    }


def test_stale_lists_pending_packets_not_updated_since(ledger, clock):
    ledger.record_listed(listed("old"))
    ledger.record_listed(listed("done"))
    ledger.update("done", state=PacketState.APPLIED, result="applied")
    clock.advance(100)
    ledger.record_listed(listed("new"))

    assert ledger.stale("DEMO", before=clock.now - 50) == ["old"]


def test_counts_and_oldest_pending_per_app_area(ledger, clock):
    ledger.record_listed(listed("p1"))
    first = clock.now
    clock.advance(10)
    ledger.record_listed(listed("p2"))
    ledger.record_listed(listed("x1", app_area="OTHER"))
    ledger.update("p2", state=PacketState.APPLIED, result="applied")

    counts = ledger.counts("DEMO")

    assert counts["listed"] == 1
    assert counts["applied"] == 1
    assert sum(counts.values()) == 2
    assert ledger.oldest_pending("DEMO") == first
    assert ledger.app_areas() == ["DEMO", "OTHER"]


def test_quarantine_survives_the_ack_and_leaves_on_redrive(ledger):
    ledger.record_listed(listed())
    ledger.update("p1", state=PacketState.QUARANTINED, result="quarantined")
    ledger.mark_acknowledged("DEMO", "packet", ["p1"])

    assert ledger.quarantine("DEMO") == ["p1"]
    assert ledger.get("p1").state is PacketState.ACKNOWLEDGED

    ledger.update("p1", state=PacketState.ARCHIVED, result=None, attempts=0)

    assert ledger.quarantine("DEMO") == []


def test_a_finished_packet_sent_back_to_work_is_pending_again(ledger, clock):
    ledger.record_listed(listed("p1"))
    first = clock.now
    clock.advance(10)
    ledger.update("p1", state=PacketState.APPLIED, result="applied")
    assert ledger.oldest_pending("DEMO") is None

    ledger.update("p1", state=PacketState.ARCHIVED, result=None)

    assert ledger.oldest_pending("DEMO") == first
    assert ledger.result_counts("DEMO") == {}


def test_a_finished_packet_sent_back_to_work_stops_expiring_in_redis(redis_namespace, clock):
    client, namespace = redis_namespace
    ledger = RedisLedger(client, namespace, retention=3600, clock=clock)
    ledger.record_listed(listed("p1"))
    ledger.add_links("p1", {"T/r1": "x"})
    ledger.update("p1", state=PacketState.APPLIED, result="applied")
    keys = [f"{namespace}:{kind}:p1" for kind in ("packet", "links", "events")]
    assert all(client.ttl(key) > 0 for key in keys)

    ledger.update("p1", state=PacketState.ARCHIVED, result=None)

    assert [client.ttl(key) for key in keys] == [-1, -1, -1]


def test_packet_lock_is_exclusive_until_released(ledger):
    with (
        ledger.locks.try_lock("packet:p1", ttl=30) as first,
        ledger.locks.try_lock("packet:p1", ttl=30) as second,
    ):
        assert first is not None
        assert second is None
    with ledger.locks.try_lock("packet:p1", ttl=30) as again:
        assert again is not None


def test_applied_entries_expire_after_retention_in_redis(redis_namespace, clock):
    client, namespace = redis_namespace
    ledger = RedisLedger(client, namespace, retention=3600, clock=clock)
    ledger.record_listed(listed())
    ledger.add_links("p1", {"T/r1": "x"})
    ledger.claim_content("DEMO", "sha", "p1")

    ledger.update("p1", state=PacketState.APPLIED, result="applied")

    assert 3590 <= client.ttl(f"{namespace}:packet:p1") <= 3600
    assert 3590 <= client.ttl(f"{namespace}:links:p1") <= 3600
    assert 3590 <= client.ttl(f"{namespace}:DEMO:content:sha") <= 3600


def test_quarantined_and_pending_entries_never_expire_in_redis(redis_namespace, clock):
    client, namespace = redis_namespace
    ledger = RedisLedger(client, namespace, retention=3600, clock=clock)
    ledger.record_listed(listed("p1"))
    ledger.record_listed(listed("p2"))
    ledger.update("p1", state=PacketState.QUARANTINED, result="quarantined")
    ledger.mark_acknowledged("DEMO", "packet", ["p1"])

    assert client.ttl(f"{namespace}:packet:p1") == -1
    assert client.ttl(f"{namespace}:packet:p2") == -1


def test_memory_entries_expire_after_retention_and_prune_drops_them(clock):
    ledger = MemoryLedger(retention=3600, clock=clock)
    ledger.record_listed(listed())
    ledger.add_links("p1", {"T/r1": "x"})
    ledger.claim_content("DEMO", "sha", "p1")
    ledger.update("p1", state=PacketState.APPLIED, result="applied")
    clock.advance(3601)

    assert ledger.get("p1") is None
    assert ledger.links("p1", ["T/r1"]) == {}
    assert ledger.claim_content("DEMO", "sha", "p2") == "p2"
    assert ledger.counts("DEMO")["applied"] == 0


def test_redis_prune_drops_index_members_of_expired_packets(redis_namespace, clock):
    client, namespace = redis_namespace
    ledger = RedisLedger(client, namespace, retention=3600, clock=clock)
    ledger.record_listed(listed())
    ledger.update("p1", state=PacketState.APPLIED, result="applied")
    client.delete(f"{namespace}:packet:p1")  # what Redis does when the TTL runs out
    clock.advance(3601)

    assert ledger.prune("DEMO") == 1
    assert ledger.ids("DEMO", PacketState.APPLIED) == []


# --- writes in doubt (the targets' write journal) ------------------------------------------


def test_writes_in_doubt_are_kept_per_packet_until_cleared(ledger, clock):
    memo = PendingWrite("salesCreditMemos CM-1", "POST salesCreditMemos", {"no": "CM-1"}, 10.0)
    row = PendingWrite(
        "customerPayments P-1 row 0", "POST customerPayments", {"amount": "-5"}, 11.0
    )
    ledger.record_in_doubt("p1", [memo, row])
    ledger.record_in_doubt("p2", [memo])

    assert isinstance(ledger, WriteJournal)
    assert ledger.writes_in_doubt("p1") == {memo.key: memo, row.key: row}
    ledger.clear_in_doubt("p1", [memo.key, "never recorded"])
    assert ledger.writes_in_doubt("p1") == {row.key: row}
    assert ledger.writes_in_doubt("p2") == {memo.key: memo}
    ledger.clear_in_doubt("p1", [row.key])
    assert ledger.writes_in_doubt("p1") == {}
    assert ledger.writes_in_doubt("unknown") == {}


def test_a_write_recorded_again_keeps_its_latest_send_time(ledger):
    ledger.record_in_doubt("p1", [PendingWrite("k", "POST salesOrders", {}, 10.0)])
    ledger.record_in_doubt("p1", [PendingWrite("k", "POST salesOrders", {}, 700.0)])

    assert ledger.writes_in_doubt("p1")["k"].sent_at == 700.0


def test_writes_in_doubt_outlive_the_packet_reaching_a_final_state(ledger):
    ledger.record_listed(listed("p1"))
    ledger.record_in_doubt("p1", [PendingWrite("k", "POST salesOrders", {}, 1.0)])
    ledger.update("p1", state=PacketState.QUARANTINED, result="quarantined")

    assert list(ledger.writes_in_doubt("p1")) == ["k"]
