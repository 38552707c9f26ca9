"""What the sandbox says and stores matches the packet layer's schemas and renditions."""

from __future__ import annotations

import io

import httpx
import orjson
import pytest
from support.packets import xml_packet
from support.portal import DEMO_API_KEY

from packetworker.packets import convert, open_packet, validate_done_body, validate_pull_list
from packetworker.portal.entries import done_body


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_pull_lists_are_valid_by_the_pull_list_schema(portal_sandbox, fmt):
    portal_sandbox.enqueue("DEMO", xml_packet(), user="user1", operation="Sales Order")
    portal_sandbox.enqueue("DEMO", xml_packet(), user="user2")

    listing = httpx.get(
        f"{portal_sandbox.url}/erp/pull/DEMO",
        params={"format": fmt},
        headers={"x-api-key": DEMO_API_KEY},
    ).content

    assert validate_pull_list(listing, format=fmt) == []


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_client_done_bodies_are_valid_by_the_done_schema(portal_sandbox, portal_client, fmt):
    portal_sandbox.enqueue("DEMO", xml_packet(), user="user1")

    body, _ = done_body(portal_client.pull(), fmt)

    assert validate_done_body(body, format=fmt) == []


def test_xml_packet_is_also_stored_as_json_under_the_json_path(portal_sandbox, portal_client):
    body = xml_packet("user4", records=3)
    portal_sandbox.enqueue("DEMO", body, user="user4")
    [entry] = portal_client.pull()
    into = io.BytesIO()

    json_path = entry.url.replace("/xml/", "/json/").replace(".xml", ".json")
    portal_client.download(portal_client.link(json_path), into)

    expected = io.BytesIO()
    convert(io.BytesIO(body), expected, to="json")
    assert into.getvalue() == expected.getvalue()
    assert orjson.loads(into.getvalue())["salesmancode"] == "user4"


def test_json_packet_is_also_stored_as_xml_as_the_vendor_client_expects(
    portal_sandbox, portal_client
):
    as_json = io.BytesIO()
    convert(io.BytesIO(xml_packet("user5", records=2)), as_json, to="json")
    portal_sandbox.enqueue("DEMO", as_json.getvalue(), user="user5", format="json")
    [entry] = portal_client.pull()
    into = io.BytesIO()

    xml_path = entry.url.replace("/json/", "/xml/").replace(".json", ".xml")
    portal_client.download(portal_client.link(xml_path), into)

    into.seek(0)
    with open_packet(into) as reader:
        assert reader.format == "xml"
        assert reader.header.salesmancode == "user5"
        assert len(list(reader)) == 2
