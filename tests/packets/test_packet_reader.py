"""Reading packets: the model, laziness, and the same result from XML and JSON."""

from __future__ import annotations

import io

import pytest

from packetworker.packets import (
    Limits,
    MalformedPacket,
    PacketHeader,
    Status,
    Table,
    detect_format,
    open_packet,
)

from .conftest import SAMPLES, LazyStream, repeat

MB = 1024 * 1024


def xml(body: str, root: str = 'salesmancode="u1"') -> io.BytesIO:
    return io.BytesIO(f"<NavMobileSync {root}>{body}</NavMobileSync>".encode())


def test_salesmancode_is_read_case_insensitively_and_other_root_attributes_are_kept() -> None:
    with open_packet(xml("", 'salesmanCode="DM010002" roleid="VAN" synctype="full"')) as reader:
        assert reader.header == PacketHeader(
            salesmancode="DM010002", attributes={"roleid": "VAN", "synctype": "full"}
        )


def test_table_keeps_its_other_attributes() -> None:
    with open_packet(xml('<table tablename="Item" name="Item"><r/></table>')) as reader:
        (record,) = list(reader)
    assert record.table == Table(name="Item", attributes={"name": "Item"})


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ("insert", Status.INSERT),
        ("inserted", Status.INSERT),
        ("update", Status.UPDATE),
        ("updated", Status.UPDATE),
        ("delete", Status.DELETE),
        ("deleted", Status.DELETE),
        ("read", Status.READ),
        (None, Status.UPSERT),
    ],
)
def test_status_is_normalised_and_the_raw_status_kept(raw: str | None, status: Status) -> None:
    attribute = f' status="{raw}"' if raw else ""
    with open_packet(xml(f'<table tablename="T"><r{attribute}><no>1</no></r></table>')) as reader:
        (record,) = list(reader)
    assert (record.status, record.raw_status) == (status, raw)


def test_fields_keep_document_order_and_exact_text() -> None:
    body = (
        '<table tablename="T"><r><z> padded </z><a>Ж&amp;1</a><m/>'
        "<DMS_ROWID>g-1</DMS_ROWID></r></table>"
    )
    with open_packet(xml(body)) as reader:
        (record,) = list(reader)
    assert list(record.fields.items()) == [
        ("z", " padded "),
        ("a", "Ж&1"),
        ("m", ""),
        ("DMS_ROWID", "g-1"),
    ]
    assert record.dms_rowid == "g-1"


def test_whitespace_and_comments_between_elements_are_ignored() -> None:
    body = (
        '\n <!-- c -->\n <table tablename="T">\n  <r>\n   <no>1</no> <!-- x -->\n'
        "  </r>\n </table>\n"
    )
    with open_packet(xml(body)) as reader:
        records = list(reader)
    assert [r.fields for r in records] == [{"no": "1"}]


def test_records_of_each_table_come_together_in_document_order() -> None:
    body = (
        '<table tablename="A"><r><n>1</n></r><r><n>2</n></r></table>'
        '<table tablename="Empty"/>'
        '<table tablename="B"><r><n>3</n></r></table>'
    )
    with open_packet(xml(body)) as reader:
        seen = [(r.table.name, r.fields["n"]) for r in reader]
        tables = [t.name for t in reader.tables]
    assert seen == [("A", "1"), ("A", "2"), ("B", "3")]
    assert tables == ["A", "Empty", "B"]


def test_records_share_one_table_object_per_table() -> None:
    body = '<table tablename="A"><r/><r/></table>'
    with open_packet(xml(body)) as reader:
        first, second = list(reader)
    assert first.table is second.table


def test_header_is_known_on_open_before_the_body_is_read() -> None:
    record = b'<r status="insert"><no>SO-1</no></r>'
    stream = LazyStream(
        repeat(
            b'<NavMobileSync salesmancode="u1"><table tablename="T">',
            record * 100,
            50 * MB,
            b"</table></NavMobileSync>",
        )
    )
    reader = open_packet(stream)

    assert reader.header.salesmancode == "u1"
    assert stream.handed_out <= 64 * 1024


def test_records_are_read_lazily() -> None:
    record = b'<r status="insert"><no>SO-1</no></r>'
    stream = LazyStream(
        repeat(
            b'<NavMobileSync salesmancode="u1"><table tablename="T">',
            record * 100,
            50 * MB,
            b"</table></NavMobileSync>",
        )
    )
    reader = open_packet(stream)
    records = iter(reader)
    next(records)

    assert reader.bytes_read < 1 * MB
    assert stream.handed_out < 1 * MB


def test_bytes_read_is_the_whole_body_after_iteration() -> None:
    data = (SAMPLES / "payment.xml").read_bytes()
    with open_packet(io.BytesIO(data)) as reader:
        list(reader)
        assert reader.bytes_read == len(data)


def test_a_reader_can_be_iterated_only_once() -> None:
    with open_packet(xml('<table tablename="A"><r/></table>')) as reader:
        list(reader)
        with pytest.raises(RuntimeError):
            iter(reader)


def test_opening_a_path_closes_the_file_on_exit() -> None:
    with open_packet(SAMPLES / "visit-start.xml") as reader:
        handle = reader._owned
        assert handle is not None
        assert not handle.closed
    assert handle.closed


def test_open_packet_leaves_a_callers_file_open() -> None:
    f = open(SAMPLES / "visit-start.xml", "rb")  # noqa: SIM115
    with open_packet(f) as reader:
        list(reader)
    assert not f.closed
    f.close()


def test_errors_name_the_file_and_line() -> None:
    path = SAMPLES / "invalid" / "unknown-status.xml"
    with pytest.raises(MalformedPacket) as caught, open_packet(path) as reader:
        list(reader)
    assert str(caught.value).startswith(f"{path}:2: record status 'created' is unknown")


def test_name_overrides_the_file_name_in_errors() -> None:
    with pytest.raises(MalformedPacket) as caught:
        open_packet(io.BytesIO(b"<Orders/>"), name="packet-42.xml")
    assert caught.value.location.file == "packet-42.xml"


@pytest.mark.parametrize(
    ("head", "fmt"),
    [
        (b"<NavMobileSync", "xml"),
        (b"\xef\xbb\xbf  \n<?xml", "xml"),
        (b'{"salesmancode"', "json"),
        (b"\n [", "json"),
    ],
)
def test_detect_format_sniffs_the_first_bytes(head: bytes, fmt: str) -> None:
    assert detect_format(head) == fmt


def test_format_can_be_forced() -> None:
    with pytest.raises(MalformedPacket):
        open_packet(io.BytesIO(b'{"salesmancode":"u1"}'), format="xml")


# -- JSON mirrors XML ------------------------------------------------------------------------------
JSON = (
    '{"salesmancode":"u1","attributes":{"roleid":"VAN"},"tables":['
    '{"tablename":"A","attributes":{"name":"A"},"records":['
    '{"status":"inserted","fields":{"no":"1","name":"Ж"}},{"fields":{"no":"2"}}]},'
    '{"tablename":"Empty"}]}'
)
XML = (
    '<NavMobileSync salesmancode="u1" roleid="VAN"><table tablename="A" name="A">'
    '<r status="inserted"><no>1</no><name>Ж</name></r><r><no>2</no></r></table>'
    '<table tablename="Empty"/></NavMobileSync>'
)


def read(data: bytes) -> tuple:
    with open_packet(io.BytesIO(data)) as reader:
        records = [(r.table, r.status, r.raw_status, r.fields) for r in reader]
        return reader.header, records, reader.tables


@pytest.mark.parametrize("padding", [0, 5 * MB], ids=["orjson", "ijson-stream"])
def test_json_reads_exactly_like_the_equivalent_xml(padding: int) -> None:
    assert read(JSON.encode() + b" " * padding) == read(XML.encode())


def test_json_packet_without_tables_has_a_header_and_no_records() -> None:
    header, records, tables = read(b'{"salesmancode":"u1"}')
    assert (header.salesmancode, records, tables) == ("u1", [], [])


def test_json_field_over_the_limit_is_too_large_on_both_paths() -> None:
    doc = (
        '{"salesmancode":"u1","tables":[{"tablename":"T","records":[{"fields":{"no":"'
        + "x" * 5000
        + '"}}]}]}'
    )
    for padding in (b"", b" " * (5 * MB)):
        with (
            pytest.raises(Exception) as caught,
            open_packet(
                io.BytesIO(doc.encode() + padding), limits=Limits(max_field_bytes=4096)
            ) as r,
        ):
            list(r)
        assert caught.value.message == "a field value is longer than the 4096-byte limit"
        assert caught.value.location.path == "$.tables[0].records[0].fields.no"


def test_a_long_blank_and_comment_prolog_is_fine() -> None:
    prolog = (
        b'<?xml version="1.0" encoding="utf-8"?>\n' + b" " * 2000 + b"<!-- " + b"c" * 9000 + b" -->"
    )
    with open_packet(io.BytesIO(prolog + b'<NavMobileSync salesmancode="u1"/>')) as reader:
        assert reader.header.salesmancode == "u1"
        assert list(reader) == []
