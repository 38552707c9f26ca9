"""Driving a sandbox from outside: admin HTTP API, faults, `serve_forever`, enqueue_file."""

from __future__ import annotations

import io
import re
import threading

import httpx
import orjson
import pytest
from support.packets import xml_packet
from support.portal import DEMO_API_KEY
from support.waiting import wait_for

from packetworker.portal.links import rendition_path
from packetworker.sandbox import serve_forever


def test_admin_enqueue_then_state(portal_sandbox):
    admin = portal_sandbox.admin_url
    body = xml_packet("user3")

    packet_id = httpx.post(
        f"{admin}/enqueue", params={"user": "user3", "operation": "Visit End"}, content=body
    ).json()["id"]
    state = httpx.get(f"{admin}/state").json()

    assert state["pending"] == [packet_id]
    assert (state["done"], state["doneCalls"], state["uploads"]) == ([], [], [])
    listed = portal_sandbox.queue("DEMO").receive("packet")[0]["url"]
    assert portal_sandbox.storage.get(rendition_path(listed)) == body


def test_admin_faults_and_clock(portal_sandbox):
    admin = portal_sandbox.admin_url
    httpx.post(f"{admin}/faults", json={"status": 503, "count": 1, "retryAfter": 2})
    headers = {"x-api-key": DEMO_API_KEY}

    faulted = httpx.get(f"{portal_sandbox.url}/erp/pull/DEMO", headers=headers)
    normal = httpx.get(f"{portal_sandbox.url}/erp/pull/DEMO", headers=headers)
    moved = httpx.post(f"{admin}/clock", params={"advance": "60"}).json()["now"]

    assert (faulted.status_code, faulted.headers["retry-after"]) == (503, "2")
    assert normal.status_code == 200
    assert moved == pytest.approx(portal_sandbox.clock.now(), abs=5)
    assert portal_sandbox.clock.offset == 60
    assert [r.status for r in portal_sandbox.requests()] == [503, 200]


def test_admin_clears_faults(portal_sandbox):
    httpx.post(f"{portal_sandbox.admin_url}/faults", json={"refuse": True, "count": 5})

    httpx.delete(f"{portal_sandbox.admin_url}/faults")

    assert portal_sandbox.faults.pending() == []


def test_refused_connection_gets_no_answer(portal_sandbox):
    portal_sandbox.faults.refuse(count=1)

    with pytest.raises(httpx.TransportError):
        httpx.get(f"{portal_sandbox.url}/erp/pull/DEMO", headers={"x-api-key": DEMO_API_KEY})


def test_enqueue_file_takes_the_user_from_salesmancode_and_id_from_the_name(
    portal_sandbox, tmp_path
):
    packet_id = "5bb216a7-977c-4a2f-95d7-ee20e09b4f21"
    path = tmp_path / f"{packet_id}.xml"
    path.write_bytes(xml_packet("desi-biot"))

    assert portal_sandbox.enqueue_file("DEMO", path) == packet_id
    [entry] = portal_sandbox.queue("DEMO").receive("packet")
    assert (entry["userName"], entry["companyId"]) == ("desi-biot", "CRONUS")


def test_enqueue_file_reads_a_vendor_style_meta_file(portal_sandbox, tmp_path):
    path = tmp_path / "packet.xml"
    path.write_bytes(xml_packet("someone"))
    meta = {"userName": "biotest", "operation": "Sales Order", "companyId": "BIOTRADE_COSM"}
    (tmp_path / "packet.xml.meta").write_bytes(orjson.dumps(meta))

    portal_sandbox.enqueue_file("DEMO", path)

    [entry] = portal_sandbox.queue("DEMO").receive("packet")
    assert (entry["userName"], entry["operation"], entry["companyId"]) == tuple(meta.values())


def test_enqueue_file_without_a_user_is_refused(portal_sandbox, tmp_path):
    path = tmp_path / "nouser.xml"
    path.write_bytes(b"<NavMobileSync><table tablename='X'/></NavMobileSync>")

    with pytest.raises(ValueError, match="salesmancode"):
        portal_sandbox.enqueue_file("DEMO", path)


def test_serve_forever_prints_how_to_connect_and_enqueues_samples(tmp_path, capsys):
    sample = tmp_path / "sample.xml"
    sample.write_bytes(xml_packet("user9"))
    stop = threading.Event()
    runner = threading.Thread(
        target=serve_forever,
        kwargs={
            "host": "127.0.0.1",
            "port": 0,
            "app_area": "CLI",
            "api_key": "cli-key-0042",
            "link_ttl": 60,
            "samples": [sample],
            "stop": stop,
        },
        daemon=True,
    )
    runner.start()
    printed = io.StringIO()

    def started() -> bool:
        printed.write(capsys.readouterr().out)
        return "enqueued sample.xml" in printed.getvalue()

    try:
        wait_for(started, timeout=15, what="the sandbox to start")
        url = re.search(r"sandbox at (\S+)", printed.getvalue()).group(1)
        listing = httpx.get(f"{url}/erp/pull/CLI", headers={"x-api-key": "cli-key-0042"}).json()
    finally:
        stop.set()
        runner.join(timeout=10)

    assert "app area: CLI" in printed.getvalue()
    assert [e["userName"] for e in listing] == ["user9"]
    assert not runner.is_alive()
    with pytest.raises(httpx.ConnectError):
        httpx.get(url, timeout=1)


def test_admin_counters_count_pending_done_and_answers_by_status(portal_sandbox):
    admin = portal_sandbox.admin_url
    for _ in range(3):
        httpx.post(f"{admin}/enqueue", params={"user": "user3"}, content=xml_packet("user3"))
    httpx.post(f"{admin}/faults", json={"status": 503, "count": 1})
    headers = {"x-api-key": DEMO_API_KEY}
    httpx.get(f"{portal_sandbox.url}/erp/pull/DEMO", headers=headers)
    [entry, *_] = httpx.get(f"{portal_sandbox.url}/erp/pull/DEMO", headers=headers).json()
    portal_sandbox.queue("DEMO").delete(entry["id"], entry["receiptHandle"])

    counters = httpx.get(f"{admin}/counters").json()

    assert (counters["pending"], counters["done"]) == (2, 1)
    assert counters["statuses"] == {"503": 1, "200": 1}
