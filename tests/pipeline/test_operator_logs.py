"""What an operator reads when a packet's ledger entry vanishes mid-run (Redis flushed): one
clear warning, no `KeyError` traceback, nothing retried in vain. The busy-packet retry is
checked on real worker processes in `e2e/test_group_sigterm.py`."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pytest
from pipeline_samples import order

from packetworker.packets.model import Record
from packetworker.pipeline.polling import poll_once
from packetworker.pipeline.processing import VANISHED, process_packet
from packetworker.targets import ApplyContext, RecordOutcome
from packetworker.targets.recording import RecordingTarget


@pytest.fixture
def ledger(redis_ledger):
    return redis_ledger


class FlushingTarget(RecordingTarget):
    """Applies the first batch, then Redis loses the ledger's data (as a flush would)."""

    def __init__(self, flush) -> None:
        super().__init__()
        self.flush = flush

    def apply(self, records: Sequence[Record], *, ctx: ApplyContext) -> list[RecordOutcome]:
        outcomes = super().apply(records, ctx=ctx)
        self.flush()
        return outcomes


def test_a_ledger_entry_vanishing_mid_packet_is_one_warning_without_a_traceback(
    sandbox, make_ctx, redis_namespace, caplog
):
    client, namespace = redis_namespace

    def flush() -> None:
        client.delete(*client.scan_iter(f"{namespace}:*"))

    ctx = make_ctx(sandbox, target=FlushingTarget(flush), apply_batch_size=2)
    packet_id = sandbox.enqueue("DEMO", order("SO1", lines=3), user="u1")
    poll_once(ctx, "DEMO")
    caplog.set_level(logging.DEBUG, logger="packetworker")

    result = process_packet(ctx, "DEMO", packet_id)

    ours = [r for r in caplog.records if r.name.startswith("packetworker")]
    warnings = [r for r in ours if r.levelno >= logging.WARNING]
    assert [(r.levelname, "vanished" in r.getMessage()) for r in warnings] == [("WARNING", True)]
    assert [r for r in ours if r.exc_info or r.exc_text] == []
    assert (result.state, result.error) == ("unknown", VANISHED)
    # Not acknowledged: the packet stays pending in the portal for the next poll to list.
    assert packet_id in sandbox.pending("DEMO")
