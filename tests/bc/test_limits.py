"""Throttling and the concurrency cap."""

from __future__ import annotations

import threading

import httpx
import pytest

from packetworker.targets.bc import BCAuth, BCError


def test_429_storm_is_ridden_out_honouring_retry_after(sandbox, client, sleeps):
    client.companies()  # token and company first
    sandbox.throttle(3, retry_after=7)

    assert len(client.companies()) == 1
    assert sleeps == [7, 7, 7]


def test_throttling_longer_than_the_retries_raises_a_transient_error(sandbox, make_client, sleeps):
    client = make_client(retries=3)
    client.companies()
    sandbox.throttle(10, retry_after=2)

    with pytest.raises(BCError) as info:
        client.companies()

    assert info.value.status == 429
    assert info.value.transient is True
    assert info.value.retry_after == 2
    assert sleeps == [2, 2]


def test_request_window_limit_returns_429_with_retry_after(clock):
    from packetworker.sandbox.bc import BCSandbox
    from packetworker.targets.bc import BCAuth, BCClient

    slept: list[float] = []
    with BCSandbox(clock=clock, rate_limit=(2, 300)) as sb:
        auth = BCAuth(
            token_url=sb.token_url, client_id=sb.client_id, client_secret=sb.client_secret
        )

        def sleep(seconds: float) -> None:
            slept.append(seconds)
            clock.advance(seconds)  # the window slides while the client waits

        with BCClient(
            api_url=sb.api_url,
            tenant=sb.tenant,
            environment=sb.environment,
            auth=auth,
            sleep=sleep,
            max_backoff=300,
        ) as client:
            for _ in range(3):
                client.companies()

    assert slept == [300]
    assert [r.status for r in sb.requests if r.path.endswith("/companies")] == [200, 200, 429, 200]


def test_client_never_has_more_than_five_requests_in_flight(sandbox, make_client):
    client = make_client(max_concurrency=5)
    _ = client.company_id
    sandbox.add_item(number="1")
    results: list[int] = []
    with sandbox.holding_requests():
        threads = [
            threading.Thread(target=lambda: results.append(len(list(client.list("items")))))
            for _ in range(12)
        ]
        for t in threads:
            t.start()
        assert sandbox.wait_in_flight(5, timeout=10)
    for t in threads:
        t.join(timeout=10)

    assert results == [1] * 12
    assert sandbox.max_in_flight == 5
    assert all(r.status == 200 for r in sandbox.requests)


# --- BC's per-user queue and time limits (business-central.md §5.4) -----------------------


class RawCalls:
    """Requests sent from threads straight over HTTP (no client-side cap or retries), as
    several workers of one user would; each thread's answer is kept in order of start."""

    def __init__(self, sandbox) -> None:
        self.auth = BCAuth(
            token_url=sandbox.token_url,
            client_id=sandbox.client_id,
            client_secret=sandbox.client_secret,
        )
        self.url = f"{sandbox.base_url}/companies({sandbox.company()['id']})"
        self.threads: list[threading.Thread] = []
        self.answers: dict[int, httpx.Response] = {}

    def start(self, count: int, method: str = "GET", path: str = "items", body=None) -> None:
        for _ in range(count):
            n = len(self.threads)
            thread = threading.Thread(target=self._call, args=(n, method, path, body))
            self.threads.append(thread)
            thread.start()

    def _call(self, n: int, method: str, path: str, body) -> None:
        self.answers[n] = httpx.request(
            method, f"{self.url}/{path}", json=body, auth=self.auth, timeout=30
        )

    def join(self) -> list[int]:
        for thread in self.threads:
            thread.join(timeout=30)
        return [self.answers[n].status_code for n in sorted(self.answers)]


@pytest.fixture
def raw(sandbox) -> RawCalls:
    return RawCalls(sandbox)


def test_requests_past_five_wait_in_bc_s_queue_and_then_succeed(sandbox, raw):
    with sandbox.holding_requests():
        raw.start(8)
        assert sandbox.wait_in_flight(5)
        assert sandbox.wait_queued(3)

    assert raw.join() == [200] * 8
    assert (sandbox.max_in_flight, sandbox.max_queued) == (5, 3)


def test_a_request_past_the_connection_limit_gets_429(sandbox, raw):
    sandbox.max_connections = 7  # 5 running + 2 queued (BC: 5 + 95)
    with sandbox.holding_requests():
        raw.start(5)
        assert sandbox.wait_in_flight(5)
        raw.start(2)
        assert sandbox.wait_queued(2)
        raw.start(1)
        raw.threads[-1].join(timeout=30)
        refused = raw.answers[7]

    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "Application_TooManyRequests"
    assert "Retry-After" in refused.headers
    assert raw.join() == [200] * 7 + [429]


def test_a_request_still_queued_after_eight_minutes_gets_503(sandbox, clock, raw):
    with sandbox.holding_requests():
        raw.start(5)
        assert sandbox.wait_in_flight(5)
        raw.start(1)
        assert sandbox.wait_queued(1)
        clock.advance(481)
        raw.threads[5].join(timeout=30)
        queued = raw.answers[5]

    assert queued.status_code == 503
    assert int(queued.headers["Retry-After"]) > 0
    # The five that were running ran past 8 minutes too: BC cancels them with 408.
    assert raw.join() == [408] * 5 + [503]


@pytest.mark.parametrize("commits", [True, False])
def test_an_operation_past_eight_minutes_gets_408(sandbox, clock, raw, commits):
    sandbox.timeouts_commit = commits  # whether the cancelled work stays is unconfirmed
    with sandbox.holding_requests():
        raw.start(1, "POST", "items", {"number": "SLOW-1"})
        assert sandbox.wait_in_flight(1)
        clock.advance(481)

    assert raw.join() == [408]
    stored = [i["number"] for i in sandbox.store(None, "items")]
    assert stored == (["SLOW-1"] if commits else [])


def test_a_request_past_ten_minutes_in_all_gets_504(sandbox, clock, raw):
    sandbox.operation_timeout = 900  # so the 10-minute request limit is the one reached
    with sandbox.holding_requests():
        raw.start(1)
        assert sandbox.wait_in_flight(1)
        clock.advance(601)

    assert raw.join() == [504]


def test_a_429_without_retry_after_is_retried_on_the_client_s_own_backoff(sandbox, client, sleeps):
    client.companies()
    sandbox.throttle(2, retry_after=None)  # the docs do not promise Retry-After on 429

    assert len(client.companies()) == 1
    assert len(sleeps) == 2
    assert all(0 <= s <= 60 for s in sleeps)
