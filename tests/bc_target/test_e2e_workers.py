"""Real `dramatiq` worker processes apply orders to a BC emulator running in this test;
workers are SIGKILLed mid-run, and afterwards every order exists exactly once in BC, with
exactly its lines."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from packetworker.pipeline.ledger import PacketState
from packetworker.sandbox import PortalSandbox
from packetworker.sandbox.bc import BCSandbox
from packetworker.targets.bc import BCAuth, BCClient

from .conftest import orders

# The pipeline's end-to-end harness (real worker processes) lives in tests/pipeline/e2e.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pipeline"))
from e2e.harness import Deployment, wait_for

pytestmark = pytest.mark.e2e

APP_AREA = "BCE2E"
API_KEY = "bc-e2e-api-key-0123456789"
ITEMS = ("W-1", "W-2", "W-3")


def order_packet(n: int) -> bytes:
    number = f"SO-{n:05d}"
    lines = "".join(
        f'<r status="insert"><DMS_ROWID>{number}-{i}</DMS_ROWID><documentNo>{number}</documentNo>'
        f"<lineNo>{i * 1000}</lineNo><no>{item}</no><quantity>{n % 5 + i}</quantity></r>"
        for i, item in enumerate(ITEMS, start=1)
    )
    return (
        '<NavMobileSync salesmancode="rep-1">'
        '<table tablename="SalesHeader" name="SalesHeader"><r status="insert">'
        f"<DMS_ROWID>{number}</DMS_ROWID><no>{number}</no><documentType>0</documentType>"
        "<customerNo>C-1</customerNo><dateCreated>2026-03-11T09:00:00Z</dateCreated></r></table>"
        f'<table tablename="SalesLine" name="SalesLine">{lines}</table>'
        "</NavMobileSync>"
    ).encode()


@pytest.fixture
def bc() -> Iterator[BCSandbox]:
    with BCSandbox() as sandbox:
        sandbox.add_customer(number="C-1")
        for item in ITEMS:
            sandbox.add_item(number=item, baseUnitOfMeasureCode="PCS")
        yield sandbox


@pytest.fixture
def portal() -> Iterator[PortalSandbox]:
    with PortalSandbox(app_areas={APP_AREA: API_KEY}, visibility_timeout=2) as sandbox:
        yield sandbox


@pytest.fixture
def deployment(tmp_path, redis_url, portal, bc, broker) -> Iterator[Deployment]:
    deployment = Deployment(
        root=tmp_path,
        redis_url=redis_url,
        portal_url=portal.url,
        api_key=API_KEY,
        app_area=APP_AREA,
        broker_url=broker,
        target="bc",
        bc_api_url=bc.api_url,
        bc_token_url=bc.token_url,
        bc_tenant=bc.tenant,
        bc_environment=bc.environment,
        bc_client_id=bc.client_id,
        bc_client_secret=bc.client_secret,
        bc_company="CRONUS",
        max_attempts=50,
        # The emulator answers at once: a write a killed worker left in doubt is decided by
        # a look-up 2 s after it was sent, not BC's 10 minutes.
        bc_in_doubt_seconds=2,
    )
    yield deployment
    deployment.close()


def test_workers_killed_mid_run_leave_each_order_in_bc_exactly_once(deployment, portal, bc):
    packets = 40
    ids = [portal.enqueue(APP_AREA, order_packet(n), user="rep-1") for n in range(packets)]
    deployment.start_clock()
    worker = deployment.start_worker(processes=2, threads=2)
    for at in (5, 15, 25):
        wait_for(
            lambda at=at: len(bc.store(None, "salesOrders")) >= at,
            timeout=60,
            what=f"{at} orders in BC",
        )
        worker.kill()
        worker = deployment.start_worker(processes=2, threads=2)
    wait_for(
        lambda: set(portal.done_ids(APP_AREA)) >= set(ids),
        timeout=120,
        what="every packet acknowledged",
    )

    assert orders(bc) == {
        f"SO-{n:05d}": [(item, n % 5 + i, "PCS") for i, item in enumerate(ITEMS, start=1)]
        for n in range(packets)
    }
    ledger = deployment.ledger()
    assert {ledger.get(i).result for i in ids} == {"applied"}


def test_a_worker_killed_mid_batch_leaves_its_order_once_though_bc_commits_it_late(
    deployment, portal, bc
):
    # The killed worker's write stays in doubt for 30 s; looking again every second.
    deployment.configure(bc_in_doubt_seconds=30, bc_http_timeout=60, process_max_retries=200)
    bc.commit_late()  # BC accepts the $batch and holds it
    packet_id = portal.enqueue(APP_AREA, order_packet(7), user="rep-1")
    deployment.start_clock()
    first = deployment.start_worker(processes=1, threads=1)
    wait_for(lambda: bc.held == 1, timeout=60, what="the $batch held by BC")

    first.kill()
    deployment.start_worker(processes=1, threads=1)
    ledger = deployment.ledger()
    wait_for(
        lambda: "in doubt" in (ledger.get(packet_id).last_error or ""),
        timeout=60,
        what="another worker finding the order missing but in doubt",
    )
    assert orders(bc) == {}
    assert bc.release_late() == 1  # the killed worker's order commits only now
    wait_for(
        lambda: packet_id in portal.done_ids(APP_AREA),
        timeout=60,
        what="the packet acknowledged",
    )

    assert orders(bc) == {"SO-00007": [("W-1", 3, "PCS"), ("W-2", 4, "PCS"), ("W-3", 5, "PCS")]}
    assert ledger.get(packet_id).result == "applied"
    assert ledger.writes_in_doubt(packet_id) == {}


def test_a_worker_killed_mid_group_leaves_every_packet_of_the_group_applied_once(
    deployment, portal, bc
):
    packets = 10
    # The killed worker's writes stay in doubt for 30 s; looking again every second.
    deployment.configure(
        apply_group_size=packets,
        bc_in_doubt_seconds=30,
        bc_http_timeout=60,
        process_max_retries=200,
    )
    ids = [portal.enqueue(APP_AREA, order_packet(n), user="rep-1") for n in range(packets)]
    # BC holds the group's first two $batch calls: its look-ups, then its inserts.
    bc.commit_late(times=2)
    deployment.start_clock()
    first = deployment.start_worker(processes=1, threads=1)
    wait_for(lambda: bc.held == 1, timeout=60, what="the group's look-ups held by BC")
    assert bc.release_late() == 1
    wait_for(lambda: bc.held == 1, timeout=60, what="the group's inserts held by BC")

    first.kill()  # mid-group: its ten orders sent, none answered
    deployment.start_worker(processes=1, threads=2)
    ledger = deployment.ledger()
    wait_for(
        lambda: all("in doubt" in (ledger.get(i).last_error or "") for i in ids),
        timeout=60,
        what="another worker finding each order missing but in doubt",
    )
    assert orders(bc) == {}
    assert bc.release_late() == 1  # the killed worker's orders commit only now
    wait_for(
        lambda: set(portal.done_ids(APP_AREA)) >= set(ids),
        timeout=120,
        what="every packet of the group acknowledged",
    )

    assert orders(bc) == {
        f"SO-{n:05d}": [(item, n % 5 + i, "PCS") for i, item in enumerate(ITEMS, start=1)]
        for n in range(packets)
    }
    assert {ledger.get(i).result for i in ids} == {"applied"}
    assert all(ledger.writes_in_doubt(i) == {} for i in ids)


def new_customer_order_packet(customer: str, number: str) -> bytes:
    """A customer captured on the device and its first order, as one packet."""
    return (
        '<NavMobileSync salesmancode="rep-1">'
        '<table tablename="Customer" name="Customer"><r status="insert">'
        f"<DMS_ROWID>{customer}</DMS_ROWID><no>{customer}</no><name>Kiosk</name></r></table>"
        '<table tablename="SalesHeader" name="SalesHeader"><r status="insert">'
        f"<DMS_ROWID>{number}</DMS_ROWID><no>{number}</no><documentType>0</documentType>"
        f"<customerNo>{customer}</customerNo></r></table>"
        '<table tablename="SalesLine" name="SalesLine"><r status="insert">'
        f"<DMS_ROWID>{number}-1</DMS_ROWID><documentNo>{number}</documentNo><lineNo>1000</lineNo>"
        "<no>W-1</no><quantity>4</quantity></r></table>"
        "</NavMobileSync>"
    ).encode()


def test_an_order_for_a_blocked_new_customer_is_applied_once_unblocked_and_only_then_acked(
    deployment, portal, bc
):
    deployment.configure(bc_hold_retry_interval=0.5)
    held = portal.enqueue(APP_AREA, new_customer_order_packet("NEW-9", "SO-NEW"), user="rep-1")
    other = portal.enqueue(APP_AREA, order_packet(1), user="rep-1")
    deployment.start_clock()
    worker = deployment.start_worker(processes=1, threads=2)
    ledger = deployment.ledger()

    wait_for(lambda: other in portal.done_ids(APP_AREA), timeout=60, what="the other order acked")
    wait_for(
        lambda: worker.output().count("held, not acknowledged") >= 2,
        timeout=60,
        what="the held order tried again on schedule",
    )
    entry = ledger.get(held)
    assert entry.state is PacketState.WAITING
    assert "customer NEW-9 is blocked (All)" in entry.last_error
    assert held not in portal.done_ids(APP_AREA)
    assert "SO-NEW" not in orders(bc)

    # Someone reviews the device-captured customer and unblocks it in BC; nothing else.
    auth = BCAuth(token_url=bc.token_url, client_id=bc.client_id, client_secret=bc.client_secret)
    with BCClient(
        api_url=bc.api_url,
        tenant=bc.tenant,
        environment=bc.environment,
        auth=auth,
        company="CRONUS",
    ) as client:
        customer = client.find_one("customers", "number eq 'NEW-9'")
        client.update("customers", customer["id"], {"blocked": " "}, etag=customer["@odata.etag"])
    wait_for(lambda: held in portal.done_ids(APP_AREA), timeout=60, what="the held order acked")

    assert orders(bc)["SO-NEW"] == [("W-1", 4, "PCS")]
    entry = ledger.get(held)
    assert (entry.result, entry.attempts) == ("applied", 1)
