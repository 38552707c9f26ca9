"""Notifications as Business Central sends them, to the real `web` app: delayed and merged,
`collection` for bulk changes, retried on 408/429/5xx, and fatal to the subscription on any
other answer (business-central.md §6.4); renewal and supported resources (§6.3, §6.5)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from packetworker.outbound import Notification, WebhookConfig, ensure_subscriptions
from packetworker.outbound import handle_notification as handle
from packetworker.sandbox.bc.webhooks import RETRY_DELAYS
from packetworker.targets.bc import BCError
from tests.outbound.conftest import CLIENT_STATE, USERS


@pytest.fixture
def subscribe(bc_client, web):
    def make(entity_set: str = "items", client_state: str = CLIENT_STATE) -> dict:
        return bc_client.create_subscription(
            notification_url=web.url,
            resource=bc_client.resource(entity_set),
            client_state=client_state,
        )

    return make


def live_ids(bc_client) -> list[str]:
    return [s["subscriptionId"] for s in bc_client.list_subscriptions()]


def test_changes_wait_thirty_seconds_and_repeated_changes_to_one_item_merge(
    bc, bc_client, bc_clock, web, subscribe
):
    subscribe()
    item = bc_client.create("items", {"number": "M-1", "displayName": "One"})
    item = bc_client.update("items", item["id"], {"unitPrice": 2}, etag=item["@odata.etag"])
    bc_client.update("items", item["id"], {"unitPrice": 3}, etag=item["@odata.etag"])
    bc_clock.advance(29)

    assert bc.pending_notifications == 1
    assert bc.deliveries == []

    bc_clock.advance(1)
    [delivery] = bc.wait_for_deliveries(1)
    [note] = delivery.payload["value"]
    assert note["changeType"] == "created"
    assert note["resource"].endswith(f"/items({item['id']})")
    assert [m["entity_id"] for m in web.queue.wait(1)] == [item["id"]]


def test_more_changes_than_the_threshold_become_one_collection_that_queues_pushes(
    bc, bc_client, bc_clock, web, subscribe, ctx
):
    bc.collection_threshold = 3
    subscribe()
    for n in range(4):
        bc_client.create("items", {"number": f"BULK-{n}", "displayName": "Bulk"})
    bc_clock.advance(30)

    [delivery] = bc.wait_for_deliveries(1)
    [note] = delivery.payload["value"]
    assert note["changeType"] == "collection"
    assert "/items?$filter=lastModifiedDateTime" in note["resource"]
    [message] = web.queue.wait(1)
    queued = []
    handled = handle(ctx, Notification(**message), enqueue_push=lambda u, m: queued.append(u))
    assert (handled.action, queued) == ("pushes_queued", list(USERS))


def test_a_503_is_retried_on_bcs_schedule_and_delivered_once_web_takes_it(
    bc, bc_client, bc_clock, web, subscribe
):
    subscribe()
    web.queue.fail = True
    bc_client.create("items", {"number": "R-1", "displayName": "Retry"})
    bc_clock.advance(30)
    assert [d.status for d in bc.wait_for_deliveries(1)] == [503]
    assert bc.next_notification_due == bc_clock() + timedelta(seconds=RETRY_DELAYS[0])

    web.queue.fail = False
    bc_clock.advance(RETRY_DELAYS[0])

    assert [(d.status, d.attempt) for d in bc.wait_for_deliveries(2)] == [(503, 1), (202, 2)]
    assert [m["change_type"] for m in web.queue.wait(1)] == ["created"]
    assert len(live_ids(bc_client)) == 1


def test_five_failed_sends_delete_the_subscription_and_the_check_recreates_it_with_a_catch_up(
    bc, bc_client, bc_clock, web, make_ctx
):
    ctx = make_ctx(
        webhook=WebhookConfig(url=web.url, client_state=CLIENT_STATE, resources=("items",))
    )
    [created] = ensure_subscriptions(ctx)
    web.queue.fail = True
    bc_client.create("items", {"number": "DOWN-1", "displayName": "Web is down"})
    bc_clock.advance(30)
    for attempt, wait in enumerate(RETRY_DELAYS, start=1):
        bc.wait_for_deliveries(attempt)
        assert live_ids(bc_client) == [created.subscription_id]
        assert bc.next_notification_due == bc_clock() + timedelta(seconds=wait)
        bc_clock.advance(wait)
    deliveries = bc.wait_for_deliveries(5)

    assert [d.status for d in deliveries] == [503] * 5
    assert live_ids(bc_client) == []
    [again] = ensure_subscriptions(ctx)
    assert (again.action, again.catch_up) == ("recreated", True)


def test_a_4xx_answer_deletes_every_subscription_on_that_url(
    bc, bc_client, bc_clock, web, subscribe
):
    subscribe("items", client_state="not-the-secret")  # web answers 401: forged or stale
    subscribe("customers", client_state="not-the-secret")
    bc_client.create("items", {"number": "X-1", "displayName": "Refused"})
    bc_clock.advance(30)

    assert [d.status for d in bc.wait_for_deliveries(1)] == [401]
    assert live_ids(bc_client) == []
    assert web.queue.messages == []


def test_renewal_sends_the_full_documented_body_and_handshakes_again(
    bc, bc_client, bc_clock, web, subscribe
):
    sub = subscribe()
    bc_clock.advance(86_400)

    renewed = bc_client.renew_subscription(sub)

    assert renewed["clientState"] == CLIENT_STATE
    assert renewed["expirationDateTime"] > sub["expirationDateTime"]
    assert len(bc.handshakes) == 2


def test_the_emulator_refuses_a_renewal_without_the_documented_body(bc, bc_client, subscribe):
    sub = subscribe()

    with pytest.raises(BCError) as caught:
        bc_client._json(
            "PATCH",
            bc_client._subscription_url(sub["subscriptionId"]),
            json={},
            headers={"If-Match": sub["@odata.etag"]},
        )

    assert caught.value.status == 400
    assert "notificationUrl" in caught.value.bc_message


def test_the_worker_asks_which_resources_take_webhooks_and_polls_the_others(
    bc, bc_client, make_ctx, web
):
    bc.webhook_resources = {"items"}  # a tenant that lists only items
    ctx = make_ctx(
        webhook=WebhookConfig(
            url=web.url, client_state=CLIENT_STATE, resources=("items", "salesInvoices")
        )
    )

    outcomes = {o.resource: o for o in ensure_subscriptions(ctx)}

    assert bc_client.webhook_supported_resources() == {"items"}
    assert outcomes["items"].action == "created"
    assert outcomes["salesInvoices"].action == "polling"
    assert "webhookSupportedResources" in outcomes["salesInvoices"].detail
    creations = [r for r in bc.requests if r.method == "POST" and "subscriptions" in r.path]
    assert len(creations) == 1  # salesInvoices was never tried
    assert ctx.state.subscription("salesInvoices").mode == "polling"
