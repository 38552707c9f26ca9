"""What the sandbox says and stores matches the real portal and the packet layer's schemas."""

from __future__ import annotations

import io
import re

import httpx
import orjson
import pytest
from support.packets import xml_packet
from support.portal import DEMO_API_KEY

from packetworker.packets import (
    PacketError,
    convert,
    open_packet,
    validate_done_body,
    validate_pull_list,
)
from packetworker.portal.entries import done_body
from packetworker.portal.links import rendition_path


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


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_data_packets_are_listed_by_their_json_rendition_in_both_list_formats(
    portal_sandbox, portal_client, fmt
):
    packet_id = portal_sandbox.enqueue("DEMO", xml_packet("user4"), user="user4")

    [entry] = portal_client.pull(format=fmt)

    # As every real listing (dynamics-mobile.md §3.2.1): the JSON rendition's path.
    assert re.fullmatch(rf"push-done/json/prod/DEMO/\d{{8}}/user4/{packet_id}\.json", entry.url)


@pytest.mark.parametrize("sent_as", ["xml", "json"])
def test_the_xml_rendition_beside_the_listed_path_holds_the_packet(
    portal_sandbox, portal_client, sent_as
):
    body = xml_packet("user5", records=2)
    as_json = io.BytesIO()
    convert(io.BytesIO(body), as_json, to="json")
    sent = body if sent_as == "xml" else as_json.getvalue()
    portal_sandbox.enqueue("DEMO", sent, user="user5", format=sent_as)
    [entry] = portal_client.pull()
    into = io.BytesIO()

    portal_client.download(portal_client.link(rendition_path(entry.url)), into)

    into.seek(0)
    with open_packet(into) as reader:
        assert reader.format == "xml"
        assert reader.header.salesmancode == "user5"
        assert len(list(reader)) == 2
    if sent_as == "xml":
        assert into.getvalue() == body


def test_the_listed_json_rendition_is_in_a_layout_packetworker_cannot_read(
    portal_sandbox, portal_client
):
    portal_sandbox.enqueue("DEMO", xml_packet("user6", records=2), user="user6")
    [entry] = portal_client.pull()
    into = io.BytesIO()

    portal_client.download(portal_client.link(entry.url), into)

    assert orjson.loads(into.getvalue())["NavMobileSync"]["@salesmancode"] == "user6"
    into.seek(0)
    with pytest.raises(PacketError):
        list(open_packet(into))


def test_file_entries_keep_their_own_path(portal_sandbox, portal_client):
    portal_sandbox.enqueue("DEMO", b"\xff\xd8jpeg", user="user7", packet_type="image")

    [entry] = portal_client.pull(packet_type="file")
    into = io.BytesIO()
    portal_client.download(portal_client.link(rendition_path(entry.url)), into)

    assert re.fullmatch(r"push-done/file/prod/DEMO/\d{8}/user7/[-0-9a-f]{36}\.jpg", entry.url)
    assert rendition_path(entry.url) == entry.url
    assert into.getvalue() == b"\xff\xd8jpeg"
