"""Outbound pushes name their company: each user reads the BC company `BC_COMPANY_MAP` routes
its `OUTBOUND_USERS=user@COMPANY` to, and what outbound remembers is kept per company."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from support.cli import run_packetworker

from packetworker.outbound import (
    Notification,
    OutboundContext,
    WebhookConfig,
    ensure_subscriptions,
    handle_notification,
    poll_changes,
    push_user,
)
from packetworker.outbound.context import parse_users
from packetworker.sandbox.bc import BCSandbox
from packetworker.targets.bc import BCClient
from packetworker.targets.bc.companies import CompanyMap
from packetworker.targets.required import NotConfigured
from tests.outbound.conftest import CLIENT_STATE, client_of, seed
from tests.outbound.packets import tables_of

EU = "CRONUS EU"
COMPANY_MAP = CompanyMap.parse("ACME_MAIN=CRONUS, ACME_EU=CRONUS EU")
USERS = {"user1": "ACME_MAIN", "user2": "acme_eu"}  # companyIds compare case-insensitively


def seed_eu(sb: BCSandbox) -> None:
    """The second company: its own items and customers, older than the first company's."""
    sb.add("currencies", EU, code="EUR", displayName="Euro", symbol="€")
    sb.add("unitsOfMeasure", EU, code="PCS", displayName="Piece")
    for n in (1, 2):
        sb.add_item(EU, number=f"EU{n}", displayName=f"EU article {n}", unitPrice=n * 2.0)
    sb.add_customer(EU, number="EC1", displayName="EU customer 1", salespersonCode="SP2")
    sb.add_customer(EU, number="EC2", displayName="EU customer 2", salespersonCode="SP1")


@pytest.fixture
def two(bc_clock) -> Iterator[BCSandbox]:
    """One environment with two companies; the second company's data is a minute older."""
    with BCSandbox(clock=bc_clock, page_size=3, companies=("CRONUS", EU)) as sb:
        seed_eu(sb)
        bc_clock.advance(60)
        seed(sb)
        yield sb


@pytest.fixture
def two_client(two) -> Iterator[BCClient]:
    with client_of(two) as client:
        yield client


@pytest.fixture
def make_two(make_ctx, two_client, web):
    def make(**overrides) -> OutboundContext:
        values = dict(
            bc=two_client,
            users=tuple(USERS),
            user_companies=USERS,
            company_map=COMPANY_MAP,
            user_map={"SP1": "user1", "SP2": "user2"},
            webhook=WebhookConfig(
                url=web.url, client_state=CLIENT_STATE, resources=("items", "salesInvoices")
            ),
        )
        return make_ctx(**{**values, **overrides})

    return make


def numbers(upload, table: str) -> list[str]:
    return [r["No"] for r in tables_of(upload.body)[table]]


def test_a_user_of_the_second_company_gets_its_items_and_customers_only(make_two, portal_sandbox):
    ctx = make_two()

    first = push_user(ctx, "user1", mode="complete")
    second = push_user(ctx, "user2", mode="complete")

    one, two = portal_sandbox.uploads("DEMO")
    assert (first.company, second.company) == ("cronus", "cronus eu")
    assert numbers(one, "Item") == ["I1", "I2", "I3", "I4"]
    assert numbers(one, "Customer") == ["C1"]
    assert numbers(two, "Item") == ["EU1", "EU2"]
    assert numbers(two, "Customer") == ["EC1"]  # its salesperson's customers of its company
    assert tables_of(two.body)["CompanyInfo"][0]["Name"] == EU


def test_a_change_in_one_company_reaches_only_that_companys_users(
    make_two, two, bc_clock, portal_sandbox
):
    ctx = make_two()
    for user in USERS:
        push_user(ctx, user, mode="complete")
    bc_clock.advance(60)
    eu = two.company(EU)["id"]
    changed = two.add_item(EU, number="EU3", displayName="Another EU article")
    queued = []

    handled = handle_notification(
        ctx,
        Notification(eu, "items", changed["id"], "created"),
        enqueue_push=lambda user, mode: queued.append(user),
    )
    for user in USERS:
        push_user(ctx, user, mode="incremental")

    assert (handled.action, queued) == ("pushes_queued", ["user2"])
    [news] = portal_sandbox.uploads("DEMO")[len(USERS) :]
    assert (news.user, numbers(news, "Item")) == ("user2", ["EU3"])


def test_watermarks_are_kept_per_company(make_two, portal_sandbox):
    # user1 first reads CRONUS, whose records are all newer than CRONUS EU's.
    push_user(make_two(), "user1", mode="complete")

    moved = make_two(user_companies={**USERS, "user1": "ACME_EU"})
    outcome = push_user(moved, "user1", mode="incremental")

    # CRONUS's watermark would have filtered out every (older) CRONUS EU record.
    assert outcome.company == "cronus eu"
    assert numbers(portal_sandbox.uploads("DEMO")[-1], "Item") == ["EU1", "EU2"]


def test_document_poll_marks_are_kept_per_company(make_two, two, bc_clock, portal_sandbox):
    ctx = make_two()
    ensure_subscriptions(ctx)
    bc_clock.advance(60)
    missed = two.add_invoice(customer_number="C1", salesperson="SP1", lines=[])
    bc_clock.advance(60)
    later = two.add_invoice(customer_number="EC1", salesperson="SP2", lines=[], company=EU)

    handled = handle_notification(
        ctx,
        Notification(two.company(EU)["id"], "salesInvoices", later["id"], "created"),
        enqueue_push=lambda user, mode: None,
    )
    polled = poll_changes(ctx, "salesInvoices", company=ctx.companies["cronus"], force=True)

    assert [(d.user, d.company) for d in handled.documents] == [("user2", "cronus eu")]
    # The newer CRONUS EU invoice did not move CRONUS's mark past the older CRONUS one.
    assert [(d.entity_id, d.user, d.company) for d in polled] == [(missed["id"], "user1", "cronus")]
    assert [u.user for u in portal_sandbox.uploads("DEMO")] == ["user2", "user1"]


def test_a_document_for_a_user_of_another_company_is_not_pushed(make_two, two, portal_sandbox):
    ctx = make_two()
    # SP1 is user1's salesperson, and user1 reads CRONUS.
    invoice = two.add_invoice(customer_number="EC2", salesperson="SP1", lines=[], company=EU)

    handled = handle_notification(
        ctx,
        Notification(two.company(EU)["id"], "salesInvoices", invoice["id"], "created"),
        enqueue_push=lambda user, mode: None,
    )

    assert [(d.user, d.company) for d in handled.documents] == [(None, "cronus eu")]
    assert portal_sandbox.uploads("DEMO") == []


def test_subscriptions_are_kept_per_company(make_two, two):
    ctx = make_two()

    outcomes = ensure_subscriptions(ctx)

    assert sorted((o.company, o.resource, o.action) for o in outcomes) == [
        ("cronus", "items", "created"),
        ("cronus", "salesInvoices", "created"),
        ("cronus eu", "items", "created"),
        ("cronus eu", "salesInvoices", "created"),
    ]
    resources = sorted(s["resource"] for s in two.subscriptions.values())
    companies = sorted({two.company("CRONUS")["id"], two.company(EU)["id"]})
    names = ("items", "salesInvoices")
    assert resources == sorted(f"/api/v2.0/companies({c})/{n}" for c in companies for n in names)
    assert sorted(s.resource for s in ctx.state.subscriptions()) == [
        "cronus eu/items",
        "cronus eu/salesInvoices",
        "cronus/items",
        "cronus/salesInvoices",
    ]


@pytest.mark.parametrize(
    ("users", "message"),
    [
        ("user1@ACME_MAIN, user3", "user 'user3' names no company"),
        ("user1@ACME_MAIN, user3@ACME_US", "user 'user3' names company 'ACME_US', not in"),
    ],
)
def test_with_a_company_map_a_user_of_no_mapped_company_is_refused(make_two, users, message):
    parsed = parse_users(users)

    with pytest.raises(NotConfigured, match=f"^outbound .*: {message}"):
        make_two(users=tuple(parsed), user_companies=parsed, user_map={})


def test_a_document_user_of_no_mapped_company_is_refused(make_two):
    with pytest.raises(NotConfigured, match="user 'office' names no company"):
        make_two(user_map={"SP1": "user1", "SP9": "office"})


def test_without_a_company_map_every_user_reads_bc_company(make_two, portal_sandbox):
    ctx = make_two(company_map=CompanyMap(), user_companies={"user1": "", "user2": "ACME_EU"})

    outcomes = [push_user(ctx, user, mode="complete") for user in USERS]

    assert [o.company for o in outcomes] == ["CRONUS", "CRONUS"]
    items = [numbers(upload, "Item") for upload in portal_sandbox.uploads("DEMO")]
    assert items == [["I1", "I2", "I3", "I4"]] * 2


def test_outbound_users_parse_their_company_after_the_last_at() -> None:
    assert parse_users(" a@ACME , b , c@x@EU ") == {"a": "ACME", "b": "", "c@x": "EU"}
    for bad in ("a@", "@ACME", "a, a@ACME"):
        with pytest.raises(ValueError, match="OUTBOUND_USERS"):
            parse_users(bad)


def test_the_clock_refuses_to_start_with_an_unmapped_outbound_user(tmp_path, redis_url):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BC_", "OUTBOUND_", "DM_"))}
    env.update(
        REDIS_URL=redis_url,
        TARGET="bc",
        BC_TENANT="t",
        BC_CLIENT_ID="c",
        BC_CLIENT_SECRET="s",
        BC_COMPANY_MAP="ACME_MAIN=CRONUS",
        OUTBOUND_USERS="user1@ACME_MAIN,user3",
        DM_APP_AREA="DEMO",
    )
    done = run_packetworker("clock", env=env, cwd=tmp_path, timeout=60)

    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "packetworker: outbound (Business Central → mobile): user 'user3' names no company; "
        "with BC_COMPANY_MAP set, list it in OUTBOUND_USERS as user@COMPANY with a mapped company"
    ]


def test_a_mapped_company_bc_lacks_does_not_stop_the_others_notifications(make_two, two):
    ctx = make_two(
        users=("user1", "user2", "user3"),
        user_companies={**USERS, "user3": "ACME_X"},
        company_map=CompanyMap.parse("ACME_MAIN=CRONUS, ACME_EU=CRONUS EU, ACME_X=ABSENT"),
    )
    queued = []

    handled = handle_notification(
        ctx,
        Notification(two.company(EU)["id"], "items", None, "updated"),
        enqueue_push=lambda user, mode: queued.append(user),
    )

    assert (handled.action, queued) == ("pushes_queued", ["user2"])


def test_a_deletion_in_one_company_reaches_only_its_users_holding_the_record(
    make_two, two, two_client, portal_sandbox
):
    ctx = make_two()
    for user in USERS:
        push_user(ctx, user, mode="complete")
    eu = two_client.for_company(EU)
    [gone] = [i for i in eu.list("items") if i["number"] == "EU2"]
    eu.delete("items", gone["id"], etag=gone["@odata.etag"])

    handled = handle_notification(
        ctx,
        Notification(two.company(EU)["id"], "items", gone["id"], "deleted"),
        enqueue_push=lambda user, mode: None,
    )
    pushed = [push_user(ctx, user) for user in USERS]

    assert handled.users == ["user2"]
    assert [(p.user, p.deleted) for p in pushed] == [
        ("user1", {}),
        ("user2", {"Item": 1, "UOMConversion": 1}),
    ]
