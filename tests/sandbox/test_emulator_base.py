"""The base every emulator stands on (`sandbox.base`, `sandbox.faults`): the same fault calls
work on the portal, Business Central and the CRMs, each answering in its service's shape; one
request log that never keeps a credential; one clock tests move."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from support.portal import DEMO_API_KEY

from packetworker.sandbox.base import Clock
from packetworker.sandbox.bc import BCSandbox
from packetworker.sandbox.crmaas import CrmaasEmulator

CRM_KEY = {"Ocp-Apim-Subscription-Key": "k1-secret-value"}


@pytest.fixture
def bc():
    with BCSandbox() as sandbox:
        yield sandbox


@pytest.fixture
def crmaas():
    with CrmaasEmulator(primary_key="k1-secret-value") as emulator:
        yield emulator


def bc_get(bc: BCSandbox, path: str = "companies") -> httpx.Response:
    token = httpx.post(
        bc.token_url,
        data={
            "grant_type": "client_credentials",
            "client_id": bc.client_id,
            "client_secret": bc.client_secret,
            "scope": "https://api.businesscentral.dynamics.com/.default",
        },
    ).json()["access_token"]
    return httpx.get(f"{bc.base_url}/{path}", headers={"Authorization": f"Bearer {token}"})


def test_a_scripted_failure_is_answered_once_in_each_services_shape(portal_sandbox, bc, crmaas):
    portal_sandbox.faults.fail(1, status=503)
    bc.faults.fail(1, status=503)
    crmaas.faults.fail(1, status=503)
    portal_url = f"{portal_sandbox.url}/erp/pull/DEMO"
    portal = [httpx.get(portal_url, headers={"x-api-key": DEMO_API_KEY}) for _ in range(2)]
    business_central = [bc_get(bc) for _ in range(2)]
    crm = [httpx.get(f"{crmaas.url}/directory/contacts", headers=CRM_KEY) for _ in range(2)]

    assert [r.status_code for r in portal + business_central + crm] == [503, 200] * 3
    assert portal[0].json() == {"message": "sandbox fault 503"}
    assert business_central[0].json()["error"]["code"] == "Unknown"
    assert crm[0].json() == {"message": "Service Unavailable"}


def test_a_storm_throttles_every_emulator_with_its_retry_after(portal_sandbox, bc, crmaas):
    for emulator in (portal_sandbox, bc, crmaas):
        emulator.faults.storm(1, retry_after=7)

    answers = [
        httpx.get(f"{portal_sandbox.url}/erp/pull/DEMO", headers={"x-api-key": DEMO_API_KEY}),
        bc_get(bc),
        httpx.get(f"{crmaas.url}/directory/contacts", headers=CRM_KEY),
    ]

    assert [(r.status_code, r.headers.get("Retry-After")) for r in answers] == [(429, "7")] * 3
    assert [e.faults.throttled for e in (portal_sandbox, bc, crmaas)] == [1, 1, 1]


def test_held_requests_wait_in_flight_until_released(crmaas):
    answers: list[int] = []
    crmaas.faults.hold()
    thread = threading.Thread(
        target=lambda: answers.append(
            httpx.get(f"{crmaas.url}/directory/contacts", headers=CRM_KEY).status_code
        )
    )
    thread.start()

    assert crmaas.faults.wait_in_flight(1)
    assert answers == []
    crmaas.faults.release()
    thread.join(timeout=10)
    assert answers == [200]


def test_the_request_log_keeps_no_credential(portal_sandbox, crmaas):
    httpx.get(f"{portal_sandbox.url}/erp/pull/DEMO", headers={"x-api-key": DEMO_API_KEY})
    httpx.get(f"{crmaas.url}/directory/contacts", headers=CRM_KEY)

    logged = [*portal_sandbox.requests(), *crmaas.requests]
    assert {"x-api-key"} <= logged[0].header_names
    assert all(DEMO_API_KEY not in str(r.headers) for r in logged)
    assert all("k1-secret-value" not in str(r.headers) for r in logged)


def test_a_frozen_clock_moves_only_when_advanced():
    clock = Clock(frozen=True)
    start, epoch = clock(), clock.now()

    assert clock() == start
    assert clock.advance(90) == clock()
    assert (clock() - start).total_seconds() == 90
    assert clock.now() == epoch + 90


def test_a_running_clock_is_wall_time_plus_what_it_was_advanced():
    clock = Clock()
    clock.advance(3600)

    assert clock.offset == 3600
    assert 3599 < clock.now() - time.time() <= 3600.5
