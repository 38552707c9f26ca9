"""Fixtures for outbound tests: a seeded BC sandbox, the portal sandbox, real Redis state, and
the `web` app served on loopback (its queue is a recorder tests can wait on)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
from support.waiting import wait_for
from werkzeug.serving import make_server

from packetworker.outbound import (
    OutboundContext,
    RedisOutboundState,
    WebhookConfig,
    load_mapping,
)
from packetworker.sandbox.bc import BCSandbox, Clock
from packetworker.targets.bc import BCAuth, BCClient
from packetworker.web import WebApp

CLIENT_STATE = "cs-7c1f0e55d2a94b"
USERS = ("user1", "user2", "user3")
USER_MAP = {"SP1": "user1", "SP2": "user2", "SP3": "user3"}


@pytest.fixture
def bc_clock() -> Clock:
    return Clock(frozen=True)


def seed(sb: BCSandbox) -> None:
    """A small company: 2 currencies, 2 payment terms, 2 units, 4 items (2 variants),
    one customer per salesperson plus one without a salesperson."""
    for code, name in (("EUR", "Euro"), ("USD", "US dollar")):
        sb.add("currencies", code=code, displayName=name, symbol="€" if code == "EUR" else "$")
    for code, name in (("14D", "14 days"), ("CM", "Current month")):
        sb.add("paymentTerms", code=code, displayName=name, dueDateCalculation=code)
    for code, name in (("PCS", "Piece"), ("BOX", "Box")):
        sb.add("unitsOfMeasure", code=code, displayName=name)
    items = [
        sb.add_item(number=f"I{n}", displayName=f"Тест артикул {n}", unitPrice=n * 1.5)
        for n in range(1, 5)
    ]
    sb.add("itemVariants", itemId=items[0]["id"], itemNumber="I1", code="RED", description="Red")
    sb.add("itemVariants", itemId=items[0]["id"], itemNumber="I1", code="BLUE", description="Blue")
    for n, sp in enumerate(("SP1", "SP2", "SP3", ""), start=1):
        sb.add_customer(number=f"C{n}", displayName=f"Customer {n}", salespersonCode=sp)


@pytest.fixture
def bc(bc_clock) -> Iterator[BCSandbox]:
    # A small page size so every read crosses several pages.
    with BCSandbox(clock=bc_clock, page_size=3) as sb:
        seed(sb)
        yield sb


def client_of(sb: BCSandbox) -> BCClient:
    """A client of `sb` for its company CRONUS (retries never really sleep)."""
    auth = BCAuth(token_url=sb.token_url, client_id=sb.client_id, client_secret=sb.client_secret)
    return BCClient(
        api_url=sb.api_url,
        tenant=sb.tenant,
        environment=sb.environment,
        auth=auth,
        company="CRONUS",
        sleep=lambda seconds: None,
    )


@pytest.fixture
def bc_client(bc) -> Iterator[BCClient]:
    with client_of(bc) as client:
        yield client


@pytest.fixture
def outbound_state(redis_url) -> Iterator[RedisOutboundState]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    namespace = f"pwtest-{uuid.uuid4().hex[:12]}"
    yield RedisOutboundState(client, namespace)
    keys = list(client.scan_iter(f"{namespace}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@dataclass
class Queue:
    """What the web app enqueued, with a wait on a condition (never a sleep)."""

    messages: list[dict] = field(default_factory=list)
    fail: bool = False
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def __call__(self, message: dict) -> None:
        if self.fail:
            raise ConnectionError("redis is away")
        with self._changed:
            self.messages.append(message)
            self._changed.notify_all()

    def wait(self, count: int, timeout: float = 10.0) -> list[dict]:
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.messages) >= count, timeout=timeout):
                raise TimeoutError(f"{len(self.messages)} messages queued, expected {count}")
            return list(self.messages)


@dataclass
class Served:
    url: str  # the notificationUrl
    root: str
    queue: Queue


@pytest.fixture
def web() -> Iterator[Served]:
    """The `web` app on 127.0.0.1 (werkzeug's threaded server; production uses waitress)."""
    queue = Queue()
    app = WebApp(client_state=CLIENT_STATE, enqueue=queue, health=lambda: True)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    root = f"http://127.0.0.1:{server.server_port}"
    yield Served(url=f"{root}/bc/webhook", root=root, queue=queue)
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@pytest.fixture
def make_ctx(bc, bc_client, bc_clock, portal_client, outbound_state, tmp_path: Path):
    def make(**overrides) -> OutboundContext:
        values = dict(
            bc=bc_client,
            portal=portal_client,
            state=outbound_state,
            spool_dir=tmp_path / "spool",
            mapping=load_mapping(),
            users=USERS,
            user_map=USER_MAP,
            options=frozenset({"item_variants"}),
            webhook=WebhookConfig(
                url="http://127.0.0.1:9/unused",
                client_state=CLIENT_STATE,
                resources=("items", "salesInvoices", "salesShipments"),
                renew_before=86_400,
            ),
            now=bc_clock,
        )
        values.update(overrides)
        return OutboundContext(**values)

    return make


@pytest.fixture
def ctx(make_ctx) -> OutboundContext:
    return make_ctx()


def spool_is_empty(ctx: OutboundContext) -> bool:
    return not any(ctx.spool_dir.iterdir())


__all__ = [
    "CLIENT_STATE",
    "USERS",
    "USER_MAP",
    "Queue",
    "Served",
    "client_of",
    "spool_is_empty",
    "wait_for",
]
