"""Writing packets: the vendor connector's XML style, the JSON mirror, incremental output."""

from __future__ import annotations

import io

import orjson
import pytest

from packetworker.packets import (
    PacketHeader,
    Record,
    Status,
    Table,
    convert,
    open_packet,
    write_packet,
)

CUSTOMER = Table(name="Customer", attributes={"name": "Customer"})
ITEM = Table(name="Item")


def written(records, *, header=None, format="xml") -> bytes:
    sink = io.BytesIO()
    write_packet(sink, header or PacketHeader("u1"), records, format=format)
    return sink.getvalue()


def test_xml_starts_with_a_double_quoted_utf8_declaration_and_lower_case_salesmancode() -> None:
    data = written([], header=PacketHeader("DM010002", {"roleid": "VAN"}))
    assert data == (
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b'<NavMobileSync salesmancode="DM010002" roleid="VAN"></NavMobileSync>'
    )


def test_xml_record_style_matches_the_connector() -> None:
    records = [
        Record(CUSTOMER, Status.INSERT, {"No": "C1", "Name": "Жълт & Щит", "Fax": None}),
        Record(CUSTOMER, Status.UPSERT, {"No": "C2"}),
        Record(ITEM, Status.UPDATE, {"No": "I1"}),
        Record(ITEM, Status.DELETE, {"No": "I2"}),
        Record(ITEM, Status.READ, {"No": "I3"}),
    ]
    assert written(records).decode().split("\n", 1)[1] == (
        '<NavMobileSync salesmancode="u1">'
        '<table tablename="Customer" name="Customer">'
        '<r status="inserted"><No>C1</No><Name>Жълт &amp; Щит</Name></r>'
        "<r><No>C2</No></r>"
        "</table>"
        '<table tablename="Item">'
        '<r status="updated"><No>I1</No></r>'
        '<r status="deleted"><No>I2</No></r>'
        '<r status="read"><No>I3</No></r>'
        "</table>"
        "</NavMobileSync>"
    )


def test_raw_status_is_written_as_read_for_exact_round_trips() -> None:
    records = [Record(ITEM, Status.INSERT, {"No": "I1"}, raw_status="insert")]
    assert b'<r status="insert"><No>I1</No></r>' in written(records)


def test_empty_string_fields_are_kept_and_null_fields_left_out() -> None:
    records = [Record(ITEM, Status.UPSERT, {"No": "I1", "Note": "", "Gone": None})]
    assert b"<r><No>I1</No><Note></Note></r>" in written(records)


def test_records_of_a_table_must_be_contiguous() -> None:
    records = [
        Record(ITEM, Status.UPSERT, {"No": "I1"}),
        Record(CUSTOMER, Status.UPSERT, {"No": "C1"}),
        Record(ITEM, Status.UPSERT, {"No": "I2"}),
    ]
    for fmt in ("xml", "json"):
        with pytest.raises(ValueError, match="records of table 'Item' are not contiguous"):
            written(records, format=fmt)


def test_a_field_name_that_is_not_an_xml_name_is_refused() -> None:
    with pytest.raises(ValueError, match="field 'bad name' of table 'Item' cannot be written"):
        written([Record(ITEM, Status.UPSERT, {"bad name": "x"})])


def test_json_mirrors_the_xml_shape() -> None:
    records = [
        Record(CUSTOMER, Status.INSERT, {"No": "C1", "Fax": None}),
        Record(ITEM, Status.UPSERT, {"No": "I1"}),
    ]
    data = written(records, header=PacketHeader("u1", {"roleid": "VAN"}), format="json")
    assert orjson.loads(data) == {
        "salesmancode": "u1",
        "attributes": {"roleid": "VAN"},
        "tables": [
            {
                "tablename": "Customer",
                "attributes": {"name": "Customer"},
                "records": [{"status": "inserted", "fields": {"No": "C1"}}],
            },
            {"tablename": "Item", "records": [{"fields": {"No": "I1"}}]},
        ],
    }
    assert data.index(b'"salesmancode"') < data.index(b'"attributes"') < data.index(b'"tables"')


def test_writer_consumes_records_incrementally() -> None:
    sink = io.BytesIO()
    sizes = []

    def records():
        for i in range(3):
            sizes.append(len(sink.getvalue()))
            yield Record(ITEM, Status.UPSERT, {"No": f"I{i}", "Pad": "x" * 100_000})

    write_packet(sink, PacketHeader("u1"), records(), format="json")
    assert sizes[0] < sizes[1] < sizes[2]


@pytest.mark.parametrize("fmt", ["xml", "json"])
def test_what_is_written_reads_back_the_same(fmt: str) -> None:
    records = [
        Record(CUSTOMER, Status.INSERT, {"No": "C1", "Name": "Ж <x>"}, raw_status="insert"),
        Record(ITEM, Status.UPSERT, {"No": "I1", "Blank": ""}),
    ]
    data = written(records, header=PacketHeader("u1", {"roleid": "VAN"}), format=fmt)
    with open_packet(io.BytesIO(data)) as reader:
        back = [(r.table, r.status, r.raw_status, r.fields) for r in reader]
        header = reader.header
    assert header == PacketHeader("u1", {"roleid": "VAN"})
    assert back == [
        (CUSTOMER, Status.INSERT, "insert", {"No": "C1", "Name": "Ж <x>"}),
        (ITEM, Status.UPSERT, None, {"No": "I1", "Blank": ""}),
    ]


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown packet format 'csv'"):
        write_packet(io.BytesIO(), PacketHeader("u1"), [], format="csv")  # type: ignore[arg-type]


def test_a_table_in_the_records_writes_it_even_without_records() -> None:
    items = [ITEM, CUSTOMER, Record(CUSTOMER, Status.UPSERT, {"No": "C1"})]
    data = written(items)
    assert data.endswith(
        b'<table tablename="Item"></table><table tablename="Customer" name="Customer">'
        b"<r><No>C1</No></r></table></NavMobileSync>"
    )
    assert orjson.loads(written(items, format="json"))["tables"] == [
        {"tablename": "Item", "records": []},
        {
            "tablename": "Customer",
            "attributes": {"name": "Customer"},
            "records": [{"fields": {"No": "C1"}}],
        },
    ]


@pytest.mark.parametrize("to", ["xml", "json"])
def test_convert_keeps_empty_tables_in_place(to: str) -> None:
    source = (
        b'<NavMobileSync salesmancode="u1"><table tablename="A"/><table tablename="B"><r><n>1</n>'
        b'</r></table><table tablename="C"/><table tablename="D"><r/></table>'
        b'<table tablename="E"/></NavMobileSync>'
    )
    sink = io.BytesIO()
    convert(io.BytesIO(source), sink, to=to)
    with open_packet(io.BytesIO(sink.getvalue())) as reader:
        list(reader)
        assert [t.name for t in reader.tables] == ["A", "B", "C", "D", "E"]
