"""Validation: schema issues with file and line or JSON path (packets, pull lists, done bodies)."""

from __future__ import annotations

import io
from pathlib import Path

import orjson
import pytest

from packetworker.packets import (
    Limits,
    ValidationIssue,
    validate_done_body,
    validate_packet,
    validate_pull_list,
)
from packetworker.packets.errors import Location

from .conftest import VENDOR, repeat


def test_schema_issue_in_an_xml_packet_has_file_line_and_a_sentence(tmp_path: Path) -> None:
    path = tmp_path / "p.xml"
    path.write_bytes(
        b'<NavMobileSync salesmancode="u1">\n<table tablename="T">\n'
        b'<r status="INSERT"><no>1</no></r>\n</table>\n</NavMobileSync>\n'
    )

    issues = validate_packet(path)

    assert len(issues) == 1
    assert issues[0].location == Location(file=str(path), line=3)
    assert issues[0].message.startswith("attribute status='INSERT': value must be one of")
    assert str(issues[0]).startswith(f"{path}:3: attribute status='INSERT'")


def test_schema_issue_in_a_json_packet_has_its_json_path() -> None:
    doc = (
        b'{"salesmancode":"u1","tables":[{"tablename":"T",'
        b'"records":[{"status":"INSERT","fields":{}}]}]}'
    )

    issues = validate_packet(io.BytesIO(doc), name="p.json")

    assert [(i.location.path, i.message) for i in issues] == [
        (
            "$.tables[0].records[0].status",
            "'INSERT' is not one of ['insert', 'inserted', 'update', 'updated', 'delete', "
            "'deleted', 'read', 'upsert']",
        )
    ]
    assert str(issues[0]).startswith("p.json at $.tables[0].records[0].status: 'INSERT'")


def test_validation_reads_a_non_seekable_stream_once() -> None:
    class OneWay(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self._inner = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:
            data = self._inner.read(len(buffer))
            buffer[: len(data)] = data
            return len(data)

    doc = (
        b'<NavMobileSync salesmancode="u1"><table tablename="T"><r status="bad"/></table>'
        b"</NavMobileSync>"
    )
    assert [i.message for i in validate_packet(OneWay(doc))] == [
        "record status 'bad' is unknown; expected insert, inserted, update, updated, delete, "
        "deleted, read, or no status"
    ]


def test_a_large_xml_packet_is_schema_checked_as_a_stream() -> None:
    record = b'<r status="insert"><no>SO-1</no><name>' + b"n" * 500 + b"</name></r>\n"
    body = record * (5 * 1024 * 1024 // len(record))
    doc = (
        b'<NavMobileSync salesmancode="u1"><table tablename="T">\n'
        + body
        + b'<r status="INSERT"><no>SO-2</no></r>\n</table></NavMobileSync>'
    )

    issues = validate_packet(io.BytesIO(doc))

    assert [i.location.line for i in issues] == [doc.count(b"\n")]
    assert issues[0].message.startswith("attribute status='INSERT'")


def test_validation_leaves_a_seekable_stream_usable() -> None:
    stream = io.BytesIO(b'<NavMobileSync salesmancode="u1"/>')
    assert validate_packet(stream) == []
    assert not stream.closed


# -- pull lists ------------------------------------------------------------------------------------
def vendor_entries() -> list[dict]:
    if VENDOR.is_dir():
        return [orjson.loads(p.read_bytes()) for p in sorted(VENDOR.glob("*.meta"))]
    return [
        {
            "url": "push-done/json/prod/DEMO/20260311/rep1/0d7c.json",
            "receiptHandle": "AQEBexample",
            "id": "0d7c",
            "onDate": "2026-03-11T10:14:02.407Z",
            "userName": "rep1",
            "size": 0,
            "companyId": "DEMO",
            "appCode": "SLA",
            "packetType": "data",
        }
    ]


def test_a_json_pull_list_of_real_entries_is_valid() -> None:
    assert validate_pull_list(orjson.dumps(vendor_entries()), format="json") == []


def test_an_xml_pull_list_is_valid_with_children_in_any_order_and_extras() -> None:
    body = (
        "<messages>"
        + "".join(
            "<message>"
            + "".join(f"<{k}>{v}</{k}>" for k, v in reversed(entry.items()))
            + "<futureField>x</futureField></message>"
            for entry in vendor_entries()
        )
        + "</messages>"
    ).encode()
    assert validate_pull_list(io.BytesIO(body), format="xml") == []


def test_a_pull_list_entry_without_a_receipt_handle_is_reported() -> None:
    xml_issues = validate_pull_list(
        b"<messages>\n<message><id>a</id><url>u</url></message>\n</messages>", format="xml"
    )
    json_issues = validate_pull_list(b'[{"id":"a","url":"u"}]', format="json")

    assert [(i.location.line, i.message) for i in xml_issues] == [
        (
            2,
            "The content of element 'message' is not complete. Tag 'receiptHandle' expected. "
            "(at /messages/message)",
        )
    ]
    assert [(i.location.path, i.message) for i in json_issues] == [
        ("$[0]", "'receiptHandle' is a required property")
    ]


def test_a_pull_list_with_a_doctype_is_refused() -> None:
    issues = validate_pull_list(b"<!DOCTYPE messages><messages/>", format="xml")
    assert [i.message for i in issues] == ["DOCTYPE declarations are not allowed in sync packets"]


def test_a_pull_list_that_is_not_json_is_reported() -> None:
    issues = validate_pull_list(b"[{", format="json")
    assert len(issues) == 1
    assert issues[0].message.startswith("not well-formed JSON: ")


# -- done bodies -----------------------------------------------------------------------------------
def test_done_bodies_in_both_formats_are_valid() -> None:
    xml = b"<messages><message><id>a</id><receiptHandle>h</receiptHandle></message></messages>"
    json = b'{"messages":[{"id":"a","receiptHandle":"h"}]}'
    assert validate_done_body(xml, format="xml") == []
    assert validate_done_body(json, format="json") == []


@pytest.mark.parametrize(
    ("body", "fmt", "where", "message"),
    [
        (
            b"<messages><message><id>a</id></message></messages>",
            "xml",
            Location(line=1),
            "The content of element 'message' is not complete. Tag 'receiptHandle' expected. "
            "(at /messages/message)",
        ),
        (
            b'{"messages":[{"id":"a"}]}',
            "json",
            Location(path="$.messages[0]"),
            "'receiptHandle' is a required property",
        ),
        (b'{"messages":[]}', "json", Location(path="$.messages"), "[] should be non-empty"),
    ],
    ids=["xml-without-handle", "json-without-handle", "json-without-messages"],
)
def test_a_done_body_missing_what_the_portal_needs_is_reported(
    body: bytes, fmt: str, where: Location, message: str
) -> None:
    issues = validate_done_body(body, format=fmt)
    assert [(i.location, i.message) for i in issues] == [(where, message)]


def test_validation_issue_prints_as_file_line_message() -> None:
    issue = ValidationIssue(Location(file="p.xml", line=7), "something is wrong")
    assert str(issue) == "p.xml:7: something is wrong"


def test_validating_an_oversize_one_way_stream_spools_no_more_than_the_limit(lazy_stream) -> None:
    record = b'<r status="insert"><no>SO-1</no></r>'
    stream = lazy_stream(
        repeat(
            b'<NavMobileSync salesmancode="u1"><table tablename="T">', record * 1000, 500 * 2**20
        )
    )

    issues = validate_packet(stream, limits=Limits(max_body_bytes=2**20))

    assert [i.message for i in issues] == [f"the packet is larger than the {2**20}-byte limit"]
    assert stream.handed_out == 2**20 + 1
