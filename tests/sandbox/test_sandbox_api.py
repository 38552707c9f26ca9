"""The emulated ERP API spoken to over raw HTTP, as any client would."""

from __future__ import annotations

import httpx
import orjson
import pytest
from support.packets import xml_packet
from support.portal import DEMO_API_KEY

from packetworker.portal.links import rendition_path


@pytest.fixture
def http(portal_sandbox):
    with httpx.Client(base_url=portal_sandbox.url, headers={"x-api-key": DEMO_API_KEY}) as client:
        yield client


def test_missing_key_is_401_without_echo(portal_sandbox):
    answer = httpx.get(f"{portal_sandbox.url}/erp/pull/DEMO")

    assert answer.status_code == 401
    assert answer.json() == {"message": "Unauthorized: missing or invalid x-api-key"}


def test_key_of_another_app_area_is_401(portal_sandbox):
    answer = httpx.get(f"{portal_sandbox.url}/erp/pull/OTHER", headers={"x-api-key": DEMO_API_KEY})

    assert answer.status_code == 401


def test_xml_list_is_a_messages_document(portal_sandbox, http):
    packet_id = portal_sandbox.enqueue("DEMO", xml_packet(), user="user1")

    answer = http.get("/erp/pull/DEMO", params={"format": "xml"})

    assert answer.headers["content-type"].startswith("application/xml")
    assert answer.text.startswith("<messages><message><url>push-done/json/prod/DEMO/")
    assert f"<id>{packet_id}</id>" in answer.text
    assert "<receiptHandle>AQEB" in answer.text


def test_done_accepts_the_xml_list_posted_back_as_text(portal_sandbox, http):
    """The vendor's BC connector posts the whole list document back, as text/plain."""
    portal_sandbox.enqueue("DEMO", xml_packet(), user="user1")
    listing = http.get("/erp/pull/DEMO", params={"format": "xml"}).content

    answer = http.post(
        "/erp/pull/DEMO/done",
        params={"packetType": "packet"},
        content=listing,
        headers={"Content-Type": "text/plain; charset=utf-8"},
    )

    assert answer.json() == {"success": True}
    assert portal_sandbox.pending("DEMO") == []


def test_done_accepts_a_bare_json_array(portal_sandbox, http):
    portal_sandbox.enqueue("DEMO", xml_packet(), user="user1")
    [entry] = http.get("/erp/pull/DEMO").json()
    body = [{"id": entry["id"], "receiptHandle": entry["receiptHandle"]}]

    answer = http.post("/erp/pull/DEMO/done", params={"format": "json"}, content=orjson.dumps(body))

    assert answer.json() == {"success": True}
    assert portal_sandbox.pending("DEMO") == []


def test_done_with_an_unknown_handle_still_says_success(portal_sandbox, http):
    packet_id = portal_sandbox.enqueue("DEMO", xml_packet(), user="user1")
    body = {"messages": [{"id": packet_id, "receiptHandle": "AQEBforged"}]}

    answer = http.post("/erp/pull/DEMO/done", params={"format": "json"}, json=body)

    assert answer.json() == {"success": True}
    assert portal_sandbox.pending("DEMO") == [packet_id]
    assert portal_sandbox.done_calls("DEMO")[0].rejected_ids == (packet_id,)


def test_done_with_a_body_that_is_no_list_is_400(http):
    answer = http.post("/erp/pull/DEMO/done", content=b"id=1")

    assert answer.status_code == 400
    assert answer.json()["success"] is False


def test_done_with_a_dtd_is_refused(http):
    body = (
        b'<!DOCTYPE messages [<!ENTITY x "y">]><messages><message><id>&x;</id></message></messages>'
    )

    answer = http.post("/erp/pull/DEMO/done", params={"format": "xml"}, content=body)

    assert (answer.status_code, answer.json()["success"]) == (400, False)


@pytest.mark.parametrize(
    "params", [{"packetType": "xml"}, {"size": "-1"}, {"size": "12", "packetType": "csv"}]
)
def test_push_without_a_valid_size_or_type_is_400_success_false(http, params):
    answer = http.get("/erp/push/DEMO/user1", params=params)

    assert answer.status_code == 400
    assert answer.json()["success"] is False


def test_push_answers_an_upload_slot(portal_sandbox, http):
    answer = http.get(
        "/erp/push/DEMO/user1", params={"packetUniqueId": "p-1", "size": "4", "packetType": "xml"}
    ).json()
    put = httpx.put(answer["uploadPath"], content=b"<x/>")

    assert answer["success"] is True
    assert answer["uploadPath"].startswith(f"{portal_sandbox.storage_url}/")
    assert "/push/xml/prod/DEMO/" in answer["uploadPath"]
    assert put.status_code == 200
    [upload] = portal_sandbox.uploads("DEMO")
    assert (upload.sync_log_id, upload.packet_unique_id, upload.body) == (
        answer["syncLogId"],
        "p-1",
        b"<x/>",
    )


def test_link_is_json_with_a_presigned_url(portal_sandbox, http):
    portal_sandbox.enqueue("DEMO", b"<x/>", user="user1", packet_id="p-2")
    [entry] = http.get("/erp/pull/DEMO").json()

    xml_path = rendition_path(entry["url"])
    answer = http.get("/erp/pull/DEMO/link", params={"path": xml_path}).json()

    assert list(answer) == ["url"]
    assert "X-Amz-Signature=" in answer["url"]
    assert httpx.get(answer["url"]).content == b"<x/>"


def test_unknown_route_is_404(http):
    assert http.get("/erp/nothing/DEMO").status_code == 404
