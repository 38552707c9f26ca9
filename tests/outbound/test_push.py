"""Master-data pushes: complete per user, incremental by watermark, nothing lost on failure."""

from __future__ import annotations

import io

import pytest

from packetworker.outbound import push_user
from packetworker.packets import validate_packet
from packetworker.portal import PortalClient, PortalUnavailable
from tests.outbound.conftest import USERS, spool_is_empty
from tests.outbound.packets import statuses_of, tables_of, user_of

MASTER_TABLES = [
    "CompanyInfo",
    "Currency",
    "PaymentTerms",
    "UnitOfMeasure",
    "Item",
    "UOMConversion",
    "ItemVariant",
    "Customer",
]


def test_complete_pushes_for_three_users_validate_against_the_schema(ctx, portal_sandbox):
    for user in USERS:
        push_user(ctx, user, mode="complete")

    uploads = portal_sandbox.uploads("DEMO")
    assert [u.user for u in uploads] == list(USERS)
    for upload in uploads:
        assert validate_packet(io.BytesIO(upload.body)) == []
        assert user_of(upload.body) == upload.user
        assert list(tables_of(upload.body)) == MASTER_TABLES


def test_complete_push_carries_every_master_record(ctx, portal_sandbox):
    outcome = push_user(ctx, "user1", mode="complete")

    [upload] = portal_sandbox.uploads("DEMO")
    tables = tables_of(upload.body)
    assert outcome.counts == {
        "CompanyInfo": 1,
        "Currency": 2,
        "PaymentTerms": 2,
        "UnitOfMeasure": 2,
        "Item": 4,
        "UOMConversion": 4,
        "ItemVariant": 2,
        "Customer": 1,
    }
    assert [r["No"] for r in tables["Item"]] == ["I1", "I2", "I3", "I4"]
    assert tables["Item"][0]["Description"] == "Тест артикул 1"
    assert tables["Item"][1]["UnitPrice"] == "3"
    assert tables["Item"][2]["UnitPrice"] == "4.5"
    assert tables["UOMConversion"][0] == {
        "SystemId": tables["Item"][0]["SystemId"],
        "ItemNo": "I1",
        "Code": "PCS",
        "Factor": "1",
    }
    assert [(r["ItemNo"], r["Code"]) for r in tables["ItemVariant"]] == [
        ("I1", "RED"),
        ("I1", "BLUE"),
    ]
    assert tables["CompanyInfo"][0]["Code"] == "CRONUS"
    assert tables["Currency"][0]["CurrencyCode"] == "EUR"
    assert upload.packet_unique_id == outcome.packet_unique_id


def test_records_are_written_in_the_vendor_style(ctx, portal_sandbox):
    push_user(ctx, "user2", mode="complete")

    [upload] = portal_sandbox.uploads("DEMO")
    assert upload.body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<NavMobileSync ')
    assert b'salesmancode="user2"' in upload.body
    assert statuses_of(upload.body) == {"inserted"}


def test_customers_are_limited_to_the_users_salespeople(ctx, portal_sandbox):
    for user in USERS:
        push_user(ctx, user, mode="complete")

    customers = [
        [c["No"] for c in tables_of(u.body)["Customer"]] for u in portal_sandbox.uploads("DEMO")
    ]
    assert customers == [["C1"], ["C2"], ["C3"]]


def test_a_user_without_salespeople_gets_every_customer(ctx, portal_sandbox):
    push_user(ctx, "office", mode="complete")

    [upload] = portal_sandbox.uploads("DEMO")
    assert [c["No"] for c in tables_of(upload.body)["Customer"]] == ["C1", "C2", "C3", "C4"]


def test_item_variants_are_left_out_unless_enabled(make_ctx, portal_sandbox):
    push_user(make_ctx(options=frozenset()), "user1", mode="complete")

    [upload] = portal_sandbox.uploads("DEMO")
    assert "ItemVariant" not in tables_of(upload.body)


def test_incremental_push_carries_only_changed_records(
    ctx, bc, bc_client, bc_clock, portal_sandbox
):
    push_user(ctx, "user1", mode="complete")
    bc_clock.advance(60)
    item = bc_client.find_one("items", "number eq 'I3'")
    bc_client.update("items", item["id"], {"unitPrice": 9.99}, etag=item["@odata.etag"])
    bc_client.create("customers", {"number": "C9", "displayName": "New", "salespersonCode": "SP1"})
    bc_client.create(
        "customers", {"number": "C8", "displayName": "Other", "salespersonCode": "SP2"}
    )

    outcome = push_user(ctx, "user1", mode="incremental")

    incremental = portal_sandbox.uploads("DEMO")[-1]
    assert validate_packet(io.BytesIO(incremental.body)) == []
    tables = tables_of(incremental.body)
    assert list(tables) == ["Item", "UOMConversion", "Customer"]
    assert [(r["No"], r["UnitPrice"]) for r in tables["Item"]] == [("I3", "9.99")]
    assert [r["ItemNo"] for r in tables["UOMConversion"]] == ["I3"]
    assert [r["No"] for r in tables["Customer"]] == ["C9"]
    assert outcome.counts == {"Item": 1, "UOMConversion": 1, "Customer": 1}


def test_incremental_push_with_nothing_changed_uploads_nothing(ctx, portal_sandbox):
    push_user(ctx, "user1", mode="complete")

    outcome = push_user(ctx, "user1", mode="incremental")

    assert outcome.packet_unique_id is None
    assert outcome.records == 0
    assert len(portal_sandbox.uploads("DEMO")) == 1
    assert spool_is_empty(ctx)


def test_first_incremental_push_to_a_user_is_complete(ctx, portal_sandbox):
    outcome = push_user(ctx, "user3", mode="incremental")

    assert outcome.counts["Item"] == 4
    assert outcome.counts["CompanyInfo"] == 1


def test_watermarks_are_per_user(ctx, bc_client, bc_clock, portal_sandbox):
    push_user(ctx, "user1", mode="complete")
    bc_clock.advance(60)
    bc_client.create("items", {"number": "I5", "displayName": "Five"})

    first = push_user(ctx, "user1", mode="incremental")
    second = push_user(ctx, "user2", mode="incremental")

    assert first.counts["Item"] == 1
    assert second.counts["Item"] == 5  # never pushed to before: everything


def test_watermark_advances_to_the_newest_change_pushed(ctx, bc_client, bc_clock, outbound_state):
    push_user(ctx, "user1", mode="complete")
    bc_clock.advance(60)
    created = bc_client.create("items", {"number": "I5", "displayName": "Five"})

    push_user(ctx, "user1", mode="incremental")

    marks = outbound_state.watermarks("user1")
    assert marks["Item"] == created["lastModifiedDateTime"]
    assert marks["UOMConversion"] == created["lastModifiedDateTime"]


def test_a_failed_upload_keeps_the_watermarks_and_the_spool_clean(
    make_ctx, bc_client, bc_clock, outbound_state, portal_client
):
    ctx = make_ctx()
    push_user(ctx, "user1", mode="complete")
    before = outbound_state.watermarks("user1")
    bc_clock.advance(60)
    bc_client.create("items", {"number": "I5", "displayName": "Five"})
    dead = PortalClient(base_url="http://127.0.0.1:9/mobile", app_area="DEMO", api_key="k",
                        retries=1, sleep=lambda s: None)  # fmt: skip

    with pytest.raises(PortalUnavailable):
        push_user(make_ctx(portal=dead), "user1", mode="incremental")

    assert outbound_state.watermarks("user1") == before
    assert spool_is_empty(ctx)
    assert push_user(ctx, "user1", mode="incremental").counts["Item"] == 1


def test_unknown_mode_is_refused(ctx):
    with pytest.raises(ValueError, match="mode"):
        push_user(ctx, "user1", mode="everything")  # type: ignore[arg-type]
