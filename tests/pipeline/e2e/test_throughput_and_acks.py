"""Many packets through real worker processes: each applied once, all acknowledged in batches."""

from __future__ import annotations

from collections import Counter

import pytest

from .conftest import APP_AREA, order_packet
from .harness import wait_for

# Representative of the e2e suite on RabbitMQ too: every packet applied once, acks batched.
pytestmark = pytest.mark.e2e

PACKETS = 200
LINES = 2  # records per packet: one header + LINES lines


def test_every_packet_is_applied_once_and_acknowledged(deployment, sandbox):
    ids = [
        sandbox.enqueue(APP_AREA, order_packet(n, lines=LINES), user="rep-1")
        for n in range(PACKETS)
    ]

    deployment.start_worker(processes=2, threads=2)
    deployment.start_clock()
    wait_for(
        lambda: set(sandbox.done_ids(APP_AREA)) >= set(ids),
        timeout=90,
        what="every packet acknowledged",
    )

    recorded = deployment.recorded()
    assert Counter(item["packet_id"] for item in recorded) == {i: 1 + LINES for i in ids}
    assert len({item["key"] for item in recorded}) == PACKETS * (1 + LINES)
    assert sandbox.pending(APP_AREA) == []


def test_done_calls_are_batched_per_poll_cycle(deployment, sandbox):
    ids = [sandbox.enqueue(APP_AREA, order_packet(n), user="rep-1") for n in range(PACKETS)]

    worker = deployment.start_worker(processes=2, threads=2)
    deployment.start_clock()
    wait_for(
        lambda: set(sandbox.done_ids(APP_AREA)) >= set(ids),
        timeout=90,
        what="every packet acknowledged",
    )

    calls = sandbox.done_calls(APP_AREA)
    polls = [line for line in worker.log_lines() if line["msg"].startswith("Poll cycle:")]
    assert {call.packet_type for call in calls} == {"packet"}
    assert len(calls) <= len(polls)
    assert sorted(i for call in calls for i in call.ids if i not in call.rejected_ids) == sorted(
        ids
    )
