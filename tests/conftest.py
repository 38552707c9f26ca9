"""Fixtures shared by the whole suite: Redis and the portal sandbox (both real, on loopback)."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator

import dramatiq
import pytest
from dramatiq.brokers.redis import RedisBroker
from support import redis_url_or_start
from support.portal import DEMO_API_KEY, DEMO_APP_AREA
from support.rabbitmq import VirtualHost, delete_queues

from packetworker.portal import PortalClient
from packetworker.sandbox import PortalSandbox


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Commands under test configure the root logger; give the next test the one it had."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = handlers, level


@pytest.fixture(autouse=True)
def _broker_namespace_per_test() -> Iterator[None]:
    """Messages a test queues through the actors in this process (the CLI's `dlq retry`, the
    web app's notifications, the console's re-drive) go to a Redis broker namespace of the
    test's own, emptied after it: none reaches another test. The actors bind to the global
    broker once, when first imported, so its namespace is what changes; a broker made during
    the test keeps the settings' namespace, emptied the same way."""
    before = dramatiq.broker.global_broker
    shared = before.namespace if isinstance(before, RedisBroker) else ""
    if isinstance(before, RedisBroker):
        before.namespace = f"pw-test-{uuid.uuid4().hex[:8]}"
    yield
    broker = dramatiq.broker.global_broker
    if isinstance(broker, RedisBroker):
        for key in broker.client.scan_iter(f"{broker.namespace}:*"):
            broker.client.delete(key)
        if broker is before:
            broker.namespace = shared


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """`REDIS_URL` (default redis://localhost:6379/0) or a private redis-server; never skips.

    Shared by all tests: use a key prefix or db of your own and clean up after yourself.
    """
    with redis_url_or_start(os.environ.get("REDIS_URL", "redis://localhost:6379/0")) as url:
        yield url


@pytest.fixture(scope="session")
def rabbitmq_vhost() -> Iterator[VirtualHost]:
    """A RabbitMQ vhost for this test session (making one takes seconds of `rabbitmqctl`)."""
    # Here, not at the top: importing the actors binds them to a broker made from settings.
    from packetworker.pipeline.broker import PACKETS_QUEUE, POLL_QUEUE
    from packetworker.pipeline.outbound_actors import OUTBOUND_QUEUE

    vhost = VirtualHost(
        f"pw-e2e-{uuid.uuid4().hex[:8]}", [POLL_QUEUE, PACKETS_QUEUE, OUTBOUND_QUEUE]
    )
    yield vhost
    vhost.close()


@pytest.fixture(params=["redis", "rabbitmq"])
def broker(request: pytest.FixtureRequest) -> Iterator[str]:
    """The `BROKER_URL` of the deployment: every test that runs workers runs once on Redis
    ("") and once on RabbitMQ, in the session's vhost, whose queues are deleted after each
    test (its workers are stopped by then) so no message outlives its test."""
    if request.param == "redis":
        yield ""
        return
    vhost: VirtualHost = request.getfixturevalue("rabbitmq_vhost")
    try:
        yield vhost.url
    finally:
        delete_queues(vhost.url, vhost.queues)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A real S3 API (moto's server) on loopback, for the whole session."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def portal_sandbox() -> Iterator[PortalSandbox]:
    """A fresh ERP API sandbox: app area `DEMO` with key `DEMO_API_KEY`, own clock and faults."""
    with PortalSandbox(app_areas={DEMO_APP_AREA: DEMO_API_KEY}) as sandbox:
        yield sandbox


@pytest.fixture
def retry_waits() -> list[float]:
    """The waits the `portal_client` asked for between retries (it never really sleeps)."""
    return []


@pytest.fixture
def portal_client(
    portal_sandbox: PortalSandbox, retry_waits: list[float]
) -> Iterator[PortalClient]:
    """A client for the sandbox's `DEMO` area whose retry sleeps are recorded, not slept."""
    with PortalClient(
        base_url=portal_sandbox.url,
        app_area=DEMO_APP_AREA,
        api_key=DEMO_API_KEY,
        timeout=5.0,
        retries=3,
        storage_hosts=[portal_sandbox.storage_hosts],
        sleep=retry_waits.append,
    ) as client:
        yield client
