"""The packets of a group are prepared (locked, downloaded, archived, deduplicated) and settled
by a few threads of the group's own (`group_prepare_concurrency`), each answered for alone and
in order; so are those of a target without documents, each processed on its own. Real portal
sandbox over HTTP; its in-flight gate proves the concurrency."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from pipeline_samples import order

from packetworker.packets.assembly import DocumentShape
from packetworker.pipeline.polling import poll_once
from packetworker.pipeline.processing import process_packets
from packetworker.pipeline.results import TransientError
from packetworker.sandbox.base import WAIT_TIMEOUT
from packetworker.targets.recording import RecordingTarget


class DocumentTarget(RecordingTarget):
    """Records; every record a document of its own, so packets are processed in groups."""

    documents = DocumentShape({})


def pending_group(sandbox, ctx, count: int) -> list[str]:
    ids = [sandbox.enqueue("DEMO", order(f"SO{n}"), user="u1") for n in range(count)]
    poll_once(ctx, "DEMO")
    return ids


# A target with documents applies the group's records in one call; one without, each packet
# on its own (`process_packet`).
TARGETS = pytest.mark.parametrize("target", [DocumentTarget, RecordingTarget])


@TARGETS
def test_a_groups_packets_are_downloaded_at_once(sandbox, make_ctx, target):
    ctx = make_ctx(sandbox, target=target(), group_prepare_concurrency=4)
    ids = pending_group(sandbox, ctx, 4)

    with ThreadPoolExecutor(1) as caller:
        with sandbox.faults.holding():
            group = caller.submit(process_packets, ctx, "DEMO", ids)
            # Held inside the portal, the requests of one packet at a time never reach four.
            all_in_flight = sandbox.faults.wait_in_flight(4)
        results = group.result()

    assert all_in_flight
    assert [r.packet_id for r in results] == ids
    assert [r.state for r in results] == ["applied"] * 4


@TARGETS
def test_a_failed_preparation_answers_for_its_packet_only(sandbox, make_ctx, target):
    ctx = make_ctx(sandbox, target=target(), group_prepare_concurrency=4)
    ids = pending_group(sandbox, ctx, 4)
    sandbox.faults.add(status=503, count=1, path_prefix="/mobile/erp/pull/DEMO/link")

    results = process_packets(ctx, "DEMO", ids)

    (failed,) = [n for n, r in enumerate(results) if isinstance(r, TransientError)]
    assert ctx.ledger.get(ids[failed]).last_error.startswith("portal unavailable")
    others = results[:failed] + results[failed + 1 :]
    assert [r.packet_id for r in others] == ids[:failed] + ids[failed + 1 :]
    assert [r.state for r in others] == ["applied"] * 3
    assert sorted(ctx.ledger.pending_acks("DEMO", "packet")) == sorted(r.packet_id for r in others)


def test_a_groups_packets_are_settled_at_once(sandbox, make_ctx, monkeypatch):
    ctx = make_ctx(sandbox, target=DocumentTarget(), group_prepare_concurrency=4)
    ids = pending_group(sandbox, ctx, 4)
    queue_ack, together = ctx.ledger.queue_ack, threading.Barrier(4, timeout=WAIT_TIMEOUT)

    def queued_together(*args) -> None:  # passes only once the four acks are queued at once
        together.wait()
        queue_ack(*args)

    monkeypatch.setattr(ctx.ledger, "queue_ack", queued_together)

    results = process_packets(ctx, "DEMO", ids)

    assert [r.state for r in results] == ["applied"] * 4
    assert sorted(ctx.ledger.pending_acks("DEMO", "packet")) == sorted(ids)


@TARGETS
def test_with_a_concurrency_of_one_the_caller_prepares_each_packet_in_turn(
    sandbox, make_ctx, target
):
    ctx = make_ctx(sandbox, target=target(), group_prepare_concurrency=1)
    ids = pending_group(sandbox, ctx, 3)
    portal_factory, downloads = ctx.portal_factory, []

    def watched(app_area: str):
        downloads.append(threading.current_thread())
        return portal_factory(app_area)

    watched.clients = portal_factory.clients
    ctx.portal_factory = watched

    results = process_packets(ctx, "DEMO", ids)

    assert downloads == [threading.current_thread()] * 3
    assert [r.state for r in results] == ["applied"] * 3
    linked = [r.packet_id for r in results]
    assert linked == ids


def group_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("group-packet")]


@TARGETS
def test_a_group_leaves_no_thread_behind(sandbox, make_ctx, target):
    ctx = make_ctx(sandbox, target=target(), group_prepare_concurrency=4)
    ids = pending_group(sandbox, ctx, 4)

    process_packets(ctx, "DEMO", ids)

    assert group_threads() == []


def test_a_group_that_fails_waits_for_its_threads_before_releasing_its_locks(
    sandbox, make_ctx, monkeypatch
):
    ctx = make_ctx(sandbox, target=DocumentTarget(), group_prepare_concurrency=4)
    ids = pending_group(sandbox, ctx, 4)
    get, released = ctx.ledger.get, []

    def broken(packet_id: str):
        if packet_id == ids[1]:
            raise RuntimeError("ledger unavailable")
        return get(packet_id)

    def release(handle) -> None:
        released.append(group_threads())
        release_lock(handle)

    release_lock = ctx.ledger.locks.release
    monkeypatch.setattr(ctx.ledger, "get", broken)
    monkeypatch.setattr(ctx.ledger.locks, "release", release)

    with pytest.raises(RuntimeError, match="ledger unavailable"):
        process_packets(ctx, "DEMO", ids)

    assert released == [[]] * 4  # every lock released, each once no group thread was left
    assert group_threads() == []
