"""Writes in doubt on the CRM targets: a create the CRM commits only after the client timed
out (or never) exists exactly once, whenever it commits. Each create is journalled (here in
a real Redis ledger) before it is sent; one in doubt is looked up again before any re-send
and re-sent only once `in_doubt_seconds` have passed and the look-up still misses it."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from support.clock import ManualClock

from packetworker.packets.model import Record
from packetworker.pipeline.ledger import RedisLedger
from packetworker.sandbox.crmaas import CrmaasEmulator
from packetworker.sandbox.dataverse import DataverseEmulator, default_entities
from packetworker.sandbox.dynamics_portal import DynamicsPortalEmulator
from packetworker.sandbox.targets.crm import CREDENTIALS
from packetworker.sandbox.targets.crmaas import seed_samples as seed_crmaas
from packetworker.sandbox.targets.dataverse import field_sales_entities
from packetworker.sandbox.targets.dataverse import seed_samples as seed_dataverse
from packetworker.targets.base import (
    ApplyContext,
    Outcome,
    RecordOutcome,
    TargetError,
    WriteInDoubt,
)
from packetworker.targets.crm.target import CrmTarget
from packetworker.targets.crmaas.client import CrmaasClient
from packetworker.targets.crmaas.target import CrmaasTarget
from packetworker.targets.dataverse.target import DataverseTarget
from packetworker.targets.dynamics_portal.client import DynamicsPortalClient
from packetworker.targets.dynamics_portal.target import DynamicsPortalTarget
from packetworker.targets.mapping import load_mapping
from tests.crm.support import FakeTime, make_dataverse_client
from tests.crm_targets.harness import CONTACTS, SAMPLES, read_packet

WINDOW = 600.0  # the default of every *_IN_DOUBT_SECONDS
TIMEOUT = 0.5  # the client gives up on a held write after this many seconds
NEW_CUSTOMER = "NEW-PV07-0003"  # samples/new-customer.xml
CONTACT = "CT-000101"  # samples/contacts/1-valid-contact.xml, first contact


@dataclass
class Crm:
    """A CRM emulator, a target on it, the sample its test applies, and how to count the
    records that sample creates (and the requests that would create them)."""

    emulator: Any
    target: CrmTarget
    sample: Path
    stored: Callable[[], int]
    creates: Callable[[], int]
    # Writes that run before the create: a stock Dataverse org first refuses the upsert by
    # `accountnumber` (no such key, crm.md A.7), then the target looks up and POSTs.
    writes_before: int = 0

    def apply(self, journal: RedisLedger) -> list[RecordOutcome]:
        header, records = read_packet(self.sample)
        ctx = ApplyContext("TEST", "packet-1", user="rep-1", header=header, journal=journal)
        return self.target.apply(records, ctx=ctx)


def dataverse_crm(emulator: DataverseEmulator) -> Crm:
    seed_dataverse(emulator)
    client = make_dataverse_client(
        emulator,
        FakeTime(),
        client_id=CREDENTIALS.client_id,
        client_secret=CREDENTIALS.client_secret,
        timeout=TIMEOUT,
    )
    target = DataverseTarget(
        client,
        mapping=load_mapping("dataverse-field-sales"),
        contact_mapping=load_mapping("ipaas-contact"),
        in_doubt_seconds=WINDOW,
    )
    return Crm(
        emulator,
        target,
        SAMPLES / "new-customer.xml",
        stored=lambda: sum(
            a.get("accountnumber") == NEW_CUSTOMER for a in emulator.records("accounts")
        ),
        creates=lambda: len(emulator.requests_to("POST", "$batch")),
        writes_before=1,
    )


def crmaas_crm(emulator: CrmaasEmulator) -> Crm:
    seed_crmaas(emulator)
    client = CrmaasClient(
        emulator.url,
        primary_key=emulator.keys["primary"],
        secondary_key=emulator.keys["secondary"],
        timeout=TIMEOUT,
        sleep=lambda seconds: None,
    )
    target = CrmaasTarget(
        client,
        mapping=load_mapping("crmaas-field-sales"),
        contact_mapping=load_mapping("ipaas-contact"),
        in_doubt_seconds=WINDOW,
    )
    return Crm(
        emulator,
        target,
        SAMPLES / "new-customer.xml",
        stored=lambda: sum(
            (o.get("customFields") or {}).get("customer_number") == NEW_CUSTOMER
            for o in emulator.records("organizations")
        ),
        creates=lambda: len(emulator.requests_to("POST", "/directory/organizations")),
    )


def portal_crm(emulator: DynamicsPortalEmulator) -> Crm:
    client = DynamicsPortalClient(
        emulator.url,
        client_id=CREDENTIALS.client_id,
        scope=CREDENTIALS.portal_scope,
        timeout=TIMEOUT,
        sleep=lambda seconds: None,
    )
    target = DynamicsPortalTarget(
        client,
        mapping=load_mapping("dataverse-field-sales"),
        contact_mapping=load_mapping("ipaas-contact"),
        in_doubt_seconds=WINDOW,
    )
    return Crm(
        emulator,
        target,
        CONTACTS / "1-valid-contact.xml",
        stored=lambda: sum(
            r["fields"].get("new_customernumber") == CONTACT for r in emulator.records.values()
        ),
        creates=lambda: len(emulator.requests_to("POST", "/records")),
    )


EMULATORS: dict[str, Callable[[], Any]] = {
    "dataverse": lambda: DataverseEmulator(
        clients={CREDENTIALS.client_id: CREDENTIALS.client_secret},
        entities=field_sales_entities(),  # a stock org: no key on accountnumber (crm.md A.7)
    ),
    "crmaas": lambda: CrmaasEmulator(
        primary_key=CREDENTIALS.primary_key, secondary_key=CREDENTIALS.secondary_key
    ),
    # the proxy's contract documents no duplicate rule; this deployment has one on email (a switch).
    "dynamics-portal": lambda: DynamicsPortalEmulator(
        clients={CREDENTIALS.client_id: CREDENTIALS.portal_scope},
        unique_columns=("emailaddress1",),
    ),
}
BUILDERS: dict[str, Callable[[Any], Crm]] = {
    "dataverse": dataverse_crm,
    "crmaas": crmaas_crm,
    "dynamics-portal": portal_crm,
}


def open_crm(name: str) -> Iterator[Crm]:
    with EMULATORS[name]() as emulator:
        crm = BUILDERS[name](emulator)
        try:
            yield crm
        finally:
            crm.target.close()


@pytest.fixture(params=["dataverse", "crmaas"])
def queryable(request) -> Iterator[Crm]:
    """The CRMs a create can be looked up in by its key."""
    yield from open_crm(request.param)


@pytest.fixture(params=list(EMULATORS))
def any_crm(request) -> Iterator[Crm]:
    yield from open_crm(request.param)


@pytest.fixture
def portal() -> Iterator[Crm]:
    yield from open_crm("dynamics-portal")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def journal(redis_url: str, clock: ManualClock) -> Iterator[RedisLedger]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    namespace = f"pwtest-crmdoubt-{uuid.uuid4().hex[:10]}"
    yield RedisLedger(client, namespace, clock=clock)
    keys = list(client.scan_iter(f"{namespace}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


def applied_once(crm: Crm, outcomes: list[RecordOutcome], journal: RedisLedger) -> None:
    assert crm.stored() == 1
    assert Outcome.FAILED not in {o.outcome for o in outcomes}
    assert Outcome.APPLIED in {o.outcome for o in outcomes}
    assert journal.writes_in_doubt("packet-1") == {}


def test_a_create_committed_after_the_client_timed_out_is_found_and_not_sent_again(
    queryable: Crm, journal, clock
):
    crm = queryable
    crm.emulator.commit_late(after=crm.writes_before)
    with pytest.raises(WriteInDoubt):
        crm.apply(journal)  # the client gives up; the CRM holds the create
    assert crm.emulator.held == 1
    sent = crm.creates()
    clock.advance(60)
    with pytest.raises(WriteInDoubt) as caught:
        crm.apply(journal)  # not found yet, and too early to send again
    assert caught.value.retry_after == pytest.approx(WINDOW - 60)
    assert crm.emulator.release_late() == 1  # now the CRM commits it

    outcomes = crm.apply(journal)  # the look-up finds it, well inside the window

    applied_once(crm, outcomes, journal)
    assert crm.creates() == sent


def test_a_create_never_committed_is_sent_again_only_once_its_window_has_passed(
    any_crm: Crm, journal, clock
):
    crm = any_crm
    crm.emulator.commit_late(after=crm.writes_before)
    with pytest.raises(WriteInDoubt):
        crm.apply(journal)
    assert crm.emulator.release_late(commit=False) == 1  # lost: the CRM never ran it
    sent = crm.creates()

    clock.advance(WINDOW - 1)
    with pytest.raises(WriteInDoubt):
        crm.apply(journal)
    assert crm.creates() == sent  # nothing sent again
    clock.advance(2)
    outcomes = crm.apply(journal)

    applied_once(crm, outcomes, journal)
    assert crm.creates() == sent + 1


def test_a_portal_proxy_create_committed_late_is_never_sent_again_within_its_window(
    portal: Crm, journal, clock
):
    """The proxy cannot be queried: only the window and Dynamics' duplicate rule (which
    refuses the re-send of a create that committed) keep it from existing twice."""
    portal.emulator.commit_late()
    with pytest.raises(WriteInDoubt):
        portal.apply(journal)
    clock.advance(WINDOW - 1)
    with pytest.raises(WriteInDoubt):
        portal.apply(journal)
    assert portal.creates() == 1
    assert portal.emulator.release_late() == 1
    clock.advance(2)

    outcomes = portal.apply(journal)

    applied_once(portal, outcomes, journal)
    contact = next(o for o in outcomes if o.outcome is Outcome.APPLIED)
    assert "earlier attempt" in (contact.message or "")


class CountingJournal(RedisLedger):
    """A ledger that counts the writes recorded as in doubt."""

    recorded = 0

    def record_in_doubt(self, packet_id, writes):
        self.recorded += len(writes)
        super().record_in_doubt(packet_id, writes)


def test_a_dataverse_create_by_alternate_key_is_safe_to_repeat_and_not_journalled(redis_url, clock):
    entities = field_sales_entities()
    entities["accounts"] = default_entities(account_number_key="Active")["accounts"]
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    namespace = f"pwtest-crmdoubt-{uuid.uuid4().hex[:10]}"
    journal = CountingJournal(client, namespace, clock=clock)
    emulator = DataverseEmulator(
        clients={CREDENTIALS.client_id: CREDENTIALS.client_secret}, entities=entities
    )
    with emulator:
        crm = dataverse_crm(emulator)
        emulator.commit_late()
        with pytest.raises(TargetError) as caught:
            crm.apply(journal)  # the $batch timed out: an ordinary transient failure
        assert not isinstance(caught.value, WriteInDoubt)
        assert emulator.release_late() == 1  # it commits late

        outcomes = crm.apply(journal)  # sent again at once: 412, the change set rolls back
        crm.target.close()

    assert crm.stored() == 1
    assert len(emulator.records("contacts")) == 1  # no second primary contact either
    assert Outcome.FAILED not in {o.outcome for o in outcomes}
    assert journal.recorded == 0
    for key in client.scan_iter(f"{namespace}:*"):
        client.delete(key)
    client.close()


@pytest.fixture
def dataverse() -> Iterator[Crm]:
    yield from open_crm("dataverse")


def test_a_timed_out_group_batch_leaves_each_packets_creates_in_doubt_in_its_own_journal(
    dataverse: Crm, journal, clock
):
    crm = dataverse
    header, [customer] = read_packet(SAMPLES / "new-customer.xml")
    numbers = ["NEW-GROUP-1", "NEW-GROUP-2", "NEW-GROUP-3"]
    group = [
        (
            [Record(customer.table, customer.status, {**customer.fields, "No": number})],
            ApplyContext("TEST", f"packet-{number}", user="rep-1", header=header, journal=journal),
        )
        for number in numbers
    ]
    # The stock org refuses the upserts by `accountnumber` (one $batch for the group), then
    # holds the group's $batch of plain POSTs: the client times out.
    crm.emulator.commit_late(after=crm.writes_before)

    results = crm.target.apply_group(group)

    assert all(isinstance(result, WriteInDoubt) for result in results)
    assert len(crm.emulator.requests_to("POST", "$batch")) == 2  # for 3 packets
    for number in numbers:
        [write] = journal.writes_in_doubt(f"packet-{number}").values()
        assert write.keys == {"accountnumber": number}
    assert crm.emulator.release_late() == 1  # the CRM commits the held batch
    clock.advance(60)

    results = crm.target.apply_group(group)  # the look-ups find every create

    assert [[o.outcome for o in result] for result in results] == [[Outcome.APPLIED]] * 3
    for number in numbers:
        assert journal.writes_in_doubt(f"packet-{number}") == {}
        assert sum(a.get("accountnumber") == number for a in crm.emulator.records("accounts")) == 1
    assert len(crm.emulator.requests_to("POST", "$batch")) == 2  # nothing sent again
