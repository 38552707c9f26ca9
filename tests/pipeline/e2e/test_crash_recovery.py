"""Workers killed mid-run and Redis losing its data: nothing lost, nothing applied twice.

What a Redis flush means for a deployment: Redis holds the broker's queues, the ledger
(packet states, receipt handles, record links, content hashes) and the locks. After a flush,
queued messages are gone, but no packet is: a packet is acknowledged in the portal only after
it is applied or quarantined, so every unfinished packet is still pending there and the next
polls list it again as new. Packets that were applied but not yet acknowledged are processed
again; the target's own idempotency key (for the recording target: table + DMS_ROWID; for
Business Central: `externalDocumentNumber`) turns those second applies into "unchanged", so
nothing is created twice. What a flush does lose: the duplicate-content index for packets
already acknowledged (a later re-upload of the same content under a new id would be applied
and then stopped by the target's idempotency key) and the dead-letter/quarantine listing in
Redis (the raw bytes stay in the archive).
"""

from __future__ import annotations

import random
from collections import Counter

import pytest

from .conftest import APP_AREA, order_packet
from .harness import wait_for

pytestmark = pytest.mark.e2e

LINES = 2


def enqueue_orders(sandbox, count: int) -> list[str]:
    return [
        sandbox.enqueue(APP_AREA, order_packet(n, lines=LINES), user="rep-1") for n in range(count)
    ]


def test_sigkilled_workers_lose_nothing_and_apply_nothing_twice(deployment, sandbox):
    packets = 150
    ids = enqueue_orders(sandbox, packets)
    records = packets * (1 + LINES)
    seed = random.randrange(1_000_000)
    rng = random.Random(seed)
    # Kill points: after a random number of stored records, spread over the run.
    kill_points = sorted(rng.sample(range(records // 20, records * 3 // 4), 6))
    # Kills can land on the same packet repeatedly; attempts must not run out here.
    deployment.configure(max_attempts=50)
    deployment.start_clock()

    worker = deployment.start_worker(processes=2, threads=2)
    for kill_at in kill_points:
        wait_for(
            lambda at=kill_at: len(deployment.recorded()) >= at,
            timeout=60,
            what=f"{kill_at} records stored (seed {seed})",
        )
        worker.kill()
        worker = deployment.start_worker(processes=2, threads=2)
    wait_for(
        lambda: set(sandbox.done_ids(APP_AREA)) >= set(ids),
        timeout=120,
        what=f"every packet acknowledged (seed {seed})",
    )

    recorded = deployment.recorded()
    assert len(kill_points) >= 5
    assert len(recorded) == records
    assert Counter(item["packet_id"] for item in recorded) == {i: 1 + LINES for i in ids}
    ledger = deployment.ledger()
    assert {ledger.get(i).result for i in ids} == {"applied"}
    assert sandbox.pending(APP_AREA) == []


def test_redis_flushed_mid_run_loses_nothing_and_applies_nothing_twice(deployment, sandbox):
    packets = 100
    ids = enqueue_orders(sandbox, packets)
    deployment.start_worker(processes=2, threads=2)
    deployment.start_clock()
    wait_for(
        lambda: len(sandbox.done_ids(APP_AREA)) >= packets // 3,
        timeout=60,
        what="a third of the packets acknowledged",
    )

    assert deployment.flush_redis() > 0
    wait_for(
        lambda: set(sandbox.done_ids(APP_AREA)) >= set(ids),
        timeout=90,
        what="every packet acknowledged after the flush",
    )

    recorded = deployment.recorded()
    assert len(recorded) == packets * (1 + LINES)
    assert Counter(item["packet_id"] for item in recorded) == {i: 1 + LINES for i in ids}
    assert sandbox.pending(APP_AREA) == []
