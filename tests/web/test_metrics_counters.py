"""Worker counters reach `/metrics` through Redis: packets and records processed, the apply
latency histogram, target requests and 429s, in valid Prometheus text."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families
from support.replayed import replay_two_samples
from support.waiting import wait_for
from werkzeug.wrappers import Response

from packetworker.metrics import (
    METRICS,
    PeriodicFlush,
    RedisMetrics,
    Tally,
    render,
    response_hook,
)
from packetworker.outbound.state import RedisOutboundState
from packetworker.sandbox.base import ServerThread
from packetworker.settings import Settings
from packetworker.targets.bc.client import BCClient
from packetworker.web import collect_metrics


@pytest.fixture
def namespace(redis_url: str) -> Iterator[str]:
    name = f"metrics-{uuid.uuid4().hex[:8]}"
    METRICS.drain()  # counts other tests left in this process
    yield name
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(f"{name}:*"):
        client.delete(key)


def samples_of(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_processed_packets_records_and_apply_latency_reach_metrics(tmp_path, redis_url, namespace):
    settings = Settings(
        _env_file=None,
        ledger_namespace=namespace,
        archive_url=f"file://{tmp_path / 'archive'}",
        spool_dir=tmp_path / "spool",
        target="recording",
    )
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    replay_two_samples(settings, client, namespace)
    RedisMetrics(client, namespace).flush()  # what a worker does every few seconds

    state = RedisOutboundState(client, namespace)
    text = render(collect_metrics(settings, client, state, ["OPS"]))
    samples = samples_of(text)

    applied = (("app_area", "OPS"), ("outcome", "applied"))
    quarantined = (("app_area", "OPS"), ("outcome", "quarantined"))
    assert samples[("packetworker_packets_processed_total", applied)] == 1
    assert samples[("packetworker_packets_processed_total", quarantined)] == 1
    assert samples[("packetworker_records_processed_total", applied)] >= 2
    target = (("app_area", "OPS"), ("target", "recording"))
    assert samples[("packetworker_apply_duration_seconds_count", target)] == 1
    inf = tuple(sorted((*target, ("le", "+Inf"))))
    assert samples[("packetworker_apply_duration_seconds_bucket", inf)] == 1
    assert "# HELP packetworker_apply_duration_seconds " in text
    assert "# TYPE packetworker_apply_duration_seconds histogram" in text
    assert "# TYPE packetworker_oldest_pending_age_seconds gauge" in text
    bounds = [
        line.split('le="')[1].split('"')[0]
        for line in text.splitlines()
        if line.startswith("packetworker_apply_duration_seconds_bucket")
    ]
    assert bounds[:3] == ["0.05", "0.1", "0.25"]
    assert bounds[-1] == "+Inf"


def test_counts_from_several_processes_add_up_in_redis(redis_url, namespace):
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    for _ in range(2):  # two worker processes, each with its own tally
        tally = Tally()
        tally.inc("packetworker_target_requests_total", {"target": "bc", "code": "200"}, 3)
        RedisMetrics(client, namespace).flush(tally)

    [sample] = RedisMetrics(client, namespace).samples()

    assert sample[0] == "packetworker_target_requests_total"
    assert sample[3] == 6


def one_message(tally: Tally) -> None:
    """What one processed packet counts: its outcome and its apply latency (16 series)."""
    labels = {"app_area": "OPS", "outcome": "applied"}
    tally.inc("packetworker_packets_processed_total", labels)
    tally.observe("packetworker_apply_duration_seconds", {"app_area": "OPS"}, 0.2)


def stored_packets(client: redis.Redis, namespace: str) -> float:
    samples = RedisMetrics(client, namespace).samples()
    return sum(v for name, _, _, v in samples if name == "packetworker_packets_processed_total")


def test_a_worker_adds_its_counts_to_redis_in_batches_and_the_rest_when_it_stops(
    redis_url, namespace
):
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    tally = Tally()
    flusher = PeriodicFlush(lambda: RedisMetrics(client, namespace).flush(tally), interval=3600)
    flusher.start()
    for _ in range(20):
        one_message(tally)

    assert stored_packets(client, namespace) == 0  # not one flush per message
    flusher.stop()

    assert stored_packets(client, namespace) == 20
    samples = RedisMetrics(client, namespace).samples()
    counts = [v for name, _, _, v in samples if name.endswith("_seconds_count")]
    assert counts == [20]


def test_a_busy_worker_adds_its_counts_to_redis_every_interval(redis_url, namespace):
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    tally = Tally()
    flusher = PeriodicFlush(lambda: RedisMetrics(client, namespace).flush(tally), interval=0.05)
    flusher.start()
    try:
        for _ in range(3):
            one_message(tally)
        wait_for(lambda: stored_packets(client, namespace) == 3, timeout=10, what="a flush")
        one_message(tally)
        wait_for(lambda: stored_packets(client, namespace) == 4, timeout=10, what="another")
    finally:
        flusher.stop()


class Throttling:
    """A real HTTP server answering 429 to every other request."""

    def __init__(self) -> None:
        self.calls = 0

        def app(environ, start_response):
            self.calls += 1
            status = 429 if self.calls % 2 else 200
            return Response("{}", status=status, content_type="application/json")(
                environ, start_response
            )

        self.server = ServerThread(app)
        self.server.start()
        self.url = self.server.base_url

    def close(self) -> None:
        self.server.stop()


def test_target_requests_and_429s_are_counted_per_target():
    server = Throttling()
    METRICS.drain()
    try:
        with httpx.Client(event_hooks={"response": [response_hook("bc")]}) as http:
            for _ in range(4):
                http.get(server.url)
    finally:
        server.close()

    counted = {(name, labels): value for (name, labels), value in METRICS.drain().items()}
    assert counted[("packetworker_target_requests_total", (("code", "429"), ("target", "bc")))] == 2
    assert counted[("packetworker_target_requests_total", (("code", "200"), ("target", "bc")))] == 2
    assert counted[("packetworker_target_throttled_total", (("target", "bc"),))] == 2


def test_business_central_client_counts_its_requests():
    client = BCClient(api_url="http://127.0.0.1:9", tenant="t", environment="e", auth=httpx.Auth())
    try:
        hooks = client._http.event_hooks["response"]
    finally:
        client.close()
    assert len(hooks) == 1
    assert hooks[0].__qualname__.startswith("response_hook")
