"""The error policy through the real processing path (Redis ledger, file archive, replay):
quarantine puts the packet in quarantine with the contact rule's message; skip applies the packet
and counts the skipped record."""

from __future__ import annotations

from packetworker.pipeline.archive import open_archive
from packetworker.pipeline.context import PipelineContext
from packetworker.pipeline.ledger import RedisLedger
from packetworker.pipeline.replay import replay
from packetworker.settings import Settings
from tests.crm_targets.harness import CONTACTS, harness_for
from tests.crm_targets.test_contact_rules import COMPANY_NOT_FOUND

NOT_FOUND_ROW = "40516273-8d9e-4fa0-b1c2-d3e4f5061728"


def run(tmp_path, redis_client, record_errors):
    client, namespace = redis_client
    with harness_for("dataverse", record_errors=record_errors) as crm:
        ctx = PipelineContext(
            settings=Settings(),
            ledger=RedisLedger(client, namespace),
            archive=open_archive(f"file://{tmp_path / 'archive'}"),
            target=crm.target,
            portal_factory=lambda area: None,
            spool_dir=tmp_path / "spool",
        )
        return replay([str(CONTACTS / "6-company-not-found.xml")], ctx=ctx, app_area="TEST")


def test_quarantine_policy_quarantines_the_packet_with_the_rules_message(
    tmp_path, redis_client
) -> None:
    summary = run(tmp_path, redis_client, "quarantine")

    assert summary.states == {"quarantined": 1}
    assert list(summary.quarantined.values()) == [
        f"1 record(s) failed: Contact/{NOT_FOUND_ROW}: {COMPANY_NOT_FOUND}"
    ]


def test_skip_policy_applies_the_packet_and_counts_the_skipped_record(
    tmp_path, redis_client
) -> None:
    summary = run(tmp_path, redis_client, "skip")

    assert (summary.states, summary.records) == ({"applied": 1}, {"skipped": 1})
