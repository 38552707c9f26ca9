"""A packet that crashes every attempt is quarantined, then re-driven once fixed; SIGTERM
lets in-flight work finish; log lines carry context and never the API key."""

from __future__ import annotations

import pytest

from packetworker.pipeline.archive import open_archive
from packetworker.pipeline.broker import POLL_QUEUE

from .conftest import API_KEY, APP_AREA, order_packet
from .harness import wait_for
from .poison_target import fixed_flag

pytestmark = pytest.mark.e2e

POISON = (
    b'<NavMobileSync salesmancode="rep-1"><table tablename="SalesHeader" name="SalesHeader">'
    b'<r status="insert"><DMS_ROWID>poison-1</DMS_ROWID><DocumentNo>SO-666</DocumentNo>'
    b"<Poison>1</Poison></r></table></NavMobileSync>"
)
# Two ways an operator re-drives: `dlq_retry` where the CLI runs, handing the packet to the
# broker; or asking a worker to do it with the `retry_quarantined` actor.
REDRIVE_HERE = (
    "from e2e import poison_target\n"
    "from packetworker.pipeline.actors import enqueue_packet\n"
    "from packetworker.pipeline.context import PipelineContext\n"
    "from packetworker.pipeline.operations import dlq_retry\n"
    "ctx = PipelineContext.from_settings()\n"
    "dlq_retry(ctx, {packet_id!r}, enqueue=enqueue_packet)\n"
    "ctx.close()\n"
)
REDRIVE_IN_WORKER = (
    "from packetworker.pipeline.actors import retry_quarantined\n"
    "retry_quarantined.send({packet_id!r})\n"
)


@pytest.fixture
def poisoned(deployment):
    deployment.configure(target="poison", max_attempts=2, stale_after=1.0)
    return deployment


def test_poison_packet_is_quarantined_with_its_bytes_then_acknowledged(poisoned, sandbox):
    poison = sandbox.enqueue(APP_AREA, POISON, user="rep-1")
    healthy = sandbox.enqueue(APP_AREA, order_packet(1), user="rep-1")

    worker = poisoned.start_worker(threads=2, modules=("e2e.poison_target",))
    poisoned.start_clock()
    wait_for(
        lambda: {poison, healthy} <= set(sandbox.done_ids(APP_AREA)),
        timeout=60,
        what="both packets acknowledged",
    )
    # A bug is no transient failure: an ERROR with its traceback, each time it happens.
    errors = [line for line in worker.log_lines() if line["level"] == "error"]
    assert "dramatiq.worker.WorkerThread" in {line["logger"] for line in errors}
    assert all(poison in f"{line.get('packet_id')} {line['msg']}" for line in errors)
    assert all("RuntimeError: target bug" in line["exc"] for line in errors)

    entry = poisoned.ledger().get(poison)
    assert (entry.result, entry.attempts) == ("quarantined", 3)
    assert "gave up after 2 attempts" in entry.last_error
    with open_archive(poisoned.values["archive_url"]).get(entry.archive_key) as raw:
        assert raw.read() == POISON
    assert {item["packet_id"] for item in poisoned.recorded()} == {healthy}


@pytest.mark.parametrize("redrive", [REDRIVE_HERE, REDRIVE_IN_WORKER], ids=["cli", "actor"])
def test_dlq_retry_redrives_a_quarantined_packet_once_the_cause_is_fixed(
    poisoned, sandbox, redrive
):
    poison = sandbox.enqueue(APP_AREA, POISON, user="rep-1")
    poisoned.start_worker(threads=2, modules=("e2e.poison_target",))
    poisoned.start_clock()
    ledger = poisoned.ledger()
    wait_for(lambda: poison in sandbox.done_ids(APP_AREA), timeout=60, what="quarantine ack")

    fixed_flag(poisoned.settings.recording_path).touch()
    poisoned.run_python(redrive.format(packet_id=poison))
    wait_for(lambda: ledger.get(poison).result == "applied", timeout=30, what="re-driven")

    assert [item["packet_id"] for item in poisoned.recorded()] == [poison]
    assert ledger.quarantine(APP_AREA) == []


def test_sigterm_finishes_in_flight_work_and_exits_cleanly(deployment, sandbox):
    packet_id = sandbox.enqueue(APP_AREA, order_packet(1), user="rep-1")
    # The download takes 2 s, so the packet is surely in flight when SIGTERM arrives.
    sandbox.faults.slow(2.0, count=1, path_prefix=f"/{sandbox.storage.bucket}/")
    worker = deployment.start_worker(threads=1, shutdown_timeout_ms=10_000)
    deployment.start_clock()
    wait_for(lambda: sandbox.faults.pending() == [], timeout=30, what="the download to start")

    exit_code = worker.terminate(timeout=10 + 5)

    assert exit_code == 0
    assert deployment.ledger().get(packet_id).result == "applied"
    assert {item["packet_id"] for item in deployment.recorded()} == {packet_id}


def test_log_lines_are_json_with_context_and_without_the_api_key(deployment, sandbox):
    packet_id = sandbox.enqueue(APP_AREA, order_packet(1), user="rep-1")
    worker = deployment.start_worker(threads=1)
    deployment.start_clock()
    wait_for(lambda: packet_id in sandbox.done_ids(APP_AREA), timeout=30, what="the ack")
    worker.terminate(timeout=15)

    lines = worker.log_lines()
    packet_lines = [line for line in lines if line.get("packet_id") == packet_id]
    assert API_KEY not in worker.output()
    assert {line["app_area"] for line in packet_lines} == {APP_AREA}
    assert any(line["msg"] == "Packet applied." for line in packet_lines)


def test_clock_enqueues_polls_and_stops_cleanly_on_sigterm(deployment):
    clock = deployment.start_clock()
    wait_for(lambda: deployment.queued(POLL_QUEUE) >= 2, timeout=30, what="two polls enqueued")

    assert clock.terminate(timeout=10) == 0
