"""The portal misbehaving: outages, refused connections, links expiring, duplicate uploads."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from packetworker.pipeline.broker import PACKETS_QUEUE, POLL_QUEUE

from .conftest import APP_AREA, order_packet
from .harness import wait_for

pytestmark = pytest.mark.e2e

LINK_TTL = 900  # the sandbox's (and the real API's) 15 minutes


def test_worker_rides_out_refused_connections_and_503s(deployment, sandbox):
    ids = [sandbox.enqueue(APP_AREA, order_packet(n), user="rep-1") for n in range(20)]
    sandbox.faults.refuse(count=15)
    sandbox.faults.add(status=503, count=30)

    worker = deployment.start_worker(processes=1, threads=2)
    deployment.start_clock()
    wait_for(
        lambda: set(sandbox.done_ids(APP_AREA)) >= set(ids),
        timeout=90,
        what="every packet acknowledged after the outage",
    )

    assert sandbox.faults.pending() == []
    assert worker.running()
    assert Counter(item["packet_id"] for item in deployment.recorded()) == {i: 3 for i in ids}


def test_a_link_expiring_before_its_download_is_replaced(deployment, sandbox):
    packet_id = sandbox.enqueue(APP_AREA, order_packet(1), user="rep-1")
    # Hold the first download long enough to move the sandbox clock past the link's expiry
    # while the request is on its way.
    sandbox.faults.slow(2.0, count=1, path_prefix=f"/{sandbox.storage.bucket}/")

    deployment.start_worker(processes=1, threads=1)
    deployment.start_clock()
    wait_for(lambda: sandbox.faults.pending() == [], timeout=30, what="the download to start")
    sandbox.clock.advance(LINK_TTL + 60)
    wait_for(
        lambda: packet_id in sandbox.done_ids(APP_AREA), timeout=30, what="the packet acknowledged"
    )

    downloads = [r for r in sandbox.requests() if r.server == "storage" and r.method == "GET"]
    assert [r.status for r in downloads] == [403, 200]
    assert {item["packet_id"] for item in deployment.recorded()} == {packet_id}


def test_links_are_asked_for_at_processing_time_not_listing_time(deployment, sandbox):
    ids = [sandbox.enqueue(APP_AREA, order_packet(n), user="rep-1") for n in range(5)]
    # Only polls run at first: packets are listed and queued, none processed.
    deployment.start_worker(processes=1, threads=1, queues=(POLL_QUEUE,))
    deployment.start_clock()
    ledger = deployment.ledger()
    wait_for(lambda: all(ledger.get(i) for i in ids), timeout=30, what="the packets listed")

    sandbox.clock.advance(LINK_TTL + 60)  # queued longer than any link lives
    deployment.start_worker(processes=1, threads=2, queues=(PACKETS_QUEUE,))
    wait_for(
        lambda: set(sandbox.done_ids(APP_AREA)) >= set(ids),
        timeout=30,
        what="every packet acknowledged",
    )

    downloads = [r for r in sandbox.requests() if r.server == "storage" and r.method == "GET"]
    assert [r.status for r in downloads] == [200] * len(ids)
    assert Counter(item["packet_id"] for item in deployment.recorded()) == {i: 3 for i in ids}


def test_same_content_under_a_new_id_is_acknowledged_not_applied_twice(deployment, sandbox):
    body = order_packet(7)
    first = sandbox.enqueue(APP_AREA, body, user="rep-1")
    deployment.start_worker(processes=1, threads=2)
    deployment.start_clock()
    wait_for(lambda: first in sandbox.done_ids(APP_AREA), timeout=30, what="the first copy acked")

    again = sandbox.enqueue(APP_AREA, body, user="rep-1")
    wait_for(lambda: again in sandbox.done_ids(APP_AREA), timeout=30, what="the copy acked")

    entry = deployment.ledger().get(again)
    assert (entry.result, entry.duplicate_of) == ("duplicate", first)
    assert {item["packet_id"] for item in deployment.recorded()} == {first}
    assert len(deployment.recorded()) == 3


def test_storage_down_is_one_warning_per_retry_with_its_reason_and_no_error(deployment, sandbox):
    packet_id = sandbox.enqueue(APP_AREA, order_packet(1), user="rep-1")
    # Each delivery's download is tried twice (`dm_http_retries`): two deliveries fail.
    sandbox.faults.add(status=503, count=4, path_prefix=f"/{sandbox.storage.bucket}/")
    worker = deployment.start_worker(processes=1, threads=1)
    deployment.start_clock()
    wait_for(lambda: packet_id in sandbox.done_ids(APP_AREA), timeout=60, what="the ack")
    worker.terminate(timeout=15)

    lines = worker.log_lines()
    retried = [
        line
        for line in lines
        if line.get("packet_id") == packet_id and line["msg"].startswith("Transient failure")
    ]
    assert [line["level"] for line in retried] == ["warning", "warning"]
    assert [
        re.match(r"Transient failure, retry (\d) of \d+ in \d+\.\ds: ", line["msg"])[1]
        for line in retried
    ] == ["1", "2"]
    assert all(
        "HTTP 503" in line["msg"] and "X-Amz-Signature=***" in line["msg"] for line in retried
    )
    assert [line["msg"] for line in lines if line["level"] in ("error", "critical")] == []
    assert [line["msg"] for line in lines if "exc" in line] == []
    assert deployment.ledger().get(packet_id).result == "applied"
