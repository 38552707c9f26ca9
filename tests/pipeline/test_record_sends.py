"""What reaches the target, record by record: a resumed packet sends each record at most
once more than the target saw it, and a long packet keeps its lock and its progress.

The recording target is idempotent, so counting outcomes cannot tell a record re-sent from
one skipped; these tests count what the target was handed instead.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import pytest
from pipeline_samples import order

from packetworker.packets.model import Record
from packetworker.pipeline.polling import poll_once
from packetworker.pipeline.processing import process_packet
from packetworker.targets.base import ApplyContext, RecordOutcome
from packetworker.targets.recording import RecordingTarget, SimulatedCrash


@pytest.fixture
def ledger(redis_ledger):
    """The Redis ledger: its lock's TTL is what a second worker would look at."""
    return redis_ledger


class CountingTarget(RecordingTarget):
    """A recording target that counts how often each record (by DMS_ROWID) was handed to it,
    and runs `between` before every call after the first."""

    def __init__(self, **options) -> None:
        super().__init__(**options)
        self.sent: Counter[str] = Counter()
        self.between = None

    def apply(self, records: Sequence[Record], *, ctx: ApplyContext) -> list[RecordOutcome]:
        if self.calls and self.between is not None:
            self.between(ctx)
        self.sent.update(r.dms_rowid or "" for r in records)
        return super().apply(records, ctx=ctx)


def test_records_linked_before_a_crash_are_not_handed_to_the_target_again(sandbox, make_ctx):
    target = CountingTarget(crash_after=3)
    ctx = make_ctx(sandbox, target=target, apply_batch_size=2)
    packet_id = sandbox.enqueue("DEMO", order("SO1", lines=4), user="u1")
    poll_once(ctx, "DEMO")
    with pytest.raises(SimulatedCrash):
        process_packet(ctx, "DEMO", packet_id)

    result = process_packet(ctx, "DEMO", packet_id)

    assert result.state == "applied"
    # The first batch (header, line 0) was linked in the ledger: never handed over again.
    # The second (lines 1 and 2) crashed before its links were written: handed over again.
    assert target.sent == {"SO1-h": 1, "SO1-l0": 1, "SO1-l1": 2, "SO1-l2": 2, "SO1-l3": 1}


def test_a_packet_applied_in_batches_refreshes_its_lock_and_progress_between_them(
    sandbox, make_ctx, clock
):
    target = CountingTarget()
    ctx = make_ctx(sandbox, target=target, apply_batch_size=2)
    packet_id = sandbox.enqueue("DEMO", order("SO1", lines=5), user="u1")
    poll_once(ctx, "DEMO")
    lock_key = f"{ctx.ledger.ns}:lock:packet:{packet_id}"
    seen: list[tuple[int, float]] = []

    def between(apply_ctx: ApplyContext) -> None:
        # What a long batch does to the lock and the entry's age, then what the worker did
        # about it before this call.
        seen.append((ctx.ledger.client.pttl(lock_key), ctx.ledger.get(packet_id).updated_at))
        ctx.ledger.client.pexpire(lock_key, 1_000)
        clock.advance(60)

    target.between = between

    assert process_packet(ctx, "DEMO", packet_id).state == "applied"

    assert target.calls == 3
    ttl_ms = ctx.settings.packet_lock_ttl * 1000
    # Before the 2nd call nothing was shortened yet; before the 3rd the lock is back to its
    # full TTL and the entry was touched after the clock moved on.
    (_, first_update), (ttl, second_update) = seen
    assert ttl > ttl_ms - 5_000
    assert second_update >= first_update + 60
