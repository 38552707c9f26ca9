"""Shutdown as Heroku and honcho signal it: SIGTERM to every process of the worker's group.

Each dramatiq worker process then gets SIGTERM twice (from the group, and forwarded by the
dramatiq main process); the repeat must not kill it. In-flight packets finish within the
grace or give their locks back, a poll cut short gives back the poll lock, and a busy packet
is retried with one INFO line, never an ERROR with a traceback.
"""

from __future__ import annotations

import os
import signal
from urllib.parse import urlsplit

import pytest

from .conftest import APP_AREA, order_packet
from .harness import Process, wait_for
from .held_target import applying_flag, release_flag

pytestmark = pytest.mark.e2e

KILLED = "Killing worker process"
REPEAT_SEEN = ("again while stopping", KILLED)


def group_sigterm(process: Process) -> None:
    """What Heroku and honcho do: SIGTERM to the main process and its workers at once.

    The worker process then gets a second SIGTERM, forwarded by the dramatiq main process.
    Two signals that arrive before Python runs the handler count as one, so the test makes
    the order that kills today certain: once the worker process has begun stopping, the
    main process is signalled again and forwards another SIGTERM."""
    os.killpg(process.pid, signal.SIGTERM)
    wait_for(
        lambda: "Stopping worker process" in process.output(),
        timeout=15,
        what="the worker process to begin stopping",
    )
    os.kill(process.pid, signal.SIGTERM)
    wait_for(
        lambda: any(text in process.output() for text in REPEAT_SEEN),
        timeout=15,
        what="the repeated SIGTERM to reach the worker process",
    )


def exit_code(process: Process, *, within: float) -> int:
    """Wait for `process` to exit; fails the test if it takes longer than `within` s."""
    return process.popen.wait(timeout=within)


@pytest.fixture
def held(deployment):
    """Packets are applied by a target that holds each apply until the test releases it.

    Locks live far longer than any wait in these tests, so only an explicit release (not
    an expiry) lets another worker go on."""
    deployment.configure(target="held", packet_lock_ttl=300.0, poll_lock_ttl_ms=300_000)
    recording = deployment.settings.recording_path
    return deployment, applying_flag(recording), release_flag(recording)


def start_worker(deployment, *, grace_ms: int) -> Process:
    # The grace reaches the worker both as dramatiq's flag and as the setting it reads.
    deployment.configure(worker_shutdown_timeout_ms=grace_ms)
    return deployment.start_worker(
        threads=1, shutdown_timeout_ms=grace_ms, modules=("e2e.held_target",)
    )


def test_group_sigterm_mid_packet_lets_the_packet_finish_within_the_grace(held, sandbox):
    deployment, applying, release = held
    packet_id = sandbox.enqueue(APP_AREA, order_packet(1), user="rep-1")
    worker = start_worker(deployment, grace_ms=20_000)
    deployment.start_clock()
    wait_for(applying.exists, timeout=30, what="the packet's apply to start")

    group_sigterm(worker)
    release.touch()

    assert exit_code(worker, within=20 + 5) == 0
    assert KILLED not in worker.output()
    ledger = deployment.ledger()
    assert ledger.get(packet_id).result == "applied"
    assert packet_id in ledger.pending_acks(APP_AREA, "packet") + sandbox.done_ids(APP_AREA)
    assert {item["packet_id"] for item in deployment.recorded()} == {packet_id}


def test_group_sigterm_releases_the_lock_of_a_packet_outliving_the_grace(held, sandbox):
    deployment, applying, release = held
    packet_id = sandbox.enqueue(APP_AREA, order_packet(1), user="rep-1")
    worker = start_worker(deployment, grace_ms=1_000)
    deployment.start_clock()
    wait_for(applying.exists, timeout=30, what="the packet's apply to start")

    group_sigterm(worker)

    # dramatiq waits the grace for worker threads, then for its consumers.
    assert exit_code(worker, within=2 * 1 + 10) == 0
    assert KILLED not in worker.output()
    ledger = deployment.ledger()
    assert not deployment.redis.exists(f"{deployment.namespace}:lock:packet:{packet_id}")
    assert not ledger.get(packet_id).terminal
    # Resumable: the next worker applies it long before the 300 s lock could have expired.
    release.touch()
    start_worker(deployment, grace_ms=1_000)
    wait_for(lambda: packet_id in sandbox.done_ids(APP_AREA), timeout=60, what="the packet's ack")
    assert ledger.get(packet_id).result == "applied"


def test_group_sigterm_mid_poll_releases_the_poll_lock_and_the_next_worker_polls(
    deployment, sandbox
):
    deployment.configure(poll_lock_ttl_ms=300_000, dm_http_timeout=30.0)
    packet_id = sandbox.enqueue(APP_AREA, order_packet(1), user="rep-1")
    # The portal holds the first pull list request far beyond the grace.
    pull = f"{urlsplit(sandbox.url).path}/erp/pull/{APP_AREA}"
    sandbox.faults.slow(120.0, count=1, path_prefix=pull)
    worker = deployment.start_worker(threads=1, shutdown_timeout_ms=1_000)
    deployment.configure(worker_shutdown_timeout_ms=1_000)
    deployment.start_clock()
    wait_for(lambda: sandbox.faults.pending() == [], timeout=30, what="the held pull request")

    group_sigterm(worker)

    assert exit_code(worker, within=2 * 1 + 10) == 0
    assert KILLED not in worker.output()
    assert not deployment.redis.exists(f"{deployment.namespace}:lock:poll:{APP_AREA}")
    assert deployment.ledger().get(packet_id) is None  # the held poll listed nothing
    # The next worker's first poll goes ahead, rather than skipping for the lock's 300 s.
    deployment.start_worker(threads=1)
    wait_for(lambda: packet_id in sandbox.done_ids(APP_AREA), timeout=60, what="the packet's ack")


def test_a_packet_another_worker_holds_is_retried_with_one_info_line_each_time(deployment, sandbox):
    packet_id = sandbox.enqueue(APP_AREA, order_packet(1), user="rep-1")
    ledger = deployment.ledger()
    # Another worker (this test) holds the packet's lock.
    handle = ledger.locks.acquire(f"packet:{packet_id}", ttl=120)
    assert handle is not None
    worker = deployment.start_worker(threads=2)
    deployment.start_clock()

    def busy_lines() -> list[dict]:
        return [
            line
            for line in worker.log_lines()
            if line.get("packet_id") == packet_id and "another worker holds" in line["msg"].lower()
        ]

    wait_for(lambda: len(busy_lines()) >= 3, timeout=30, what="three busy deliveries")
    ledger.locks.release(handle)
    wait_for(lambda: packet_id in sandbox.done_ids(APP_AREA), timeout=30, what="the ack")
    worker.terminate(timeout=15)

    lines = worker.log_lines()
    assert [line["msg"] for line in lines if line["level"] in ("error", "critical")] == []
    assert [line["msg"] for line in lines if "exc" in line] == []
    # Busy is not a failure: dramatiq's retry middleware (its own log line) is not involved,
    # so each busy delivery is one line, ours.
    assert [line for line in lines if line["msg"].startswith("Retrying message")] == []
    assert {line["level"] for line in busy_lines()} == {"info"}
    assert all("retrying in" in line["msg"] for line in busy_lines())
    assert ledger.get(packet_id).result == "applied"
