"""One request budget for every process: slots and a sliding window shared through Redis."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
import redis
from pipeline_samples import order
from support.portal import DEMO_API_KEY
from support.waiting import wait_for

from packetworker.pipeline.context import outbound_context, portal_factory_for
from packetworker.pipeline.ledger import PacketState
from packetworker.pipeline.limits import RedisLimiter, SharedBudgets
from packetworker.pipeline.polling import poll_once
from packetworker.pipeline.processing import process_packet
from packetworker.pipeline.results import RetryLater
from packetworker.request_budget import BudgetedTransport, SlotUnavailable
from packetworker.sandbox.bc import BCSandbox
from packetworker.settings import Settings
from packetworker.targets.bc import BCAuth, BCClient
from packetworker.targets.recording import RecordingTarget


class CountingTransport(httpx.BaseTransport):
    """Our own instrumentation: requests that reached the wire and have no answer yet. Each
    one is held until the test opens `gate`, so contenders have every chance to overtake."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.gate = threading.Event()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if "/companies" in request.url.path:
                self.gate.wait(timeout=30)
            response = self.inner.handle_request(request)
            response.read()
            return response
        finally:
            with self.lock:
                self.in_flight -= 1


class PollCounter:
    """An injected sleep: counts the pauses of threads waiting for a slot (and pauses)."""

    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()

    def __call__(self, seconds: float) -> None:
        with self.lock:
            self.count += 1
        time.sleep(min(seconds, 0.01))  # the limiter's poll interval, kept short for the test


def test_workers_with_their_own_redis_connections_share_the_bc_in_flight_limit(
    pipeline_redis_url, redis_namespace
):
    """Twelve workers, each with its own BC client and Redis connection (as separate
    processes have), never put more than the budget's 3 requests in flight together."""
    _, namespace = redis_namespace
    wire = CountingTransport()
    polls = PollCounter()
    workers = 12
    connections = [redis.Redis.from_url(pipeline_redis_url) for _ in range(workers)]
    answers: list[int] = []
    with BCSandbox() as sandbox:
        clients = []
        for connection in connections:
            limiter = RedisLimiter(
                connection, f"{namespace}:budget:bc", max_in_flight=3, wait=30, sleep=polls
            )
            auth = BCAuth(
                token_url=sandbox.token_url,
                client_id=sandbox.client_id,
                client_secret=sandbox.client_secret,
            )
            clients.append(
                BCClient(
                    api_url=sandbox.api_url,
                    tenant=sandbox.tenant,
                    environment=sandbox.environment,
                    auth=auth,
                    transport=wire,
                    limiter=limiter,
                )
            )
        threads = [
            threading.Thread(target=lambda c=c: answers.append(len(c.companies()))) for c in clients
        ]
        for thread in threads:
            thread.start()
        wait_for(lambda: wire.in_flight == 3, what="three requests in flight")
        # Every one of the other nine has found the budget spent at least twice.
        wait_for(lambda: polls.count >= 2 * (workers - 3), what="the others waiting")
        assert wire.in_flight == 3
        wire.gate.set()
        for thread in threads:
            thread.join(timeout=30)
        for client in clients:
            client.close()
    for connection in connections:
        connection.close()

    assert answers == [1] * workers
    assert wire.max_in_flight == 3


def test_a_slot_is_given_back_when_the_request_fails(redis_namespace):
    client, namespace = redis_namespace
    limiter = RedisLimiter(client, f"{namespace}:b", max_in_flight=1, wait=0)

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, content=b"boom")

    refusing = BudgetedTransport(httpx.MockTransport(refuse), limiter)
    with httpx.Client(transport=refusing) as http, pytest.raises(httpx.ConnectError):
        http.get("http://127.0.0.1:9/x")
    with httpx.Client(transport=BudgetedTransport(httpx.MockTransport(answer), limiter)) as http:
        assert http.get("http://127.0.0.1:9/x").status_code == 500  # slot was free again
        assert http.get("http://127.0.0.1:9/x").status_code == 500  # and given back again

    assert client.zcard(f"{namespace}:b:leases") == 0


def test_a_slot_held_by_a_killed_worker_comes_back_when_its_lease_ends(redis_namespace, clock):
    client, namespace = redis_namespace
    limiter = RedisLimiter(client, f"{namespace}:b", max_in_flight=1, lease=60, wait=0, clock=clock)
    limiter.acquire()  # never given back: its worker was killed mid-request

    with pytest.raises(SlotUnavailable) as refused:
        limiter.acquire()
    assert refused.value.retry_after == pytest.approx(60)

    clock.advance(60.5)
    limiter.acquire()()


def test_the_window_limits_requests_started_in_any_five_minutes(redis_namespace, clock):
    client, namespace = redis_namespace
    limiter = RedisLimiter(
        client, f"{namespace}:b", max_in_flight=5, per_window=4, window=300, wait=0, clock=clock
    )
    for _ in range(3):
        limiter.acquire()()
    clock.advance(100)
    limiter.acquire()()  # 4 started within the last 300 s

    with pytest.raises(SlotUnavailable) as refused:
        limiter.acquire()
    assert refused.value.retry_after == pytest.approx(200)  # when the first three age out

    clock.advance(199)
    with pytest.raises(SlotUnavailable):
        limiter.acquire()  # sliding, not reset: all four are still inside the window
    clock.advance(1.5)
    for _ in range(3):
        limiter.acquire()()
    with pytest.raises(SlotUnavailable):
        limiter.acquire()


def test_waiting_for_the_window_is_bounded_and_says_when_to_come_back(redis_namespace, clock):
    client, namespace = redis_namespace
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(seconds)

    limiter = RedisLimiter(
        client, f"{namespace}:b", max_in_flight=5, per_window=1, wait=30, clock=clock, sleep=sleep
    )
    limiter.acquire()()
    clock.advance(280)
    limiter_waits = limiter.acquire  # the window frees in 20 s: within the 30 s bound
    limiter_waits()()
    assert sum(slept) == pytest.approx(20, abs=0.01)

    slept.clear()
    with pytest.raises(SlotUnavailable) as refused:
        limiter.acquire()  # next free in 300 s: past the bound, refused without waiting
    assert slept == []
    assert refused.value.retry_after == pytest.approx(300)


def test_bc_client_spends_no_retry_on_a_spent_budget(redis_namespace, clock):
    client, namespace = redis_namespace
    limiter = RedisLimiter(client, f"{namespace}:b", max_in_flight=1, wait=0, clock=clock)
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={"value": []})

    slept: list[float] = []
    bc = BCClient(
        api_url="http://127.0.0.1:9",
        tenant="t",
        environment="e",
        auth=httpx.Auth(),
        transport=httpx.MockTransport(answer),
        limiter=limiter,
        sleep=slept.append,
    )
    release = limiter.acquire()  # another worker holds the only slot
    with pytest.raises(SlotUnavailable):
        bc.companies()
    release()
    assert bc.companies() == []
    bc.close()

    assert len(sent) == 1
    assert slept == []


def test_shared_budgets_key_bc_by_app_registration_and_portal_by_app_area(redis_namespace):
    client, namespace = redis_namespace
    settings = Settings(
        ledger_namespace=namespace,
        bc_tenant="contoso",
        bc_client_id="app-1",
        bc_max_concurrency=4,
        bc_requests_per_5_min=5000,
        dm_max_concurrency=2,
    )
    budgets = SharedBudgets(client, settings)

    bc = budgets["bc"]
    portal = budgets["portal:DEMO"]
    assert isinstance(bc, RedisLimiter)
    assert isinstance(portal, RedisLimiter)
    assert bc.key == f"{namespace}:budget:bc:contoso:app-1"
    assert (bc.max_in_flight, bc.per_window) == (4, 5000)
    assert portal.key.endswith(":DEMO")
    assert portal.max_in_flight == 2
    assert budgets["bc"] is bc
    with pytest.raises(KeyError):
        budgets["nothing"]


class SpentBudgetTarget(RecordingTarget):
    """A target whose first `spent` applies find no request slot (never sent)."""

    def __init__(self, spent: int) -> None:
        super().__init__()
        self.spent = spent

    def apply(self, *args, **options):
        if self.spent > 0:
            self.spent -= 1
            raise SlotUnavailable("no request slot within 30 s", retry_after=12)
        return super().apply(*args, **options)


@pytest.fixture
def ledger(redis_ledger):
    return redis_ledger


def test_a_spent_target_budget_reschedules_the_packet_without_spending_an_attempt(
    sandbox, make_ctx
):
    ctx = make_ctx(sandbox, target=SpentBudgetTarget(spent=5), max_attempts=3)
    packet_id = sandbox.enqueue("DEMO", order("SO1", lines=2), user="u1")
    poll_once(ctx, "DEMO")

    for _ in range(5):  # more times than max_attempts
        with pytest.raises(RetryLater) as later:
            process_packet(ctx, "DEMO", packet_id)
        assert later.value.seconds == pytest.approx(12)
    assert ctx.ledger.get(packet_id).attempts == 0
    assert ctx.ledger.get(packet_id).state != PacketState.QUARANTINED

    assert process_packet(ctx, "DEMO", packet_id).state == "applied"
    assert ctx.ledger.get(packet_id).attempts == 1


def test_a_spent_portal_budget_reschedules_the_packet_without_spending_an_attempt(
    sandbox, make_ctx, redis_namespace
):
    client, namespace = redis_namespace
    ctx = make_ctx(sandbox, max_attempts=1)
    packet_id = sandbox.enqueue("DEMO", order("SO1", lines=2), user="u1")
    poll_once(ctx, "DEMO")
    portal_budget = RedisLimiter(client, f"{namespace}:portal", max_in_flight=1, wait=0)
    ctx.portal_factory = portal_factory_for(ctx.settings, budgets={"portal:DEMO": portal_budget})
    release = portal_budget.acquire()  # every portal slot is held elsewhere

    with pytest.raises(RetryLater):
        process_packet(ctx, "DEMO", packet_id)
    assert ctx.ledger.get(packet_id).attempts == 0

    release()
    assert process_packet(ctx, "DEMO", packet_id).state == "applied"
    for portal in ctx.portal_factory.clients.values():
        portal.close()


def test_an_outbound_context_spends_the_bc_budget_every_process_shares(
    pipeline_redis_url, redis_namespace, sandbox, tmp_path
):
    client, namespace = redis_namespace
    with BCSandbox() as bc:
        settings = Settings(
            _env_file=None,
            redis_url=pipeline_redis_url,
            ledger_namespace=namespace,
            dm_api_url=sandbox.url,
            dm_app_area="DEMO",
            dm_api_key=DEMO_API_KEY,
            bc_api_url=bc.api_url,
            bc_token_url=bc.token_url,
            bc_tenant=bc.tenant,
            bc_client_id=bc.client_id,
            bc_client_secret=bc.client_secret,
            bc_max_concurrency=1,
            request_slot_wait=0.1,  # how long a request waits for a slot before giving up
            spool_dir=tmp_path / "spool",
        )
        ctx = outbound_context(settings)
        # Another process (its own connection) holds the account's only slot.
        other_process = redis.Redis.from_url(pipeline_redis_url)
        elsewhere = SharedBudgets(other_process, settings)["bc"]
        release = elsewhere.acquire()
        try:
            with pytest.raises(SlotUnavailable):
                ctx.bc.companies()
        finally:
            release()
        try:
            assert [c["name"] for c in ctx.bc.companies()] == ["CRONUS"]
        finally:
            ctx.close()
            other_process.close()
    assert client.exists(f"{elsewhere.key}:leases") == 0  # every slot given back
