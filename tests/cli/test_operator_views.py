"""One truth for counts, and a packet's story, across `status`, `dlq list`, `/metrics`,
`trace` and `replay --queue` (real Redis ledger)."""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from packetworker.cli import app
from packetworker.logs import setup_logging
from packetworker.outbound.state import RedisOutboundState
from packetworker.pipeline.ledger import RedisLedger
from packetworker.settings import Settings, get_settings
from packetworker.web import collect_metrics, render_metrics

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
runner = CliRunner()


@pytest.fixture
def env(monkeypatch, tmp_path, redis_url):
    namespace = f"cli-views-{uuid.uuid4().hex[:8]}"
    monkeypatch.chdir(tmp_path)
    values = {
        "REDIS_URL": redis_url,
        "LEDGER_NAMESPACE": namespace,
        "BROKER_NAMESPACE": namespace,
        "TARGET": "recording",
        "DM_APP_AREA": "OPS",
        "LOG_FORMAT": "text",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield values
    get_settings.cache_clear()
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(f"*{namespace}*"):
        client.delete(key)


def ledger_of(env) -> RedisLedger:
    return RedisLedger.from_url(env["REDIS_URL"], env["LEDGER_NAMESPACE"])


def replay(*paths: Path) -> None:
    result = runner.invoke(app, ["replay", *map(str, paths)], env={"COLUMNS": "200"})
    assert result.exit_code in (0, 1), result.output


def acknowledge_everything(ledger: RedisLedger) -> None:
    """What a poll's `done` does for finished packets (replayed ones have no handle)."""
    finished = [*ledger.ids("OPS", "applied"), *ledger.ids("OPS", "quarantined")]
    for packet_id in finished:
        ledger.queue_ack("OPS", "packet", packet_id)
    ledger.mark_acknowledged("OPS", "packet", finished)


def test_an_acknowledged_quarantined_packet_counts_as_quarantined_everywhere(env):
    replay(SAMPLES / "sales-order.xml", SAMPLES / "visit-start.xml", SAMPLES / "invalid")
    ledger = ledger_of(env)
    quarantined = len(ledger.quarantine("OPS"))
    assert quarantined >= 2
    before = json.loads(runner.invoke(app, ["status", "--json"]).output)["OPS"]
    assert before["counts"]["quarantined"] == quarantined
    assert before["acknowledged"]["quarantined"] == 0
    acknowledge_everything(ledger)

    status = json.loads(runner.invoke(app, ["status", "--json"]).output)["OPS"]
    assert status["counts"]["quarantined"] == quarantined
    assert status["acknowledged"]["quarantined"] == quarantined
    assert status["counts"]["applied"] == 2
    assert status["acknowledged"]["applied"] == 2

    table = runner.invoke(app, ["status"], env={"COLUMNS": "200"}).output
    assert f"│ quarantined │ {quarantined:>7} │ {quarantined:>12} │" in table

    listed = runner.invoke(app, ["dlq", "list"], env={"COLUMNS": "300"}).output
    rows = [line for line in listed.splitlines() if "OPS" in line]
    assert len(rows) == quarantined
    assert all("quarantined" in row and "│ yes" in row for row in rows)

    settings = Settings(_env_file=None, ledger_namespace=env["LEDGER_NAMESPACE"])
    state = RedisOutboundState(ledger.client, env["LEDGER_NAMESPACE"])
    text = render_metrics(collect_metrics(settings, ledger.client, state, ["OPS"]))
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    key = (("app_area", "OPS"), ("state", "quarantined"))
    assert samples[("packetworker_packets", key)] == quarantined
    assert samples[("packetworker_packets_acknowledged", key)] == quarantined


def test_trace_prints_the_packets_story(env):
    replay(SAMPLES / "sales-order.xml")
    [packet_id] = ledger_of(env).ids("OPS", "applied")

    result = runner.invoke(app, ["trace", packet_id], env={"COLUMNS": "200"})

    assert result.exit_code == 0, result.output
    out = result.output
    assert "outcome: applied, not acknowledged" in out
    for section in ("timeline", "tables", "records in the target", "errors"):
        assert f"\n{section}\n" in out
    timeline = out.split("timeline\n")[1].split("tables\n")[0]
    steps = [line.split()[3] for line in timeline.splitlines()]
    assert steps == ["listed", "archived", "applying", "applied"]
    assert "SalesHeader:" in out
    assert "BSO-000241" in out


def test_trace_of_an_unknown_packet_fails_and_says_so(env):
    result = runner.invoke(app, ["trace", "no-such-packet"])
    assert result.exit_code == 1
    assert "no-such-packet is not in the ledger" in result.output


def test_replay_queue_prints_every_id_it_queued(env):
    result = runner.invoke(
        app, ["replay", "--queue", str(SAMPLES / "sales-order.xml"), str(SAMPLES / "payment.xml")]
    )

    assert result.exit_code == 0, result.output
    ids = [line.split()[1] for line in result.output.splitlines() if line.startswith("queued ")]
    assert len(ids[:-1]) == 2
    assert all(len(i) >= 32 for i in ids[:2])
    assert f"packetworker trace {ids[0]}" in result.output


def test_text_log_lines_name_their_packet(capsys):
    import io

    stream = io.StringIO()
    setup_logging(fmt="text", stream=stream)
    from packetworker.logs import bind

    bind(logging.getLogger("packetworker.test"), packet_id="p-123", app_area="OPS").info(
        "applied: %s", {"applied": 2}
    )

    line = stream.getvalue().strip()
    assert line.endswith("applied: {'applied': 2} [app_area=OPS packet_id=p-123]")
