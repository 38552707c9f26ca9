"""The subscription manager against the BC sandbox, handshaking with the real `web` app."""

from __future__ import annotations

from datetime import timedelta

import pytest

from packetworker.outbound import MemoryOutboundState, WebhookConfig, ensure_subscriptions
from packetworker.sandbox.bc import BCSandbox
from packetworker.sandbox.bc.clock import isoformat
from packetworker.targets.bc import BCAuth, BCClient
from tests.outbound.conftest import CLIENT_STATE

DAY = 86_400


@pytest.fixture
def hooked(make_ctx, web):
    """A context whose notificationUrl is the served web app."""
    return make_ctx(
        webhook=WebhookConfig(
            url=web.url,
            client_state=CLIENT_STATE,
            resources=("items", "salesInvoices", "salesShipments"),
            renew_before=DAY,
        )
    )


def actions(outcomes) -> dict[str, str]:
    return {o.resource: o.action for o in outcomes}


def test_subscriptions_are_created_after_a_handshake_with_the_web_app(hooked, bc, bc_clock):
    outcomes = ensure_subscriptions(hooked)

    assert actions(outcomes) == {
        "items": "created",
        "salesInvoices": "created",
        "salesShipments": "polling",
    }
    assert [h.ok for h in bc.handshakes] == [True, True]
    live = {s["subscriptionId"]: s for s in hooked.bc.list_subscriptions()}
    assert sorted(live) == sorted(o.subscription_id for o in outcomes if o.action == "created")
    for sub in live.values():
        assert sub["clientState"] == CLIENT_STATE
        assert sub["expirationDateTime"] == isoformat(bc_clock() + timedelta(days=3))


def test_subscription_state_is_kept_in_redis(hooked, outbound_state):
    outcomes = {o.resource: o for o in ensure_subscriptions(hooked)}

    items = outbound_state.subscription("items")
    assert (items.mode, items.subscription_id) == ("webhook", outcomes["items"].subscription_id)
    assert items.etag == hooked.bc.get_subscription(items.subscription_id)["@odata.etag"]
    assert outbound_state.subscription("salesShipments").mode == "polling"


def test_a_fresh_subscription_is_kept_not_renewed(hooked, bc, bc_clock):
    ensure_subscriptions(hooked)
    bc_clock.advance(1 * DAY)

    outcomes = ensure_subscriptions(hooked)

    assert actions(outcomes)["items"] == "kept"
    assert len(bc.handshakes) == 2  # only the two creations


def test_a_subscription_is_renewed_before_the_three_days_run_out(
    hooked, bc, bc_clock, outbound_state
):
    first = {o.resource: o for o in ensure_subscriptions(hooked)}
    old_etag = outbound_state.subscription("items").etag
    bc_clock.advance(2.5 * DAY)

    outcomes = {o.resource: o for o in ensure_subscriptions(hooked)}

    assert outcomes["items"].action == "renewed"
    assert outcomes["items"].subscription_id == first["items"].subscription_id
    assert outcomes["items"].expires == isoformat(bc_clock() + timedelta(days=3))
    assert outbound_state.subscription("items").etag != old_etag
    assert len(bc.handshakes) == 4  # two creations, two renewals
    renewals = [r for r in bc.requests if r.method == "PATCH" and "subscriptions" in r.path]
    assert [r.status for r in renewals] == [200, 200]


def test_a_renewed_subscription_still_delivers_after_the_original_expiry(
    hooked, bc, bc_client, bc_clock, web
):
    ensure_subscriptions(hooked)
    bc_clock.advance(2.5 * DAY)
    ensure_subscriptions(hooked)
    bc_clock.advance(1 * DAY)  # past the first three days

    bc_client.create("items", {"number": "LATE", "displayName": "Late"})

    bc_clock.advance(30)  # BC sends 30 s after the first change
    [message] = web.queue.wait(1)
    assert (message["entity_set"], message["change_type"]) == ("items", "created")


def test_a_subscription_deleted_by_bc_is_recreated(hooked, bc, outbound_state):
    first = {o.resource: o for o in ensure_subscriptions(hooked)}
    bc.delete_subscription(first["items"].subscription_id)

    outcomes = {o.resource: o for o in ensure_subscriptions(hooked)}

    assert outcomes["items"].action == "recreated"
    assert outcomes["items"].subscription_id != first["items"].subscription_id
    assert outbound_state.subscription("items").subscription_id == outcomes["items"].subscription_id
    live = [s["subscriptionId"] for s in hooked.bc.list_subscriptions()]
    assert outcomes["items"].subscription_id in live
    assert outcomes["salesInvoices"].action == "kept"


def test_an_expired_subscription_is_recreated(hooked, bc, bc_clock):
    first = {o.resource: o for o in ensure_subscriptions(hooked)}
    bc.expire_subscription(first["salesInvoices"].subscription_id)

    outcomes = actions(ensure_subscriptions(hooked))

    assert outcomes == {"items": "kept", "salesInvoices": "recreated", "salesShipments": "polling"}


def test_a_lost_record_adopts_the_live_subscription_instead_of_adding_one(hooked, make_ctx):
    first = {o.resource: o for o in ensure_subscriptions(hooked)}
    forgetful = make_ctx(state=MemoryOutboundState(), webhook=hooked.webhook)

    outcomes = {o.resource: o for o in ensure_subscriptions(forgetful)}

    assert outcomes["items"].subscription_id == first["items"].subscription_id
    assert len(hooked.bc.list_subscriptions()) == 2


def test_a_failed_handshake_falls_back_to_polling_and_retries_the_webhook(make_ctx, web, bc):
    unreachable = make_ctx(
        webhook=WebhookConfig(
            url=f"{web.root}/wrong-path", client_state=CLIENT_STATE, resources=("salesInvoices",)
        )
    )
    assert actions(ensure_subscriptions(unreachable)) == {"salesInvoices": "polling"}

    fixed = make_ctx(
        webhook=WebhookConfig(url=web.url, client_state=CLIENT_STATE, resources=("salesInvoices",))
    )
    assert actions(ensure_subscriptions(fixed)) == {"salesInvoices": "created"}


def test_a_missing_webhook_url_is_a_clear_error(make_ctx):
    with pytest.raises(ValueError, match="WEBHOOK_URL"):
        ensure_subscriptions(make_ctx(webhook=WebhookConfig()))


def test_a_handshake_sent_as_get_is_answered_too(make_ctx, web):
    with BCSandbox(handshake_method="GET") as bc_get:
        auth = BCAuth(
            token_url=bc_get.token_url,
            client_id=bc_get.client_id,
            client_secret=bc_get.client_secret,
        )
        with BCClient(
            api_url=bc_get.api_url, tenant=bc_get.tenant, environment=bc_get.environment, auth=auth
        ) as client:
            ctx = make_ctx(
                bc=client,
                webhook=WebhookConfig(url=web.url, client_state=CLIENT_STATE, resources=("items",)),
            )
            outcomes = ensure_subscriptions(ctx)

        assert actions(outcomes) == {"items": "created"}
        assert [h.ok for h in bc_get.handshakes] == [True]
