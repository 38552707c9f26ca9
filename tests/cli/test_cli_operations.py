"""Operator commands against a real Redis ledger: status and the dead-letter queue."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import redis
from typer.testing import CliRunner

from packetworker.cli import app
from packetworker.settings import get_settings

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
runner = CliRunner()


@pytest.fixture
def ledger_env(monkeypatch, tmp_path, redis_url):
    """A replay that records into a Redis ledger of its own, then the operator's view of it."""
    namespace = f"cli-ops-{uuid.uuid4().hex[:8]}"
    monkeypatch.chdir(tmp_path)
    env = {
        "REDIS_URL": redis_url,
        "LEDGER_NAMESPACE": namespace,
        "BROKER_NAMESPACE": namespace,
        "TARGET": "plan",
        "DM_APP_AREA": "OPS",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield env
    get_settings.cache_clear()
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(f"*{namespace}*"):
        client.delete(key)


def replay(*paths: Path) -> None:
    result = runner.invoke(
        app, ["replay", *map(str, paths), "--accept-quarantined"], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output


def quarantined_id() -> str:
    listed = runner.invoke(app, ["dlq", "list"], env={"COLUMNS": "250"})
    assert listed.exit_code == 0, listed.output
    [packet_id] = [w for w in listed.output.split() if len(w) == 32 and w.isalnum()]
    return packet_id


def test_status_counts_packets_per_state_for_the_app_area(ledger_env):
    replay(SAMPLES / "visit-start.xml", SAMPLES / "invalid" / "junk.xml")

    result = runner.invoke(app, ["status", "--json"])

    assert result.exit_code == 0, result.output
    report = json.loads(result.output)["OPS"]
    assert report["counts"]["applied"] == 1
    assert report["quarantined"] == 1


def test_dlq_list_and_show_name_the_quarantined_packet_and_its_error(ledger_env):
    replay(SAMPLES / "invalid" / "wrong-root.xml")
    packet_id = quarantined_id()

    shown = runner.invoke(app, ["dlq", "show", packet_id])

    assert shown.exit_code == 0, shown.output
    entry = json.loads(shown.output)["entry"]
    assert entry["state"] == "quarantined"
    assert "a sync packet's root is <NavMobileSync>" in entry["last_error"]
    assert "receipt_handle" not in entry


def test_dlq_retry_here_reprocesses_from_the_archive(ledger_env):
    replay(SAMPLES / "invalid" / "wrong-root.xml")
    packet_id = quarantined_id()

    result = runner.invoke(app, ["dlq", "retry", packet_id, "--here"])

    # The cause is not fixed (the bytes are still wrong), so it is quarantined again.
    assert result.exit_code == 0, result.output
    assert f"{packet_id}: quarantined" in result.output


def test_dlq_retry_queues_the_packet_for_the_workers(ledger_env):
    replay(SAMPLES / "invalid" / "wrong-root.xml")
    packet_id = quarantined_id()
    # The actors' broker namespace is this test's own (tests/conftest.py).
    from packetworker.pipeline import actors

    result = runner.invoke(app, ["dlq", "retry", packet_id])

    assert result.exit_code == 0, result.output
    assert f"{packet_id}: queued" in result.output
    queue = f"{actors.broker.namespace}:pw-packets"
    messages = actors.broker.client.hvals(f"{queue}.msgs")
    sent = [json.loads(m) for m in messages]
    assert [(m["actor_name"], m["args"]) for m in sent] == [("process_packet", ["OPS", packet_id])]


def test_dlq_retry_of_an_unknown_packet_fails_and_says_so(ledger_env):
    result = runner.invoke(app, ["dlq", "retry", "not-a-packet", "--here"])
    assert result.exit_code == 1
    assert "not-a-packet is not in the ledger" in result.output


def test_dlq_show_of_an_unknown_packet_fails(ledger_env):
    result = runner.invoke(app, ["dlq", "show", "not-a-packet"])
    assert result.exit_code == 1
    assert "not-a-packet is not in the ledger" in result.output


def test_status_and_dlq_list_show_a_held_order_and_why(ledger_env, monkeypatch, tmp_path):
    packet = tmp_path / "order.xml"
    packet.write_text(
        '<NavMobileSync salesmancode="rep-1"><table tablename="SalesHeader" name="SalesHeader">'
        '<r status="insert"><DMS_ROWID>h1</DMS_ROWID><no>SO-77</no><documentType>0</documentType>'
        "<customerNo>NEW-77</customerNo></r></table></NavMobileSync>",
        encoding="utf-8",
    )
    monkeypatch.setenv("TARGET", "bc-emulator")  # its seed has no customer NEW-77
    get_settings.cache_clear()
    replay(packet)

    shown = runner.invoke(app, ["status"], env={"COLUMNS": "250"})
    listed = runner.invoke(app, ["dlq", "list"], env={"COLUMNS": "250"})

    assert shown.exit_code == 0, shown.output
    assert "1 held packets (waiting, not acknowledged)" in shown.output
    assert "customer NEW-77 is not in Business Central yet" in shown.output
    assert listed.exit_code == 0, listed.output
    [row] = [line for line in listed.output.splitlines() if "NEW-77" in line]
    assert "│ held " in row
