"""Writes in doubt: a `$batch` BC accepts but answers only after the client gave up (or never)
may still commit. Each create is journalled before it is sent; one in doubt is re-sent only
when a look-up `in_doubt_seconds` after sending still misses it, so every document, credit
memo and payment line exists once, with exactly its lines, whenever BC commits it."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest
import redis
from support.clock import ManualClock

from packetworker.pipeline.archive import open_archive
from packetworker.pipeline.context import PipelineContext, portal_factory_for
from packetworker.pipeline.ledger import MemoryLedger, PacketState, RedisLedger
from packetworker.pipeline.polling import poll_once
from packetworker.pipeline.processing import process_packet
from packetworker.pipeline.results import RetryLater
from packetworker.settings import Settings
from packetworker.targets import Outcome
from packetworker.targets.base import TargetError, WriteInDoubt

from .conftest import SAMPLES, apply_file, apply_records, credit_memos, orders, payments, rec

WINDOW = 600.0  # BC's longest request (business-central.md §5.3-5.4), the default

ORDER = {"BSO-000241": [("W-1001", 24, "БР"), ("J-2040", 6, "БР"), ("C-3007", 10, "ПК")]}
CREDIT_MEMO = {"BRO-000017": [("J-2040", 2, "БР"), ("C-3007", 1, "ПК")]}
PAYMENT_LINES = [
    ("BPM-000052", "PV-01042", -120, "INV-2026-00981"),
    ("BPM-000052", "PV-01042", -52.8, "INV-2026-01013"),
    ("BPM-000052", "PV-01042", -7.2, ""),
]
# sample -> (what BC holds of that kind, what it must hold afterwards)
SAMPLES_IN_BC: dict[str, tuple[Callable, object]] = {
    "sales-order": (orders, ORDER),
    "return-order": (credit_memos, CREDIT_MEMO),
    "payment": (payments, PAYMENT_LINES),
}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def journal(clock: ManualClock) -> MemoryLedger:
    return MemoryLedger(clock=clock)


def sent_batches(bc) -> int:
    """`$batch` requests BC answered, leaving out the held ones it dropped (504)."""
    return sum(r.path.endswith("$batch") and r.status != 504 for r in bc.requests)


def in_background(call: Callable[[], object]) -> tuple[threading.Thread, dict]:
    """Run `call` in a thread (its request is held by BC); the result or error lands in the
    dict once the thread ends."""
    out: dict = {}

    def run() -> None:
        try:
            out["result"] = call()
        except BaseException as exc:
            out["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


@pytest.mark.parametrize("name", list(SAMPLES_IN_BC))
def test_a_write_bc_commits_after_the_client_timed_out_exists_once_with_its_lines(
    bc, make_target, journal, clock, name
):
    stored, expected = SAMPLES_IN_BC[name]
    target = make_target(timeout=0.5, in_doubt_seconds=WINDOW)
    path = SAMPLES / f"{name}.xml"
    bc.commit_late()

    with pytest.raises(WriteInDoubt):
        apply_file(target, path, journal=journal)  # the client gives up; BC holds the write
    assert bc.held == 1
    clock.advance(60)
    with pytest.raises(WriteInDoubt) as caught:
        apply_file(target, path, journal=journal)  # not found yet: too early to send again
    assert caught.value.retry_after == pytest.approx(WINDOW - 60)
    assert bc.release_late() == 1  # now BC commits it

    outcomes = apply_file(target, path, journal=journal)

    assert stored(bc) == expected
    assert Outcome.FAILED not in {o.outcome for o in outcomes}
    assert Outcome.APPLIED in {o.outcome for o in outcomes}  # linked as applied, not unchanged
    assert journal.writes_in_doubt(path.stem) == {}


def test_a_write_bc_never_committed_is_sent_again_once_its_window_has_passed(
    bc, make_target, journal, clock
):
    target = make_target(timeout=0.5, in_doubt_seconds=WINDOW)
    path = SAMPLES / "return-order.xml"
    bc.commit_late()
    with pytest.raises(WriteInDoubt):
        apply_file(target, path, journal=journal)
    bc.release_late(commit=False)  # lost: BC never ran it (and answers 504 to no one)

    clock.advance(WINDOW - 1)
    with pytest.raises(WriteInDoubt):
        apply_file(target, path, journal=journal)
    assert sent_batches(bc) == 0  # nothing re-sent
    clock.advance(2)
    outcomes = apply_file(target, path, journal=journal)

    assert credit_memos(bc) == CREDIT_MEMO
    assert {o.outcome for o in outcomes} >= {Outcome.APPLIED}
    assert journal.writes_in_doubt(path.stem) == {}


def test_a_write_is_journalled_before_it_is_sent_and_cleared_by_its_answer(
    bc, make_target, journal, clock
):
    target = make_target(in_doubt_seconds=WINDOW)
    bc.commit_late()
    thread, out = in_background(
        lambda: apply_file(target, SAMPLES / "sales-order.xml", journal=journal)
    )
    assert bc.wait_held(1)

    [pending] = journal.writes_in_doubt("sales-order").values()
    assert (pending.operation, pending.sent_at) == ("POST salesOrders", clock.now)
    assert pending.keys == {"externalDocumentNumber": "BSO-000241", "customerNumber": "PV-01042"}
    bc.release_late()
    thread.join(timeout=30)

    assert "error" not in out
    assert journal.writes_in_doubt("sales-order") == {}
    assert orders(bc) == ORDER


def test_a_504_after_sending_leaves_the_write_in_doubt(bc, make_target, journal, clock):
    target = make_target(in_doubt_seconds=WINDOW)
    bc.commit_late()
    thread, out = in_background(
        lambda: apply_file(target, SAMPLES / "sales-order.xml", journal=journal)
    )
    assert bc.wait_held(1)
    bc.release_late(commit=False)  # BC answers 504 Gateway Timeout
    thread.join(timeout=30)

    assert isinstance(out.get("error"), WriteInDoubt)
    assert list(journal.writes_in_doubt("sales-order")) == [
        "salesOrders externalDocumentNumber=BSO-000241"
    ]
    with pytest.raises(WriteInDoubt):
        apply_file(target, SAMPLES / "sales-order.xml", journal=journal)
    assert orders(bc) == {}


def test_a_refused_write_is_not_left_in_doubt(bc, make_target, journal):
    target = make_target(in_doubt_seconds=WINDOW)
    records = [
        rec("SalesHeader", DMS_ROWID="h1", documentType="0", no="SO-X", customerNo="PV-01042"),
        rec(
            "SalesLine",
            DMS_ROWID="l1",
            documentNo="SO-X",
            lineNo="1000",
            no="NO-SUCH",
            quantity="1",
        ),
    ]

    outcomes = apply_records(target, records, journal=journal, packet_id="refused")

    assert {o.outcome for o in outcomes} == {Outcome.FAILED}
    assert journal.writes_in_doubt("refused") == {}


# --- through the pipeline: a retry later, not a failed attempt or a quarantine -----------


@pytest.fixture
def redis_ledger(redis_url: str, clock: ManualClock) -> Iterator[RedisLedger]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    namespace = f"pwtest-doubt-{uuid.uuid4().hex[:10]}"
    yield RedisLedger(client, namespace, clock=clock)
    keys = list(client.scan_iter(f"{namespace}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


def test_the_pipeline_retries_a_packet_in_doubt_later_and_applies_it_once(
    bc, make_target, redis_ledger, clock, portal_sandbox, tmp_path
):
    settings = Settings(
        _env_file=None,
        dm_api_url=portal_sandbox.url,
        dm_storage_http_hosts=portal_sandbox.storage_hosts,
        dm_app_area="DEMO",
        dm_api_key=portal_sandbox.app_areas["DEMO"],
        archive_url=f"file://{tmp_path}/archive",
        spool_dir=tmp_path / "spool",
        max_attempts=1,
        retry_min_backoff_ms=1000,
        retry_max_backoff_ms=120_000,
    )
    ctx = PipelineContext(
        settings=settings,
        ledger=redis_ledger,
        archive=open_archive(settings.archive_url),
        target=make_target(timeout=0.5, in_doubt_seconds=WINDOW),
        portal_factory=portal_factory_for(settings),
        spool_dir=settings.spool_dir,
    )
    packet_id = portal_sandbox.enqueue(
        "DEMO", (SAMPLES / "sales-order.xml").read_bytes(), user="rep-1"
    )
    poll_once(ctx, "DEMO")
    bc.commit_late()

    with pytest.raises(RetryLater) as first:
        process_packet(ctx, "DEMO", packet_id)
    clock.advance(300)
    with pytest.raises(RetryLater) as second:
        process_packet(ctx, "DEMO", packet_id)
    entry = redis_ledger.get(packet_id)
    bc.release_late()
    result = process_packet(ctx, "DEMO", packet_id)

    assert (first.value.seconds, second.value.seconds) == (120, 120)  # capped by max backoff
    assert entry.state is PacketState.APPLYING  # neither quarantined nor acknowledged
    assert entry.attempts == 0  # waiting for a doubt to clear is not a failed attempt
    assert "in doubt" in entry.last_error
    assert result.state == "applied"
    assert orders(bc) == ORDER
    for client in ctx.portal_factory.clients.values():
        client.close()


class BatchesNeverConnect(httpx.BaseTransport):
    """Every `$batch` fails before it leaves (no connection); everything else reaches BC."""

    def __init__(self) -> None:
        self._inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/$batch"):
            raise httpx.ConnectError("connection refused")
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


def test_a_write_that_never_left_is_not_in_doubt_and_is_sent_on_the_next_try(
    bc, make_target, journal
):
    path = SAMPLES / "sales-order.xml"
    refused = make_target(transport=BatchesNeverConnect(), in_doubt_seconds=WINDOW)

    with pytest.raises(TargetError) as caught:
        apply_file(refused, path, journal=journal)

    assert not isinstance(caught.value, WriteInDoubt)
    assert caught.value.transient
    assert journal.writes_in_doubt(path.stem) == {}
    apply_file(make_target(in_doubt_seconds=WINDOW), path, journal=journal)  # no window to wait
    assert orders(bc) == ORDER
