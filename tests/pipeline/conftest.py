"""Fixtures for the pipeline core: ledgers on real Redis and in memory, archives, contexts."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis
from support.clock import ManualClock
from support.portal import DEMO_API_KEY

from packetworker.pipeline.ledger import Ledger, MemoryLedger, RedisLedger


@pytest.fixture
def pipeline_redis_url(request: pytest.FixtureRequest) -> str:
    """The suite's `redis_url` (REDIS_URL, or a redis-server it starts; never skips)."""
    return request.getfixturevalue("redis_url")


@pytest.fixture
def redis_namespace(pipeline_redis_url: str) -> Iterator[tuple[redis.Redis, str]]:
    """A Redis client and a namespace unique to the test; every key under it is deleted after."""
    client = redis.Redis.from_url(pipeline_redis_url, decode_responses=True)
    namespace = f"pwtest-{uuid.uuid4().hex[:12]}"
    yield client, namespace
    keys = list(client.scan_iter(f"{namespace}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(params=["redis", "memory"])
def ledger(request: pytest.FixtureRequest, clock: ManualClock) -> Iterator[Ledger]:
    """The same behaviour tests run against both backends."""
    if request.param == "memory":
        yield MemoryLedger(retention=3600, clock=clock)
        return
    yield request.getfixturevalue("redis_ledger")


@pytest.fixture
def redis_ledger(redis_namespace: tuple[redis.Redis, str], clock: ManualClock) -> RedisLedger:
    """The Redis backend alone: modules that run processing over HTTP use it as `ledger`."""
    client, namespace = redis_namespace
    return RedisLedger(client, namespace, retention=3600, clock=clock)


@pytest.fixture
def s3_bucket(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> tuple[object, str]:
    """A fresh bucket on the moto server, and a boto3 client for it."""
    import boto3

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    client = boto3.client("s3", endpoint_url=moto_endpoint)
    bucket = f"archive-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    return client, bucket


@pytest.fixture
def sandbox(portal_sandbox):
    """The suite's portal sandbox (app area DEMO), under a shorter name."""
    return portal_sandbox


@pytest.fixture
def settings_for(tmp_path):
    """Settings pointing at a sandbox, a temp archive and spool; overrides as keywords."""
    from packetworker.settings import Settings

    def make(sandbox=None, **overrides):
        values = {
            "dm_api_url": sandbox.url if sandbox else "http://127.0.0.1:9/mobile",
            "dm_app_area": "DEMO",
            "dm_api_key": DEMO_API_KEY,
            "dm_http_retries": 1,
            "dm_storage_http_hosts": sandbox.storage_hosts if sandbox else "",
            "archive_url": f"file://{tmp_path}/archive",
            "spool_dir": tmp_path / "spool",
            "target": "recording",
            "max_attempts": 3,
            "apply_batch_size": 2,
            "stale_after": 600,
            "plan_output": str(tmp_path / "plan.jsonl"),
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)

    return make


@pytest.fixture
def make_ctx(ledger, settings_for):
    """A PipelineContext on the parametrised ledger, a sandbox and a RecordingTarget."""
    from packetworker.pipeline.archive import open_archive
    from packetworker.pipeline.context import PipelineContext, portal_factory_for
    from packetworker.targets.recording import RecordingTarget

    made = []

    def make(sandbox=None, *, target=None, **overrides):
        settings = settings_for(sandbox, **overrides)
        ctx = PipelineContext(
            settings=settings,
            ledger=ledger,
            archive=open_archive(settings.archive_url),
            target=target or RecordingTarget(),
            portal_factory=portal_factory_for(settings),
            spool_dir=settings.spool_dir,
        )
        made.append(ctx)
        return ctx

    yield make
    for ctx in made:
        for client in ctx.portal_factory.clients.values():
            client.close()
