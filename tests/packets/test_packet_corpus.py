"""The vendor's real packets and our samples: valid, summarised exactly, round-trip exactly."""

from __future__ import annotations

import io
from pathlib import Path

import orjson
import pytest
from lxml import etree

from packetworker.packets import (
    PacketError,
    convert,
    open_packet,
    parse_status,
    summarize,
    validate_packet,
)

from .conftest import SAMPLES, all_valid_samples, inbound_samples, vendor_packets

XML_PACKETS = [*vendor_packets(), *inbound_samples(), SAMPLES / "outbound/complete-push.xml"]


def plain_parse(data: bytes) -> dict:
    """The packet as nested plain data, by a whole-document lxml parse (independent of ours)."""
    root = etree.fromstring(data)
    header = {k.lower() if k.lower() == "salesmancode" else k: v for k, v in root.attrib.items()}
    tables = [
        {
            "attributes": dict(table.attrib),
            "records": [
                {"status": r.get("status"), "fields": [(f.tag, f.text or "") for f in r]}
                for r in table
            ],
        }
        for table in root
    ]
    return {"header": header, "tables": tables}


def ids(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


@pytest.mark.parametrize("path", XML_PACKETS, ids=ids(XML_PACKETS))
def test_packet_is_valid(path: Path) -> None:
    assert validate_packet(path) == []


@pytest.mark.parametrize("path", XML_PACKETS, ids=ids(XML_PACKETS))
def test_summary_reports_exactly_the_tables_and_counts_of_a_plain_parse(path: Path) -> None:
    root = etree.parse(str(path)).getroot()
    expected: dict[str, dict[str, int]] = {}
    for table in root:
        counts = expected.setdefault(table.get("tablename"), {})
        for r in table:
            status = parse_status(r.get("status")).value
            counts[status] = counts.get(status, 0) + 1

    summary = summarize(path)

    assert summary.tables == expected
    assert summary.records == sum(len(table) for table in root)
    assert summary.user == next(v for k, v in root.attrib.items() if k.lower() == "salesmancode")
    assert summary.format == "xml"
    assert summary.size == path.stat().st_size


@pytest.mark.parametrize("path", XML_PACKETS, ids=ids(XML_PACKETS))
def test_xml_to_json_to_xml_keeps_every_table_record_status_and_value(path: Path) -> None:
    as_json = io.BytesIO()
    convert(path, as_json, to="json")
    back = io.BytesIO()
    convert(io.BytesIO(as_json.getvalue()), back, to="xml")

    assert plain_parse(back.getvalue()) == plain_parse(path.read_bytes())
    assert validate_packet(io.BytesIO(back.getvalue())) == []


@pytest.mark.parametrize("path", XML_PACKETS, ids=ids(XML_PACKETS))
def test_json_rendition_validates_and_summarises_like_the_xml(path: Path) -> None:
    as_json = io.BytesIO()
    convert(path, as_json, to="json")

    assert validate_packet(io.BytesIO(as_json.getvalue())) == []
    json_summary = summarize(io.BytesIO(as_json.getvalue()))
    xml_summary = summarize(path)
    assert (json_summary.user, json_summary.tables, json_summary.records) == (
        xml_summary.user,
        xml_summary.tables,
        xml_summary.records,
    )


def test_cyrillic_text_survives_the_round_trip() -> None:
    path = SAMPLES / "sales-order.xml"
    as_json = io.BytesIO()
    convert(path, as_json, to="json")
    back = io.BytesIO()
    convert(io.BytesIO(as_json.getvalue()), back, to="xml")

    with open_packet(io.BytesIO(back.getvalue())) as reader:
        titles = [r.fields["CustomerTitle"] for r in reader if r.table.name == "CustomerActivity"]
    assert titles == ["Бакалия „Тракия“ ЕООД"]


@pytest.mark.parametrize("xml_path", inbound_samples(), ids=ids(inbound_samples()))
def test_each_inbound_sample_has_a_json_twin_with_the_same_content(xml_path: Path) -> None:
    json_path = xml_path.with_suffix(".json")
    converted = io.BytesIO()
    convert(xml_path, converted, to="json")

    assert orjson.loads(json_path.read_bytes()) == orjson.loads(converted.getvalue())


def test_samples_use_distinct_row_ids_and_document_numbers() -> None:
    row_ids: list[str] = []
    documents: set[str] = set()
    for path in [*inbound_samples(), SAMPLES / "outbound/complete-push.xml"]:
        with open_packet(path) as reader:
            for record in reader:
                if record.dms_rowid:
                    row_ids.append(record.dms_rowid)
                if record.table.name in ("SalesHeader", "PaymentHeader"):
                    documents.add(record.fields["no"])

    assert len(row_ids) == len(set(row_ids))
    assert documents == {"BSO-000241", "BRO-000017", "BPM-000052"}


def test_return_order_sample_is_document_type_2() -> None:
    with open_packet(SAMPLES / "return-order.xml") as reader:
        headers = [r for r in reader if r.table.name == "SalesHeader"]
    assert [h.fields["documentType"] for h in headers] == ["2"]


def test_visit_samples_carry_actions_101_and_105() -> None:
    actions = []
    for name in ("visit-start.xml", "visit-stop.xml"):
        with open_packet(SAMPLES / name) as reader:
            actions += [r.fields["Action"] for r in reader]
    assert actions == ["101", "105"]


def test_complete_push_sample_uses_camel_case_salesmancode_and_vendor_tables() -> None:
    raw = (SAMPLES / "outbound/complete-push.xml").read_bytes()
    summary = summarize(SAMPLES / "outbound/complete-push.xml")

    assert b'<NavMobileSync salesmanCode="DM010002">' in raw
    assert summary.user == "DM010002"
    assert list(summary.tables) == [
        "CompanyInfo",
        "Currency",
        "PaymentMethod",
        "SkipReason",
        "UOMConversion",
        "Item",
    ]
    assert summary.tables["UOMConversion"] == {"insert": 2}
    assert summary.tables["CompanyInfo"] == {"upsert": 1}


INVALID = sorted(p for p in (SAMPLES / "invalid").iterdir() if p.suffix != ".expected")


@pytest.mark.parametrize("path", INVALID, ids=ids(INVALID))
def test_invalid_sample_fails_with_exactly_its_expected_message(path: Path) -> None:
    expected = path.with_name(path.name + ".expected").read_text(encoding="utf-8").strip()

    with pytest.raises(PacketError) as caught, open_packet(path) as reader:
        for _ in reader:
            pass

    assert caught.value.message == expected
    assert caught.value.location.file == str(path)


@pytest.mark.parametrize("path", INVALID, ids=ids(INVALID))
def test_invalid_sample_gives_one_validation_issue_with_the_same_message(path: Path) -> None:
    expected = path.with_name(path.name + ".expected").read_text(encoding="utf-8").strip()

    issues = validate_packet(path)

    assert [issue.message for issue in issues] == [expected]


def test_every_valid_sample_is_listed() -> None:
    assert {p.name for p in all_valid_samples()} == {
        *(f"{n}.{ext}" for n in (
            "sales-order", "return-order", "payment", "new-customer",
            "visit-start", "visit-stop", "document-series-update",
        ) for ext in ("xml", "json")),
        "complete-push.xml",
    }  # fmt: skip
