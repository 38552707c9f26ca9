"""The BC emulator's `/_sandbox/` admin API: seeding, reading and counting from another
process (benchmarks run the emulator apart from the workers they measure)."""

from __future__ import annotations

import threading

import httpx
import pytest


@pytest.fixture
def admin(sandbox) -> str:
    return f"{sandbox.root}/_sandbox"


def test_seeded_customer_and_item_are_what_the_api_serves(admin, client):
    customer = httpx.post(f"{admin}/entities/customers", json={"number": "C-9"})
    item = httpx.post(f"{admin}/entities/items", json={"number": "I-9", "unitPrice": 3})

    assert (customer.status_code, item.status_code) == (201, 201)
    assert [c["number"] for c in client.list("customers")] == ["C-9"]
    [served] = client.list("items")
    assert (served["id"], served["baseUnitOfMeasureCode"]) == (item.json()["id"], "PCS")


def test_entities_lists_what_clients_created(admin, client):
    httpx.post(f"{admin}/entities/customers", json={"number": "C-1"})
    order = client.create("salesOrders", {"customerNumber": "C-1"})

    rows = httpx.get(f"{admin}/entities/salesOrders").json()["value"]

    assert [r["id"] for r in rows] == [order["id"]]


def test_an_unknown_entity_set_is_refused(admin):
    answer = httpx.post(f"{admin}/entities/noSuchSet", json={})

    assert (answer.status_code, answer.json()["message"]) == (400, "'noSuchSet'")


def test_counters_count_api_requests_by_status_not_token_calls(admin, sandbox, client):
    client.companies()
    sandbox.throttle(1)
    client.companies()  # refused once, then answered (the client's retry)

    counters = httpx.get(f"{admin}/counters").json()

    api = [r for r in sandbox.requests if r.user is not None]
    assert sandbox.token_grants  # the client did ask for a token; it is not counted
    assert counters["requests"] == len(api)
    assert counters["statuses"]["429"] == 1
    assert counters["statuses"]["200"] == len(api) - 1


def test_counters_report_the_most_requests_in_flight(admin, sandbox, make_client):
    client = make_client(max_concurrency=5)
    _ = client.company_id
    with sandbox.holding_requests():
        threads = [threading.Thread(target=client.companies) for _ in range(3)]
        for thread in threads:
            thread.start()
        assert sandbox.wait_in_flight(3, timeout=10)
    for thread in threads:
        thread.join(timeout=10)

    assert httpx.get(f"{admin}/counters").json()["maxInFlight"] == 3
