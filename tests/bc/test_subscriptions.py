"""Webhook subscriptions: handshake, renewal, notifications, refusals."""

from __future__ import annotations

import pytest

from packetworker.targets.bc import BCError, EntityChanged
from tests.bc.conftest import Receiver


def test_create_subscription_performs_the_handshake(sandbox, client, receiver):
    sub = client.create_subscription(
        notification_url=receiver.url, resource=client.resource("items"), client_state="s3"
    )

    assert len(receiver.validations) == 1
    assert sub["clientState"] == "s3"
    assert [s["subscriptionId"] for s in client.list_subscriptions()] == [sub["subscriptionId"]]


def test_subscription_expires_three_days_after_creation(sandbox, clock, client, receiver):
    from datetime import timedelta

    from packetworker.sandbox.bc.clock import isoformat

    sub = client.create_subscription(
        notification_url=receiver.url, resource=client.resource("items")
    )

    assert sub["expirationDateTime"] == isoformat(clock() + timedelta(days=3))


def test_renew_handshakes_again_and_extends_expiry(sandbox, clock, client, receiver):
    sub = client.create_subscription(
        notification_url=receiver.url, resource=client.resource("items")
    )
    clock.advance(86400)

    renewed = client.renew_subscription(sub)

    assert len(receiver.validations) == 2
    assert renewed["expirationDateTime"] > sub["expirationDateTime"]
    with pytest.raises(EntityChanged):
        client.renew_subscription(sub)


def test_failed_handshake_refuses_the_subscription(sandbox, client):
    with Receiver(echo=False) as bad, pytest.raises(BCError) as info:
        client.create_subscription(notification_url=bad.url, resource=client.resource("items"))

    assert info.value.status == 400
    assert client.list_subscriptions() == []


def test_resource_bc_refuses_for_webhooks_is_a_400(sandbox, client, receiver):
    with pytest.raises(BCError) as info:
        client.create_subscription(
            notification_url=receiver.url, resource=client.resource("salesShipments")
        )

    assert info.value.status == 400
    assert "salesShipments" in info.value.bc_message
    assert receiver.validations == []


def test_notification_is_delivered_when_an_item_is_created(sandbox, clock, client, receiver):
    sub = client.create_subscription(
        notification_url=receiver.url, resource=client.resource("items"), client_state="cs"
    )

    item = client.create("items", {"number": "W-1"})
    clock.advance(30)  # business-central.md §6.4: BC waits 30 s before sending
    deliveries = sandbox.wait_for_deliveries(1)

    assert [d.status for d in deliveries] == [202]
    (note,) = receiver.notifications[0]["value"]
    assert note["subscriptionId"] == sub["subscriptionId"]
    assert note["clientState"] == "cs"
    assert note["changeType"] == "created"
    assert note["resource"] == f"api/v2.0/companies({client.company_id})/items({item['id']})"


def test_expired_subscription_gets_no_notifications(sandbox, client, receiver):
    sub = client.create_subscription(
        notification_url=receiver.url, resource=client.resource("items")
    )
    sandbox.expire_subscription(sub["subscriptionId"])

    client.create("items", {"number": "W-2"})

    assert sandbox.deliveries == []
    assert client.list_subscriptions() == []


def test_delete_subscription(sandbox, client, receiver):
    sub = client.create_subscription(
        notification_url=receiver.url, resource=client.resource("items")
    )

    client.delete_subscription(sub["subscriptionId"])

    assert client.list_subscriptions() == []
