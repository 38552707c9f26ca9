"""Outbound as a user of the mobile app expects: deletions reach devices, nothing changed in
the same millisecond is missed, stock stays current, and a subscription gap is backfilled."""

from __future__ import annotations

import io

from packetworker.outbound import (
    Notification,
    WebhookConfig,
    ensure_subscriptions,
    handle_notification,
    poll_changes,
    push_user,
)
from packetworker.outbound.notifications import backfill
from packetworker.packets import open_packet, validate_packet
from tests.outbound.conftest import CLIENT_STATE, USERS
from tests.outbound.packets import tables_of


def records_of(body: bytes) -> list[tuple[str, str | None, dict[str, str]]]:
    """(table, raw status, fields) of every record, in packet order."""
    with open_packet(io.BytesIO(body)) as reader:
        return [(r.table.name, r.raw_status, dict(r.fields)) for r in reader]


def deletes_of(body: bytes) -> list[tuple[str, dict[str, str]]]:
    return [(t, f) for t, status, f in records_of(body) if status == "deleted"]


def item(bc_client, number: str) -> dict:
    return bc_client.find_one("items", f"number eq '{number}'")


def set_inventory(bc, number: str, value: float) -> None:
    """Stock moves in BC by posting item ledger entries, which does not touch the item's
    lastModifiedDateTime (business-central.md §3.1: `inventory` is read-only)."""
    with bc.db.lock:
        cid = bc.company()["id"]
        row = next(r for r in bc.db.table(cid, "items").values() if r["number"] == number)
        row["inventory"] = value


def test_a_deleted_item_notification_reaches_every_user_holding_it_as_delete_records(
    make_ctx, bc, bc_client, bc_clock, web, portal_sandbox
):
    ctx = make_ctx(
        webhook=WebhookConfig(url=web.url, client_state=CLIENT_STATE, resources=("items",))
    )
    for user in USERS:
        push_user(ctx, user, mode="complete")
    ensure_subscriptions(ctx)
    gone = item(bc_client, "I2")
    bc_client.delete("items", gone["id"], etag=gone["@odata.etag"])
    bc_clock.advance(30)
    [message] = web.queue.wait(1)

    pushed = []
    handled = handle_notification(
        ctx, Notification(**message), enqueue_push=lambda u, m: pushed.append(push_user(ctx, u))
    )

    assert (handled.action, handled.users) == ("pushes_queued", list(USERS))
    uploads = portal_sandbox.uploads("DEMO")[len(USERS) :]
    assert [u.user for u in uploads] == list(USERS)
    for upload in uploads:
        assert validate_packet(io.BytesIO(upload.body)) == []
        assert deletes_of(upload.body) == [
            ("Item", {"SystemId": gone["id"], "No": "I2"}),
            ("UOMConversion", {"SystemId": gone["id"], "ItemNo": "I2", "Code": "PCS"}),
        ]
    assert push_user(ctx, "user1").packet_unique_id is None  # sent once, then forgotten


def test_a_complete_push_deletes_what_the_user_holds_and_bc_no_longer_lists_for_them(
    ctx, bc_client, bc_clock, portal_sandbox
):
    push_user(ctx, "user1", mode="complete")
    bc_clock.advance(60)
    c1 = bc_client.find_one("customers", "number eq 'C1'")
    bc_client.update("customers", c1["id"], {"salespersonCode": "SP2"}, etag=c1["@odata.etag"])
    i4 = item(bc_client, "I4")
    bc_client.delete("items", i4["id"], etag=i4["@odata.etag"])

    outcome = push_user(ctx, "user1", mode="complete")

    body = portal_sandbox.uploads("DEMO")[-1].body
    assert validate_packet(io.BytesIO(body)) == []
    assert deletes_of(body) == [
        ("Item", {"SystemId": i4["id"], "No": "I4"}),
        ("UOMConversion", {"SystemId": i4["id"], "ItemNo": "I4", "Code": "PCS"}),
        ("Customer", {"SystemId": c1["id"], "No": "C1"}),
    ]
    assert outcome.deleted == {"Item": 1, "UOMConversion": 1, "Customer": 1}
    again = push_user(ctx, "user1", mode="complete")
    assert again.deleted == {}


def test_a_change_in_the_same_millisecond_as_the_watermark_is_not_missed(
    ctx, bc_client, portal_sandbox, outbound_state
):
    push_user(ctx, "user1", mode="complete")
    # The clock has not moved: this item has exactly the watermark's timestamp.
    same = bc_client.create("items", {"number": "SAME-MS", "displayName": "Same instant"})
    assert same["lastModifiedDateTime"] == outbound_state.watermarks("user1")["Item"]

    outcome = push_user(ctx, "user1", mode="incremental")

    assert outcome.counts == {"Item": 1, "UOMConversion": 1}
    tables = tables_of(portal_sandbox.uploads("DEMO")[-1].body)
    assert [r["No"] for r in tables["Item"]] == ["SAME-MS"]
    assert push_user(ctx, "user1", mode="incremental").packet_unique_id is None


def test_the_stock_refresh_pushes_items_whose_inventory_changed_without_a_new_timestamp(
    ctx, bc, portal_sandbox
):
    push_user(ctx, "user1", mode="complete")
    set_inventory(bc, "I3", 42)

    assert push_user(ctx, "user1", mode="incremental").packet_unique_id is None
    outcome = push_user(ctx, "user1", mode="stock")

    assert outcome.counts == {"Item": 1}
    body = portal_sandbox.uploads("DEMO")[-1].body
    assert validate_packet(io.BytesIO(body)) == []
    [record] = tables_of(body)["Item"]
    assert (record["No"], record["Inventory"], record["Description"]) == (
        "I3",
        "42",
        "Тест артикул 3",
    )
    assert push_user(ctx, "user1", mode="stock").packet_unique_id is None


def test_invoices_created_while_the_subscription_was_gone_are_backfilled_before_trusting_it(
    make_ctx, bc, bc_clock, web, portal_sandbox
):
    ctx = make_ctx(
        webhook=WebhookConfig(
            url=web.url, client_state=CLIENT_STATE, resources=("items", "salesInvoices")
        )
    )
    first = {o.resource: o for o in ensure_subscriptions(ctx)}
    bc.delete_subscription(first["salesInvoices"].subscription_id)
    bc.delete_subscription(first["items"].subscription_id)
    bc_clock.advance(60)
    missed = bc.add_invoice(customer_number="C2", salesperson="SP2", lines=[])

    outcomes = ensure_subscriptions(ctx)
    polls, pushes = [], []
    backfill(
        ctx,
        outcomes,
        enqueue_push=lambda user, mode: pushes.append((user, mode)),
        enqueue_poll=lambda resource, company: polls.append((resource, company)),
    )

    assert {o.resource: (o.action, o.catch_up) for o in outcomes} == {
        "items": ("recreated", True),
        "salesInvoices": ("recreated", True),
    }
    assert pushes == [(u, "incremental") for u in USERS]
    assert polls == [("salesInvoices", "")]  # in BC_COMPANY
    [pushed] = poll_changes(ctx, "salesInvoices")
    assert (pushed.entity_id, pushed.user) == (missed["id"], "user2")
    assert ctx.state.subscription("salesInvoices").catch_up == ""
    bc_clock.advance(60)
    bc.add_invoice(customer_number="C1", salesperson="SP1", lines=[])
    assert poll_changes(ctx, "salesInvoices") == []  # trusted again: notifications carry it
    assert [u.user for u in portal_sandbox.uploads("DEMO")] == ["user2"]


def test_the_catch_up_starts_where_notifications_left_off(
    make_ctx, bc, bc_client, bc_clock, web, portal_sandbox
):
    ctx = make_ctx(
        webhook=WebhookConfig(url=web.url, client_state=CLIENT_STATE, resources=("salesInvoices",))
    )
    [sub] = ensure_subscriptions(ctx)
    bc_clock.advance(60)
    notified = bc_client.create("salesInvoices", {"customerNumber": "C1", "salesperson": "SP1"})
    bc_clock.advance(30)
    [message] = web.queue.wait(1)
    handle_notification(ctx, Notification(**message), enqueue_push=None)
    bc.delete_subscription(sub.subscription_id)
    bc_clock.advance(60)
    missed = bc.add_invoice(customer_number="C3", salesperson="SP3", lines=[])

    ensure_subscriptions(ctx)
    caught = poll_changes(ctx, "salesInvoices")

    assert [d.entity_id for d in caught] == [missed["id"]]
    assert [u.user for u in portal_sandbox.uploads("DEMO")] == ["user1", "user3"]
    assert notified["id"] != missed["id"]
