"""The contact rules still hold after a worker restart: a new target instance (as a
new process has) with the same Redis ledger. CRMs that can be queried find their records
there; the portal proxy, which cannot be queried, finds them in the ledger's reference map."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import redis

from packetworker.packets import open_packet
from packetworker.pipeline.archive import open_archive
from packetworker.pipeline.context import PipelineContext
from packetworker.pipeline.ledger import LedgerTargetRefs, RedisLedger
from packetworker.pipeline.replay import replay
from packetworker.settings import Settings
from packetworker.targets.base import Outcome
from tests.crm_targets.harness import CONTACTS, Harness
from tests.crm_targets.test_contact_rules import (
    COMPANY_NOT_FOUND,
    DUPLICATE,
    DUPLICATE_ROW,
    INVALID_EMAIL,
    INVALID_ROW,
    MISSING_EMAIL,
    MISSING_ROW,
    NOT_FOUND_ROW,
)


@pytest.fixture
def ledger(redis_url):
    """A Redis ledger in a namespace of this test's own; every "process" opens its own."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    namespace = f"pw-crm-restart-{uuid.uuid4().hex[:8]}"
    yield lambda: RedisLedger(client, namespace)
    for key in client.scan_iter(f"{namespace}*"):
        client.delete(key)
    client.close()


def run(crm: Harness, ledger, tmp_path: Path, sample: str):
    ctx = PipelineContext(
        settings=Settings(),
        ledger=ledger(),
        archive=open_archive(f"file://{tmp_path / 'archive'}"),
        target=crm.target,
        portal_factory=lambda area: None,
        spool_dir=tmp_path / "spool",
    )
    summary = replay([str(CONTACTS / sample)], ctx=ctx, app_area="TEST")
    return summary.states, summary.records, list(summary.quarantined.values())


def failed(row: str, message: str) -> list[str]:
    return [f"1 record(s) failed: Contact/{row}: {message}"]


def test_the_contact_rules_hold_across_worker_restarts(crm: Harness, ledger, tmp_path) -> None:
    assert run(crm, ledger, tmp_path, "1-valid-contact.xml")[0] == {"applied": 1}
    crm.restart()

    assert run(crm, ledger, tmp_path, "2-duplicate-contact.xml")[2] == failed(
        DUPLICATE_ROW, DUPLICATE
    )
    assert run(crm, ledger, tmp_path, "4-linked-company.xml")[:2] == (
        {"applied": 1},
        {"applied": 1},
    )
    crm.restart()

    assert run(crm, ledger, tmp_path, "4-linked-company.json")[:2] == (
        {"applied": 1},
        {"unchanged": 1},
    )
    assert run(crm, ledger, tmp_path, "3-missing-email.xml")[2] == failed(
        MISSING_ROW, MISSING_EMAIL
    )
    assert run(crm, ledger, tmp_path, "5-invalid-email.xml")[2] == failed(
        INVALID_ROW, INVALID_EMAIL
    )
    assert run(crm, ledger, tmp_path, "6-company-not-found.xml")[2] == failed(
        NOT_FOUND_ROW, COMPANY_NOT_FOUND
    )
    assert sorted(c.number for c in crm.contacts()) == ["CT-000101", "CT-000104"]


def test_a_packet_a_dead_worker_applied_but_never_recorded_is_unchanged_on_the_next(
    crm: Harness, ledger, tmp_path
) -> None:
    with open_packet(CONTACTS / "4-linked-company.xml") as reader:
        header, records = reader.header, list(reader)
    # The worker applied the packet, then died before the ledger recorded its links.
    refs = LedgerTargetRefs(ledger(), crm.target.name)
    [first] = crm.apply(records, header=header, refs=refs)
    crm.restart()

    states, outcomes, _ = run(crm, ledger, tmp_path, "4-linked-company.xml")

    assert first.outcome is Outcome.APPLIED
    assert (states, outcomes) == ({"applied": 1}, {"unchanged": 1})
    [contact] = crm.contacts()
    assert contact.id == first.target_ref


@pytest.mark.parametrize("backend", ["redis", "memory"])
def test_a_target_reference_map_keeps_keys_until_put_empty(backend, ledger) -> None:
    from packetworker.pipeline.ledger import MemoryLedger

    store = ledger() if backend == "redis" else MemoryLedger()
    refs = LedgerTargetRefs(store, "dynamics-portal")
    other = LedgerTargetRefs(store, "another-target")
    refs.put({"row|Contact|1": "id-1", "row|Contact|2": "id-2"})

    refs.put({"row|Contact|1": ""})

    assert refs.get(["row|Contact|1", "row|Contact|2", "row|Contact|3"]) == {
        "row|Contact|2": "id-2"
    }
    assert other.get(["row|Contact|2"]) == {}
