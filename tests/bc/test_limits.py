"""Throttling and the concurrency cap."""

from __future__ import annotations

import threading

import pytest

from packetworker.targets.bc import BCError


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
