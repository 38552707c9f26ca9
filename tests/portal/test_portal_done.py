"""Done receipts: one call for many entries, latest handles only, visibility timeout."""

from __future__ import annotations

import pytest
from support.packets import xml_packet


@pytest.mark.parametrize("fmt", ["xml", "json"])
def test_done_removes_the_listed_packets_in_one_call(portal_sandbox, portal_client, fmt):
    ids = [portal_sandbox.enqueue("DEMO", xml_packet(), user=f"user{i}") for i in range(3)]
    entries = portal_client.pull()

    portal_client.done(entries, format=fmt)

    assert portal_sandbox.pending("DEMO") == []
    assert sorted(portal_sandbox.done_ids("DEMO")) == sorted(ids)
    [call] = portal_sandbox.done_calls("DEMO")
    assert (call.format, call.packet_type, call.rejected_ids) == (fmt, "packet", ())
    assert sorted(call.ids) == sorted(ids)


def test_done_for_files_names_the_file_list(portal_sandbox, portal_client):
    portal_sandbox.enqueue("DEMO", b"\xff\xd8\xff", user="user1", packet_type="image")

    portal_client.done(portal_client.pull(packet_type="file"), packet_type="file")

    assert portal_sandbox.pending("DEMO") == []
    assert portal_sandbox.done_calls("DEMO")[0].packet_type == "file"


def test_done_with_no_entries_sends_nothing(portal_sandbox, portal_client):
    portal_client.done([])

    assert portal_sandbox.requests() == []


def test_listed_packets_stay_hidden_until_the_visibility_timeout(portal_sandbox, portal_client):
    portal_sandbox.enqueue("DEMO", xml_packet(), user="user1")
    [first] = portal_client.pull()

    assert portal_client.pull() == []
    portal_sandbox.clock.advance(portal_sandbox.visibility_timeout + 1)
    [again] = portal_client.pull()

    assert again.id == first.id
    assert again.receipt_handle != first.receipt_handle


def test_stale_receipt_handle_leaves_the_packet_pending(portal_sandbox, portal_client):
    packet_id = portal_sandbox.enqueue("DEMO", xml_packet(), user="user1")
    [stale] = portal_client.pull()
    portal_sandbox.clock.advance(portal_sandbox.visibility_timeout + 1)
    [latest] = portal_client.pull()

    portal_client.done([stale])

    assert portal_sandbox.pending("DEMO") == [packet_id]
    assert portal_sandbox.done_calls("DEMO")[0].rejected_ids == (packet_id,)
    portal_client.done([latest])
    assert portal_sandbox.pending("DEMO") == []
