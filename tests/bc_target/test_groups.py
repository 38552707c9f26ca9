"""Packets processed in groups (`process_packets`): the group shares BC requests, and every
packet is still settled on its own — applied, held or quarantined — through the real
pipeline (real Redis ledger, portal sandbox, BC emulator over HTTP)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from packetworker.pipeline.archive import open_archive
from packetworker.pipeline.context import PipelineContext, portal_factory_for
from packetworker.pipeline.ledger import PacketState, RedisLedger
from packetworker.pipeline.polling import poll_once
from packetworker.pipeline.processing import process_packets
from packetworker.pipeline.results import BUSY, ProcessResult
from packetworker.settings import Settings

from .conftest import orders

APP_AREA = "DEMO"
CUSTOMER = "PV-01042"  # in the emulator's seed


def order_packet(number: str, *, customer: str = CUSTOMER, item: str = "W-1001") -> bytes:
    """One sales order of two lines, as the mobile app sends it."""
    lines = "".join(
        f'<r status="insert"><DMS_ROWID>{number}-{n}</DMS_ROWID><documentNo>{number}</documentNo>'
        f"<lineNo>{n * 1000}</lineNo><no>{item}</no><quantity>{n}</quantity></r>"
        for n in (1, 2)
    )
    return (
        '<NavMobileSync salesmancode="rep-1">'
        '<table tablename="SalesHeader" name="SalesHeader"><r status="insert">'
        f"<DMS_ROWID>{number}</DMS_ROWID><no>{number}</no><documentType>0</documentType>"
        f"<customerNo>{customer}</customerNo></r></table>"
        f'<table tablename="SalesLine" name="SalesLine">{lines}</table></NavMobileSync>'
    ).encode()


@pytest.fixture
def ledger(redis_url: str) -> Iterator[RedisLedger]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    namespace = f"pwtest-groups-{uuid.uuid4().hex[:10]}"
    yield RedisLedger(client, namespace)
    keys = list(client.scan_iter(f"{namespace}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def ctx(make_target, ledger, portal_sandbox, tmp_path) -> PipelineContext:
    settings = Settings(
        _env_file=None,
        dm_api_url=portal_sandbox.url,
        dm_storage_http_hosts=portal_sandbox.storage_hosts,
        dm_app_area=APP_AREA,
        dm_api_key=portal_sandbox.app_areas[APP_AREA],
        archive_url=f"file://{tmp_path}/archive",
        spool_dir=tmp_path / "spool",
    )
    return PipelineContext(
        settings=settings,
        ledger=ledger,
        archive=open_archive(settings.archive_url),
        target=make_target(),
        portal_factory=portal_factory_for(settings),
        spool_dir=settings.spool_dir,
    )


def enqueue(portal_sandbox, ctx: PipelineContext, packets: list[bytes]) -> list[str]:
    ids = [portal_sandbox.enqueue(APP_AREA, body, user="rep-1") for body in packets]
    poll_once(ctx, APP_AREA)
    return ids


def states(results: list[ProcessResult | Exception]) -> list[str]:
    return [r.state if isinstance(r, ProcessResult) else repr(r) for r in results]


def test_a_failing_document_in_a_group_quarantines_only_its_packet(bc, ctx, portal_sandbox):
    bodies = [order_packet(f"SO-G{n}") for n in range(4)]
    bodies[2] = order_packet("SO-BAD", item="NO-SUCH-ITEM")  # BC refuses this order
    ids = enqueue(portal_sandbox, ctx, bodies)

    results = process_packets(ctx, APP_AREA, ids)

    assert states(results) == ["applied", "applied", "quarantined", "applied"]
    assert sorted(orders(bc)) == ["SO-G0", "SO-G1", "SO-G3"]
    bad = ctx.ledger.get(ids[2])
    assert "SO-BAD" in bad.last_error
    assert all(ctx.ledger.get(i).last_error is None for i in ids if i != ids[2])


def test_a_held_document_in_a_group_holds_only_its_packet(bc, ctx, portal_sandbox):
    bodies = [
        order_packet("SO-H0"),
        order_packet("SO-WAIT", customer="C-NOT-YET"),  # not in BC: held, not failed
        order_packet("SO-H2"),
    ]
    ids = enqueue(portal_sandbox, ctx, bodies)

    results = process_packets(ctx, APP_AREA, ids)

    assert states(results) == ["applied", "waiting", "applied"]
    held = ctx.ledger.get(ids[1])
    assert held.state is PacketState.WAITING
    assert "customer C-NOT-YET is not in Business Central yet" in held.last_error
    assert sorted(orders(bc)) == ["SO-H0", "SO-H2"]


def test_a_packet_another_worker_holds_is_left_out_of_the_group(bc, ctx, portal_sandbox):
    ids = enqueue(portal_sandbox, ctx, [order_packet(f"SO-L{n}") for n in range(3)])

    with ctx.ledger.locks.try_lock(f"packet:{ids[1]}", ttl=60) as other_worker:
        assert other_worker is not None
        results = process_packets(ctx, APP_AREA, ids)

    assert [r.error for r in results] == [None, BUSY, None]
    assert sorted(orders(bc)) == ["SO-L0", "SO-L2"]
    assert ctx.ledger.get(ids[1]).state is not PacketState.APPLIED


def api_requests(bc) -> int:
    """BC API requests so far (token requests carry no user)."""
    return sum(1 for r in bc.requests if r.user is not None)


@pytest.mark.parametrize("group_size", [5, 20])
def test_bc_requests_per_packet_fall_with_the_group_size(bc, ctx, portal_sandbox, group_size):
    alone = enqueue(portal_sandbox, ctx, [order_packet(f"SO-A{n:02d}") for n in range(group_size)])
    before = api_requests(bc)
    for packet_id in alone:  # the per-packet design: a group of one each
        assert states(process_packets(ctx, APP_AREA, [packet_id])) == ["applied"]
    per_packet = (api_requests(bc) - before) / group_size

    group = enqueue(portal_sandbox, ctx, [order_packet(f"SO-G{n:02d}") for n in range(group_size)])
    before = api_requests(bc)
    assert set(states(process_packets(ctx, APP_AREA, group))) == {"applied"}
    grouped = (api_requests(bc) - before) / group_size

    # Alone: three look-ups (orders, posted invoices, posted shipments) and one $batch.
    assert per_packet >= 4
    # Grouped: one $batch of look-ups and one $batch of inserts for the whole group.
    assert grouped == pytest.approx(2 / group_size)
    assert len(orders(bc)) == 2 * group_size


def lines_first_packet(numbers: list[str]) -> bytes:
    """Sales orders of two lines each, every line listed before every header."""
    lines = "".join(
        f'<r status="insert"><DMS_ROWID>{no}-{n}</DMS_ROWID><documentNo>{no}</documentNo>'
        f"<lineNo>{n * 1000}</lineNo><no>W-1001</no><quantity>{n}</quantity></r>"
        for n in (1, 2)
        for no in numbers
    )
    headers = "".join(
        f'<r status="insert"><DMS_ROWID>{no}</DMS_ROWID><no>{no}</no>'
        f"<documentType>0</documentType><customerNo>{CUSTOMER}</customerNo></r>"
        for no in numbers
    )
    return (
        f'<NavMobileSync salesmancode="rep-1"><table tablename="SalesLine" name="SalesLine">'
        f'{lines}</table><table tablename="SalesHeader" name="SalesHeader">{headers}</table>'
        "</NavMobileSync>"
    ).encode()


def test_a_big_packet_in_a_group_is_applied_alone_in_batches_of_whole_orders(
    bc, ctx, portal_sandbox, monkeypatch
):
    # The group's room (APPLY_BATCH_CHARS, in packet bytes) takes the two small packets only.
    ctx.settings = ctx.settings.model_copy(
        update={"apply_batch_size": 7, "apply_batch_chars": 2 * len(order_packet("SO-S0"))}
    )
    big = [f"SO-B{n}" for n in range(5)]
    bodies = [order_packet("SO-S0"), lines_first_packet(big), order_packet("SO-S1")]
    assert len(bodies[0]) == len(bodies[2]) < len(bodies[1])
    ids = enqueue(portal_sandbox, ctx, bodies)
    calls = []
    apply = ctx.target.apply
    monkeypatch.setattr(
        ctx.target,
        "apply",
        lambda records, ctx: calls.append(len(records)) or apply(records, ctx=ctx),
    )

    results = process_packets(ctx, APP_AREA, ids)

    assert states(results) == ["applied", "applied", "applied"]
    assert calls == [6, 6, 3]  # two orders, two orders, one: never a line without its order
    stored = orders(bc)
    assert sorted(stored) == sorted(["SO-S0", "SO-S1", *big])
    assert all(len(lines) == 2 for lines in stored.values())
