"""Pull lists: both formats, the fields real entries carry, auth."""

from __future__ import annotations

import logging
import re

import pytest
from support.packets import xml_packet
from support.portal import DEMO_API_KEY

from packetworker.portal import PortalAuthError, PortalClient, PullEntry
from packetworker.portal.entries import ListFormatError, parse_list
from packetworker.sandbox import PortalSandbox

PACKET_ID = "438a12ad-d3cf-43e3-aa5e-f6dbea35224a"


def test_json_list_carries_the_fields_of_real_entries(portal_sandbox, portal_client):
    body = xml_packet("biotest")
    portal_sandbox.enqueue(
        "DEMO", body, user="biotest", packet_id=PACKET_ID, operation="Sales Order"
    )

    [entry] = portal_client.pull(format="json")

    assert entry.id == PACKET_ID
    assert re.fullmatch(rf"push-done/json/prod/DEMO/\d{{8}}/biotest/{PACKET_ID}\.json", entry.url)
    assert entry.receipt_handle.startswith("AQEB")
    assert len(entry.receipt_handle) > 300
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry.on_date)
    assert (entry.user_name, entry.size, entry.operation) == ("biotest", len(body), "Sales Order")
    assert (entry.company_id, entry.app_code, entry.packet_type) == ("CRONUS", "SLA", "data")


def test_xml_list_gives_the_same_entries_as_json():
    with PortalSandbox(app_areas={"DEMO": DEMO_API_KEY}, visibility_timeout=0) as sandbox:
        sandbox.enqueue("DEMO", xml_packet(), user="user1", operation="Visit Start")
        sandbox.enqueue("DEMO", xml_packet(), user="user2")
        with PortalClient(base_url=sandbox.url, app_area="DEMO", api_key=DEMO_API_KEY) as client:
            as_json = client.pull(format="json")
            as_xml = client.pull(format="xml")

    def without_handle(entries):
        return [{**e.to_json(), "receiptHandle": None} for e in entries]

    assert len(as_xml) == 2
    assert without_handle(as_xml) == without_handle(as_json)


def test_file_list_shows_only_image_entries(portal_sandbox, portal_client):
    portal_sandbox.enqueue("DEMO", xml_packet(), user="user1")
    image_id = portal_sandbox.enqueue("DEMO", b"\xff\xd8\xff", user="user1", packet_type="image")

    files = portal_client.pull(packet_type="file")

    assert [(e.id, e.packet_type) for e in files] == [(image_id, "image")]
    assert files[0].url.endswith(f"/{image_id}.jpg")


def test_empty_queue_lists_nothing(portal_client):
    assert portal_client.pull() == []


def test_pull_sends_the_key_and_json_content_type(portal_sandbox, portal_client):
    portal_client.pull()

    [request] = portal_sandbox.requests()
    assert (request.method, request.path, request.status) == ("GET", "/mobile/erp/pull/DEMO", 200)
    assert {"x-api-key", "content-type"} <= request.header_names


def test_pull_asks_for_the_list_type_and_format_it_is_given(portal_sandbox, portal_client, caplog):
    caplog.set_level(logging.DEBUG, logger="packetworker.portal")

    portal_client.pull(format="xml")
    portal_client.pull(packet_type="file", format="json")

    pull = f"GET {portal_sandbox.url}/erp/pull/DEMO"
    assert [r.getMessage() for r in caplog.records] == [
        f"{pull}?packetType=packet&format=xml -> 200",
        f"{pull}?packetType=file&format=json -> 200",
    ]


def test_wrong_key_is_an_auth_error_that_does_not_repeat_the_key(portal_sandbox):
    wrong_key = "not-the-key-8d1e77"
    client = PortalClient(base_url=portal_sandbox.url, app_area="DEMO", api_key=wrong_key)
    with client, pytest.raises(PortalAuthError) as caught:
        client.pull()

    assert caught.value.status == 401
    assert caught.value.transient is False
    assert wrong_key not in str(caught.value)
    assert "invalid x-api-key" in caught.value.body_excerpt
    assert len(portal_sandbox.requests()) == 1  # never retried


def test_entry_round_trips_through_json_and_keeps_unknown_fields():
    api_entry = {
        "url": f"push-done/json/prod/BIOTDEV/20210714/biotest/{PACKET_ID}.json",
        "receiptHandle": "AQEB" + "x" * 400,
        "id": PACKET_ID,
        "onDate": "2021-07-15T10:14:02.407Z",
        "userName": "biotest",
        "size": 0,
        "operation": "Sales Order",
        "companyId": "BIOTRADE_COSM",
        "appCode": "SLA",
        "packetType": "data",
        "appArea": "BIOTDEV",
    }

    entry = PullEntry.from_json(api_entry)

    assert entry.extra == {"appArea": "BIOTDEV"}
    assert (entry.size, entry.company_id) == (0, "BIOTRADE_COSM")
    assert entry.to_json() == api_entry


def test_xml_list_sizes_become_integers():
    body = (
        b"<messages><message><id>a</id><url>push-done/xml/x/a.xml</url>"
        b"<receiptHandle>AQEBh</receiptHandle><size>12</size></message></messages>"
    )

    assert parse_list(body) == [
        PullEntry(id="a", url="push-done/xml/x/a.xml", receipt_handle="AQEBh", size=12)
    ]


def test_entry_without_receipt_handle_is_refused():
    with pytest.raises(ListFormatError, match="receiptHandle"):
        parse_list(b'[{"id": "a", "url": "push-done/xml/x/a.xml"}]')


def test_xml_list_with_a_dtd_is_refused():
    body = (
        b'<?xml version="1.0"?><!DOCTYPE messages [<!ENTITY x "boom">]>'
        b"<messages><message><id>&x;</id></message></messages>"
    )

    with pytest.raises(ListFormatError, match="DTD"):
        parse_list(body)
