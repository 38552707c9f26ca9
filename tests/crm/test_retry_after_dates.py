"""Every target client reads `Retry-After` as delta-seconds or as an HTTP date."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable

import httpx
import pytest

from packetworker.targets.bc import BCClient
from packetworker.targets.crmaas import CrmaasClient
from packetworker.targets.dataverse import DataverseClient
from packetworker.targets.dynamics_portal import DynamicsPortalClient
from tests.crm.support import FakeTime

SESSION = {
    "authenticated": True,
    "session_token": "tok",
    "expires_at": "2999-01-01T00:00:00Z",
}


def throttled_once(retry_after: str, answer: dict) -> httpx.MockTransport:
    """429 with `retry_after` for the first API call, then `answer`."""
    calls: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/authenticate"):
            return httpx.Response(200, json=SESSION)
        calls.append(request.url.path)
        if len(calls) == 1:
            return httpx.Response(429, headers={"Retry-After": retry_after}, json={})
        return httpx.Response(200, json=answer)

    return httpx.MockTransport(handle)


def crmaas(transport, fake_time) -> Callable[[], object]:
    client = CrmaasClient(
        "https://crm.test", primary_key="key-1", transport=transport, sleep=fake_time.sleep
    )
    return lambda: client.contacts.get("c1")


def portal(transport, fake_time) -> Callable[[], object]:
    client = DynamicsPortalClient(
        "https://proxy.test", client_id="app", scope="s", transport=transport, sleep=fake_time.sleep
    )
    return lambda: client.get_record("r1")


def dataverse(transport, fake_time) -> Callable[[], object]:
    client = DataverseClient(
        "https://org.test",
        auth=httpx.Auth(),
        transport=transport,
        sleep=fake_time.sleep,
        clock=fake_time.clock,
    )
    return lambda: client.retrieve("accounts", "00000000-0000-0000-0000-000000000001")


def bc(transport, fake_time) -> Callable[[], object]:
    client = BCClient(
        api_url="https://bc.test",
        tenant="t",
        environment="e",
        auth=httpx.Auth(),
        transport=transport,
        sleep=fake_time.sleep,
    )
    return client.companies


CLIENTS = [crmaas, portal, dataverse, bc]


@pytest.mark.parametrize("make", CLIENTS)
def test_delta_seconds(make):
    fake_time = FakeTime()
    call = make(throttled_once("7", {"value": []}), fake_time)

    call()

    assert fake_time.sleeps == [7.0]


@pytest.mark.parametrize("make", CLIENTS)
def test_http_date(make):
    fake_time = FakeTime()
    when = email.utils.formatdate(time.time() + 20, usegmt=True)
    call = make(throttled_once(when, {"value": []}), fake_time)

    call()

    assert len(fake_time.sleeps) == 1
    assert 17.0 <= fake_time.sleeps[0] <= 20.0
