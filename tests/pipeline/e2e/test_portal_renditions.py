"""Packets listed the way the real portal lists them (the JSON rendition's path, whose layout
is not public) go through real worker processes: applied from the XML rendition, and only
then acknowledged."""

from __future__ import annotations

from collections import Counter

import pytest

from packetworker.pipeline.ledger import PacketState

from .conftest import APP_AREA, order_packet
from .harness import wait_for

pytestmark = pytest.mark.e2e

LINES = 2


def _run(deployment, sandbox, ids: list[str]) -> set[str]:
    """Start a worker and the clock; wait until every id is acknowledged. Returns the ids the
    portal saw acknowledged before the target held their records (should be none)."""
    early: set[str] = set()

    def all_acknowledged() -> bool:
        done = set(sandbox.done_ids(APP_AREA))  # read first: a done packet must be recorded
        early.update(done - {item["packet_id"] for item in deployment.recorded()})
        return done >= set(ids)

    deployment.start_worker(processes=1, threads=2)
    deployment.start_clock()
    wait_for(all_acknowledged, timeout=60, what="every packet acknowledged")
    return early


def _enqueue(sandbox) -> list[str]:
    ids = [sandbox.enqueue(APP_AREA, order_packet(n, lines=LINES), user="rep-1") for n in range(6)]
    # An id that is not a file name (the real ones are GUIDs; nothing promises it).
    ids.append(
        sandbox.enqueue(APP_AREA, order_packet(99, lines=LINES), user="rep-1", packet_id="../x/y")
    )
    return ids


def test_packets_listed_by_their_json_rendition_are_applied_then_acknowledged(deployment, sandbox):
    ids = _enqueue(sandbox)

    early = _run(deployment, sandbox, ids)

    assert early == set()
    assert Counter(item["packet_id"] for item in deployment.recorded()) == {
        i: 1 + LINES for i in ids
    }
    ledger = deployment.ledger()
    assert {ledger.get(i).result for i in ids} == {"applied"}
    assert {ledger.get(i).state for i in ids} == {PacketState.ACKNOWLEDGED}
    gets = [r.path for r in sandbox.requests() if r.server == "storage" and r.method == "GET"]
    assert len(gets) == len(ids)
    assert all("/push-done/xml/" in path and path.endswith(".xml") for path in gets)


def test_as_listed_falls_back_to_the_xml_rendition_in_real_workers(deployment, sandbox):
    deployment.configure(dm_packet_rendition="as-listed")
    ids = _enqueue(sandbox)

    early = _run(deployment, sandbox, ids)

    assert early == set()
    assert Counter(item["packet_id"] for item in deployment.recorded()) == {
        i: 1 + LINES for i in ids
    }
    assert {deployment.ledger().get(i).result for i in ids} == {"applied"}
    gets = [r.path for r in sandbox.requests() if r.server == "storage" and r.method == "GET"]
    assert Counter("/push-done/json/" in path for path in gets) == {True: len(ids), False: len(ids)}
