"""End to end with the real processes: `packetworker web` and a `dramatiq` worker.

BC (sandbox) creates an item → notifies the `web` process → `handle_notification` is queued
→ the worker queues `push_user` per user → each user's packet reaches the portal sandbox.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.redis_server import redis_url_or_start
from support.waiting import free_port

from packetworker.sandbox import PortalSandbox
from packetworker.sandbox.bc import BCSandbox
from tests.outbound.conftest import CLIENT_STATE, seed
from tests.outbound.packets import tables_of
from tests.pipeline.e2e.harness import Deployment, wait_for

pytestmark = pytest.mark.e2e

APP_AREA = "E2E"
API_KEY = "e2e-outbound-key-5566"


@pytest.fixture
def portal() -> Iterator[PortalSandbox]:
    with PortalSandbox(app_areas={APP_AREA: API_KEY}) as sandbox:
        yield sandbox


@pytest.fixture
def bc_live() -> Iterator[BCSandbox]:
    # The real clock (the worker's subscription checks use it); notifications wait 1 s, not
    # BC's 30 s, to keep the test short.
    with BCSandbox(notification_delay=1.0) as sb:
        seed(sb)
        yield sb


@pytest.fixture
def deployment(
    tmp_path: Path, redis_url: str, portal, bc_live, broker: str
) -> Iterator[Deployment]:
    port = free_port()
    deployment = Deployment(
        root=tmp_path,
        redis_url=redis_url,
        portal_url=portal.url,
        api_key=API_KEY,
        app_area=APP_AREA,
        broker_url=broker,
        bc_api_url=bc_live.api_url,
        bc_token_url=bc_live.token_url,
        bc_tenant=bc_live.tenant,
        bc_client_id=bc_live.client_id,
        bc_client_secret=bc_live.client_secret,
        bc_company="CRONUS",
        outbound_users="user1,user2",
        bc_user_map="SP1=user1,SP2=user2",
        webhook_url=f"http://127.0.0.1:{port}/bc/webhook",
        webhook_client_state=CLIENT_STATE,
        webhook_resources="items,salesShipments",
        web_port=port,
    )
    yield deployment
    deployment.close()


def start_web(deployment: Deployment) -> str:
    root = deployment.values["webhook_url"].rsplit("/bc/", 1)[0]
    deployment._start(
        [sys.executable, "-c", "from packetworker.cli import main; main()", "web"], "web"
    )

    def healthy() -> bool:
        try:
            return httpx.get(f"{root}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(healthy, timeout=30, what="the web process to answer /healthz")
    return root


def test_a_created_item_reaches_every_user_through_web_and_worker(deployment, bc_live, portal):
    start_web(deployment)
    deployment.start_worker(processes=1, threads=2)
    out = deployment.run_python(
        "from packetworker.outbound import OutboundContext, ensure_subscriptions\n"
        "from packetworker.settings import get_settings\n"
        "ctx = OutboundContext.from_settings(get_settings())\n"
        "print(sorted((o.resource, o.action) for o in ensure_subscriptions(ctx)))\n"
    )
    assert out.strip() == "[('items', 'created'), ('salesShipments', 'polling')]"

    from packetworker.targets.bc import BCAuth, BCClient

    auth = BCAuth(
        token_url=bc_live.token_url,
        client_id=bc_live.client_id,
        client_secret=bc_live.client_secret,
    )
    with BCClient(
        api_url=bc_live.api_url, tenant=bc_live.tenant, environment=bc_live.environment,
        auth=auth, company="CRONUS",
    ) as client:  # fmt: skip
        client.create("items", {"number": "E2E-1", "displayName": "From BC"})

    uploads = wait_for(
        lambda: (u := portal.uploads(APP_AREA)) and len(u) >= 2 and u,
        timeout=60,
        what="a push per user",
    )
    assert sorted(u.user for u in uploads) == ["user1", "user2"]
    for upload in uploads:
        assert "E2E-1" in [r["No"] for r in tables_of(upload.body)["Item"]]


def run_cli(deployment: Deployment, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from packetworker.cli import main; main()", *args],
        env=deployment.env(),
        cwd=deployment.root,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_push_outbound_command_pushes_complete_then_incremental(deployment, portal):
    complete = run_cli(deployment, "push-outbound", "user2", "--complete")
    again = run_cli(deployment, "push-outbound", "user2", "--incremental")

    assert complete.returncode == 0, complete.stderr
    assert "complete push to user2" in complete.stdout
    assert again.returncode == 0, again.stderr
    assert "Nothing changed for user2" in again.stdout
    [upload] = portal.uploads(APP_AREA)
    assert upload.user == "user2"
    assert [c["No"] for c in tables_of(upload.body)["Customer"]] == ["C2"]


def test_web_answers_503_to_a_genuine_notification_while_redis_is_down(
    tmp_path: Path, portal, bc_live
):
    """BC deletes a subscription answered with a 4xx but retries a 503 (business-central.md
    §6.4): a notification `web` cannot queue now must get the 503."""
    port = free_port()
    with redis_url_or_start(f"redis://127.0.0.1:{free_port()}/0") as private_redis:
        deployment = Deployment(
            root=tmp_path,
            redis_url=private_redis,
            portal_url=portal.url,
            api_key=API_KEY,
            app_area=APP_AREA,
            webhook_url=f"http://127.0.0.1:{port}/bc/webhook",
            webhook_client_state=CLIENT_STATE,
            web_port=port,
        )
        root = start_web(deployment)
        try:
            company = bc_live.company()["id"]
            note = {
                "subscriptionId": "s1",
                "clientState": CLIENT_STATE,
                "resource": f"api/v2.0/companies({company})/items(0f0e)",
                "changeType": "updated",
                "lastModifiedDateTime": "2026-03-04T12:00:00.000Z",
            }
            url = f"{root}/bc/webhook"
            assert httpx.post(url, json={"value": [note]}, timeout=10).status_code == 202
        except BaseException:
            deployment.close()
            raise
        deployment.flush_redis()
        # Leaving the block stops that redis-server: the web process is still up, Redis not.
    try:
        genuine = httpx.post(url, json={"value": [note]}, timeout=30)
        forged = httpx.post(url, json={"value": [{**note, "clientState": "x"}]}, timeout=30)
        handshake = httpx.post(url, params={"validationToken": "tok-1"}, timeout=10)

        assert genuine.status_code == 503
        assert forged.status_code == 401
        assert (handshake.status_code, handshake.text) == (200, "tok-1")
    finally:
        for process in deployment.processes:  # `close` would flush the Redis that is gone
            process.kill()
        deployment.redis.close()
