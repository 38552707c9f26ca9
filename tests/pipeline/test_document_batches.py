"""A target that maps documents gets a big packet in batches of whole documents (assembled
on disk, whatever the order of the packet's tables), with the packet's lock kept alive
throughout, and a crash between batches re-sends nothing already linked. Real portal
sandbox over HTTP and a real Redis ledger."""

from __future__ import annotations

import io
import time
from collections.abc import Sequence

import pytest
from pipeline_samples import xml_packet
from support.waiting import wait_for

from packetworker.packets import Record, convert
from packetworker.packets.assembly import DocumentShape, Join
from packetworker.pipeline.polling import poll_once
from packetworker.pipeline.processing import process_packet, process_packets
from packetworker.targets import ApplyContext, RecordOutcome
from packetworker.targets.recording import RecordingTarget, SimulatedCrash


@pytest.fixture
def ledger(redis_ledger):
    return redis_ledger


class DocumentTarget(RecordingTarget):
    """Records, keeping the row ids of every `apply` call; sales lines belong to headers."""

    documents = DocumentShape({"SalesLine": Join("SalesHeader", ("no",), ("documentNo",))})

    def __init__(self, **faults) -> None:
        super().__init__(**faults)
        self.batches: list[list[str]] = []

    def apply(self, records: Sequence[Record], *, ctx: ApplyContext) -> list[RecordOutcome]:
        self.batches.append([r.dms_rowid or "" for r in records])
        return super().apply(records, ctx=ctx)


def orders_packet(lines: dict[str, int]) -> bytes:
    """Orders (number → line count), every line before every header, as a packet may
    list its tables."""
    rows = [
        ("SalesLine", f"{no}-l{i}", {"documentNo": no, "lineNo": str(i)})
        for i in range(max(lines.values()))
        for no, count in lines.items()
        if i < count
    ]
    rows += [("SalesHeader", no, {"no": no}) for no in lines]
    return xml_packet("u1", *rows)


def run(sandbox, ctx, body: bytes):
    packet_id = sandbox.enqueue("DEMO", body, user="u1")
    poll_once(ctx, "DEMO")
    return packet_id, process_packet(ctx, "DEMO", packet_id)


def document_of(rowid: str) -> str:
    return rowid.split("-l")[0]


@pytest.mark.parametrize("format", ["xml", "json"])
def test_a_big_packet_comes_in_batches_of_whole_documents(sandbox, make_ctx, format):
    target = DocumentTarget()
    ctx = make_ctx(sandbox, target=target, apply_batch_size=5)
    lines = {f"SO{n}": 2 for n in range(6)} | {"SO-BIG": 7}
    body = io.BytesIO()
    convert(io.BytesIO(orders_packet(lines)), body, to=format)

    _, result = run(sandbox, ctx, body.getvalue())

    assert result.state == "applied"
    assert result.outcomes == {"applied": 6 * 3 + 8}
    seen: dict[str, int] = {}
    for batch in target.batches:
        assert batch[0] in lines, "each batch starts with a header"
        for rowid in batch:
            seen.setdefault(document_of(rowid), target.batches.index(batch))
            assert seen[document_of(rowid)] == target.batches.index(batch), "document split"
        assert len(batch) <= 5 or set(map(document_of, batch)) == {"SO-BIG"}
    assert set(seen) == set(lines)
    assert ["SO-BIG", *(f"SO-BIG-l{i}" for i in range(7))] in target.batches
    assert list(ctx.spool_dir.iterdir()) == []  # the spool and the child file removed


def test_batches_of_large_records_are_bounded_by_their_characters_too(sandbox, make_ctx):
    # Each order: a header and two lines of about 2,000 characters, so three orders pass
    # 12,000 characters long before they reach the 1,000 records the size bound allows.
    target = DocumentTarget()
    ctx = make_ctx(sandbox, target=target, apply_batch_size=1000, apply_batch_chars=12_000)
    rows = [("SalesHeader", f"SO{n}", {"no": f"SO{n}"}) for n in range(6)]
    rows += [
        ("SalesLine", f"SO{n}-l{i}", {"documentNo": f"SO{n}", "note": "x" * 2000})
        for n in range(6)
        for i in range(2)
    ]

    _, result = run(sandbox, ctx, xml_packet("u1", *rows))

    assert result.state == "applied"
    assert [sorted(set(map(document_of, batch))) for batch in target.batches] == [
        ["SO0", "SO1"],
        ["SO2", "SO3"],
        ["SO4", "SO5"],
    ]


def test_a_packet_that_fits_one_batch_is_one_call_in_packet_order(sandbox, make_ctx):
    target = DocumentTarget()
    ctx = make_ctx(sandbox, target=target, apply_batch_size=100)

    _, result = run(sandbox, ctx, orders_packet({"SO1": 2, "SO2": 1}))

    assert result.state == "applied"
    assert target.batches == [["SO1-l0", "SO2-l0", "SO1-l1", "SO1", "SO2"]]


def test_a_crash_between_batches_then_retry_sends_only_what_was_not_linked(sandbox, make_ctx):
    target = DocumentTarget(crash_after=7)  # the first batch and one record of the second
    ctx = make_ctx(sandbox, target=target, apply_batch_size=6)
    packet_id = sandbox.enqueue("DEMO", orders_packet({f"SO{n}": 2 for n in range(4)}), user="u1")
    poll_once(ctx, "DEMO")

    with pytest.raises(SimulatedCrash):
        process_packet(ctx, "DEMO", packet_id)
    first, second = target.batches
    target.batches.clear()
    result = process_packet(ctx, "DEMO", packet_id)

    assert result.state == "applied"
    assert target.batches == [second]  # the first batch was linked: not sent again
    assert result.outcomes == {"unchanged": 6 + 1, "applied": 5}
    assert sorted(e["dms_rowid"] for e in target.entries()) == sorted(first + second)


class SlowTarget(DocumentTarget):
    """Blocks in every `apply` call until `done()` holds."""

    def __init__(self, done) -> None:
        super().__init__()
        self.done = done

    def apply(self, records: Sequence[Record], *, ctx: ApplyContext) -> list[RecordOutcome]:
        started = time.monotonic()
        wait_for(lambda: self.done(started), timeout=10, what="the packet lock refreshed")
        return super().apply(records, ctx=ctx)


def held_elsewhere(ctx, packet_id: str) -> bool:
    """Whether another worker would be refused the packet now."""
    with ctx.ledger.locks.try_lock(f"packet:{packet_id}", ttl=1) as another_worker:
        return another_worker is None


def test_the_lock_outlives_its_ttl_while_one_long_batch_runs(sandbox, make_ctx):
    ttl = 0.6

    def refreshed(started: float) -> bool:
        """The lock has lived through twice its TTL since the call began, and is still ours."""
        return time.monotonic() - started > 2 * ttl and held_elsewhere(ctx, packet_id)

    target = SlowTarget(refreshed)
    ctx = make_ctx(sandbox, target=target, packet_lock_ttl=ttl, apply_batch_size=3)
    packet_id = sandbox.enqueue("DEMO", orders_packet({"SO1": 2, "SO2": 2}), user="u1")
    poll_once(ctx, "DEMO")

    result = process_packet(ctx, "DEMO", packet_id)

    assert result.state == "applied"
    assert len(target.batches) == 2


def test_every_lock_of_a_group_outlives_its_ttl_while_the_group_is_applied(sandbox, make_ctx):
    ttl = 0.6
    ids: list[str] = []

    def refreshed(started: float) -> bool:
        elapsed = time.monotonic() - started > 2 * ttl
        return elapsed and all(held_elsewhere(ctx, packet_id) for packet_id in ids)

    ctx = make_ctx(sandbox, target=SlowTarget(refreshed), packet_lock_ttl=ttl)
    ids += [sandbox.enqueue("DEMO", orders_packet({f"SO{n}": 1}), user="u1") for n in range(2)]
    poll_once(ctx, "DEMO")

    results = process_packets(ctx, "DEMO", ids)

    assert [r.state for r in results] == ["applied", "applied"]
