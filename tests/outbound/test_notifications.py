"""From a change in BC to a push: webhooks for items and invoices, polling for shipments."""

from __future__ import annotations

import io

import pytest

from packetworker.outbound import (
    Notification,
    WebhookConfig,
    ensure_subscriptions,
    handle_notification,
    parse_notification,
    poll_changes,
    push_user,
)
from packetworker.packets import validate_packet
from tests.outbound.conftest import CLIENT_STATE, USERS
from tests.outbound.packets import tables_of, user_of


@pytest.fixture
def hooked(make_ctx, web):
    return make_ctx(
        webhook=WebhookConfig(
            url=web.url,
            client_state=CLIENT_STATE,
            resources=("items", "salesInvoices", "salesShipments"),
        )
    )


def run_pushes(ctx):
    """`enqueue_push` that runs the push at once: one clock cycle, driven by hand."""
    pushed = []

    def enqueue(user: str, mode: str) -> None:
        pushed.append(push_user(ctx, user, mode=mode))

    return enqueue, pushed


def note(ctx, entity_set: str, entity_id: str | None, change_type: str = "created") -> Notification:
    return Notification(ctx.bc.company_id, entity_set, entity_id, change_type)


def test_a_created_item_notification_leads_to_a_push_to_every_user_within_one_cycle(
    hooked, bc_client, bc_clock, web, portal_sandbox
):
    for user in USERS:
        push_user(hooked, user, mode="complete")
    ensure_subscriptions(hooked)
    bc_clock.advance(60)

    bc_client.create("items", {"number": "NEW-1", "displayName": "Brand new"})
    bc_clock.advance(30)  # BC sends 30 s after the first change
    [message] = web.queue.wait(1)
    enqueue, pushed = run_pushes(hooked)
    handled = handle_notification(hooked, Notification(**message), enqueue_push=enqueue)

    assert handled.action == "pushes_queued"
    assert handled.users == list(USERS)
    assert [(p.user, p.records) for p in pushed] == [(u, 2) for u in USERS]
    news = portal_sandbox.uploads("DEMO")[len(USERS) :]
    assert [u.user for u in news] == list(USERS)
    for upload in news:
        assert validate_packet(io.BytesIO(upload.body)) == []
        tables = tables_of(upload.body)
        assert [r["No"] for r in tables["Item"]] == ["NEW-1"]
        assert list(tables) == ["Item", "UOMConversion"]


def test_a_burst_of_item_notifications_queues_one_push_per_user(ctx):
    queued = []
    enqueue = lambda user, mode: queued.append((user, mode))  # noqa: E731

    for _ in range(3):
        handle_notification(ctx, note(ctx, "items", "x"), enqueue_push=enqueue)

    assert queued == [(u, "incremental") for u in USERS]


def test_a_started_push_lets_the_next_notification_queue_another(ctx):
    queued = []
    enqueue = lambda user, mode: queued.append(user)  # noqa: E731
    handle_notification(ctx, note(ctx, "items", "x"), enqueue_push=enqueue)

    push_user(ctx, "user1", mode="complete")
    handle_notification(ctx, note(ctx, "items", "y"), enqueue_push=enqueue)

    assert queued == [*USERS, "user1"]


def test_a_created_invoice_is_pushed_to_the_user_of_its_salesperson(
    hooked, bc_client, bc_clock, web, portal_sandbox
):
    ensure_subscriptions(hooked)
    invoice = bc_client.create(
        "salesInvoices",
        {
            "customerNumber": "C2",
            "salesperson": "SP2",
            "salesInvoiceLines": [
                {"lineType": "Item", "lineObjectNumber": "I1", "quantity": 2},
                {"lineType": "Item", "lineObjectNumber": "I2", "quantity": 5},
            ],
        },
    )
    bc_clock.advance(30)  # BC sends 30 s after the first change
    [message] = web.queue.wait(1)

    handled = handle_notification(hooked, Notification(**message), enqueue_push=None)

    assert handled.action == "document_pushed"
    [upload] = portal_sandbox.uploads("DEMO")
    assert user_of(upload.body) == upload.user == "user2"
    assert validate_packet(io.BytesIO(upload.body)) == []
    tables = tables_of(upload.body)
    assert [r["No"] for r in tables["SalesInvoice"]] == [invoice["number"]]
    assert [(r["No"], r["Quantity"]) for r in tables["SalesInvoiceLine"]] == [
        ("I1", "2"),
        ("I2", "5"),
    ]
    assert {r["DocumentNo"] for r in tables["SalesInvoiceLine"]} == {invoice["number"]}


def test_a_document_of_an_unmapped_salesperson_is_not_pushed(ctx, bc_client, portal_sandbox):
    invoice = bc_client.create("salesInvoices", {"customerNumber": "C4", "salesperson": "XX"})

    handled = handle_notification(ctx, note(ctx, "salesInvoices", invoice["id"]), enqueue_push=None)

    assert [d.user for d in handled.documents] == [None]
    assert portal_sandbox.uploads("DEMO") == []


def test_a_deleted_document_is_ignored(ctx, portal_sandbox):
    handled = handle_notification(
        ctx, note(ctx, "salesInvoices", "0f0e", "deleted"), enqueue_push=None
    )

    assert (handled.action, handled.detail) == ("ignored", "deleted document")
    assert portal_sandbox.uploads("DEMO") == []


def test_a_notification_for_another_company_is_ignored(ctx):
    other = Notification("6c1a0000-0000-0000-0000-000000000000", "items", "x", "created")

    assert handle_notification(ctx, other, enqueue_push=None).action == "ignored"


def test_a_refused_resource_falls_back_to_polling_that_pushes_a_new_shipment(
    hooked, bc, bc_clock, portal_sandbox
):
    bc.add_shipment(customer_number="C1", salesperson="SP1", lines=[{"lineObjectNumber": "I1"}])
    outcomes = {o.resource: o.action for o in ensure_subscriptions(hooked)}
    assert outcomes["salesShipments"] == "polling"
    assert poll_changes(hooked, "salesShipments") == []  # the old shipment is not news

    bc_clock.advance(60)
    shipment = bc.add_shipment(
        customer_number="C3",
        salesperson="SP3",
        lines=[
            {"lineObjectNumber": "I1", "quantity": 3},
            {"lineObjectNumber": "I2", "quantity": 1},
        ],
    )
    outcomes = poll_changes(hooked, "salesShipments")

    assert [(o.entity_id, o.user, o.lines) for o in outcomes] == [(shipment["id"], "user3", 2)]
    [upload] = portal_sandbox.uploads("DEMO")
    assert upload.user == "user3"
    assert validate_packet(io.BytesIO(upload.body)) == []
    tables = tables_of(upload.body)
    assert [r["No"] for r in tables["SalesShipment"]] == [shipment["number"]]
    assert [(r["No"], r["Quantity"]) for r in tables["SalesShipmentLine"]] == [
        ("I1", "3"),
        ("I2", "1"),
    ]
    assert poll_changes(hooked, "salesShipments") == []  # pushed once only


def test_polling_is_a_no_op_while_the_webhook_works(hooked, bc, bc_clock, portal_sandbox):
    ensure_subscriptions(hooked)
    bc_clock.advance(60)
    bc.add_invoice(customer_number="C1", salesperson="SP1", lines=[])

    assert poll_changes(hooked, "salesInvoices") == []
    assert portal_sandbox.uploads("DEMO") == []


def test_a_collection_notification_polls_the_documents(ctx, bc, bc_clock, outbound_state):
    outbound_state.set_poll_mark("salesInvoices", "2000-01-01T00:00:00.000Z")
    bc.add_invoice(customer_number="C1", salesperson="SP1", lines=[])
    bc.add_invoice(customer_number="C2", salesperson="SP2", lines=[])

    handled = handle_notification(
        ctx, note(ctx, "salesInvoices", None, "collection"), enqueue_push=None
    )

    assert handled.action == "polled"
    assert [d.user for d in handled.documents] == ["user1", "user2"]


def test_parse_notification_reads_bcs_payload():
    parsed = parse_notification(
        {
            "subscriptionId": "s1",
            "clientState": "secret",
            "resource": "api/v2.0/companies(B18AED47-0000-0000-0000-000000000001)"
            "/items(26814998-aaaa-bbbb-cccc-000000000002)",
            "changeType": "updated",
            "lastModifiedDateTime": "2018-10-26T12:54:20.467Z",
        }
    )

    assert parsed == Notification(
        company_id="b18aed47-0000-0000-0000-000000000001",
        entity_set="items",
        entity_id="26814998-aaaa-bbbb-cccc-000000000002",
        change_type="updated",
        subscription_id="s1",
        last_modified="2018-10-26T12:54:20.467Z",
    )
    assert "secret" not in str(parsed.to_message())


def test_parse_notification_reads_a_collection_resource():
    parsed = parse_notification(
        {
            "resource": "/api/v2.0/companies(7dbba574)/salesInvoices"
            "?$filter=lastDateTimeModified%20gt%202018-10-15T11:00:00Z",
            "changeType": "collection",
        }
    )

    assert (parsed.entity_set, parsed.entity_id, parsed.change_type) == (
        "salesInvoices",
        None,
        "collection",
    )


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({}, "not a BC notification (resource/changeType)"),
        (
            {"resource": "items(1)", "changeType": "created"},
            "unrecognised notification resource 'items(1)'",
        ),
        ({"resource": 5, "changeType": "x"}, "not a BC notification (resource/changeType)"),
    ],
    ids=["empty", "resource-without-company", "resource-not-text"],
)
def test_parse_notification_refuses_what_is_not_one(payload, message):
    with pytest.raises(ValueError) as caught:
        parse_notification(payload)
    assert str(caught.value) == message
