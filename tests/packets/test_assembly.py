"""Documents assembled from a streamed packet: each parent followed by its children,
whatever the order of the packet's tables, with the child records kept on disk meanwhile."""

from __future__ import annotations

import io

import pytest

from packetworker.packets import PacketHeader, Record, Status, Table, open_packet, write_packet
from packetworker.packets.assembly import DocumentShape, Join, assemble

SHAPE = DocumentShape(
    {
        "SalesLine": Join("SalesHeader", ("no",), ("documentNo",)),
        "PaymentLine": Join("PaymentHeader", ("no",), ("paymentNo", "documentNo")),
    }
)
TABLES = {name: Table(name, {"name": name}) for name in ("SalesHeader", "SalesLine", "Customer")}
TABLES |= {name: Table(name, {"name": name}) for name in ("PaymentHeader", "PaymentLine")}


def row(table: str, rowid: str, **fields: str) -> Record:
    return Record(TABLES[table], Status.INSERT, {"DMS_ROWID": rowid, **fields}, "insert")


def packet(*tables: list[Record], format: str = "xml") -> bytes:
    """A packet of these records, in this order (each table's records contiguous)."""
    sink = io.BytesIO()
    write_packet(sink, PacketHeader("rep-1"), [r for t in tables for r in t], format=format)
    return sink.getvalue()


def documents(body: bytes, directory, shape: DocumentShape = SHAPE) -> list[list[str]]:
    """Each document's records as `position:rowid`."""

    def read():
        return iter(open_packet(io.BytesIO(body)))

    return [[f"{pos}:{r.dms_rowid}" for pos, r in doc] for doc in assemble(read, shape, directory)]


@pytest.mark.parametrize("format", ["xml", "json"])
def test_lines_before_their_headers_follow_them(tmp_path, format):
    body = packet(
        [row("Customer", "c")],
        [row("SalesLine", n, documentNo=n[0].upper()) for n in ("a1", "b1", "a2")],
        [row("SalesHeader", "A", no="A"), row("SalesHeader", "B", no="B")],
        format=format,
    )
    assert documents(body, tmp_path) == [["0:c"], ["4:A", "1:a1", "3:a2"], ["5:B", "2:b1"]]


def test_lines_after_their_headers_stay_in_packet_order(tmp_path):
    body = packet(
        [row("SalesHeader", "A", no="A"), row("SalesHeader", "B", no="B")],
        [row("SalesLine", f"l{i}", documentNo="AB"[i % 2]) for i in range(4)],
    )
    assert documents(body, tmp_path) == [["0:A", "2:l0", "4:l2"], ["1:B", "3:l1", "5:l3"]]


def test_every_child_table_of_a_parent_follows_it_and_aliases_join(tmp_path):
    body = packet(
        [row("PaymentLine", "p1", documentNo="P"), row("PaymentLine", "p2", paymentNo="P")],
        [row("PaymentHeader", "P", no="P")],
    )
    assert documents(body, tmp_path) == [["2:P", "0:p1", "1:p2"]]


def test_children_without_a_parent_come_last_in_packet_order(tmp_path):
    body = packet(
        [row("SalesLine", n, documentNo=n.upper()) for n in ("x2", "a", "x1")],
        [row("SalesHeader", "A", no="A"), row("Customer", "c")],
    )
    assert documents(body, tmp_path) == [["3:A", "1:a"], ["4:c"], ["0:x2"], ["2:x1"]]


def test_a_child_without_its_key_stays_where_it_is(tmp_path):
    body = packet(
        [row("SalesHeader", "A", no="A")],
        [row("SalesLine", "n1"), row("SalesLine", "n2", documentNo=""), row("Customer", "c")],
    )
    assert documents(body, tmp_path) == [["0:A"], ["1:n1"], ["2:n2"], ["3:c"]]


def test_a_parent_without_its_key_takes_no_children(tmp_path):
    body = packet(
        [row("SalesHeader", "A"), row("SalesHeader", "B", no="")],
        [row("SalesLine", "l", documentNo="")],
    )
    assert documents(body, tmp_path) == [["0:A"], ["1:B"], ["2:l"]]


def test_a_second_parent_of_the_same_key_gets_no_children(tmp_path):
    body = packet(
        [row("SalesHeader", "A1", no="A"), row("SalesHeader", "A2", no="A")],
        [row("SalesLine", "l", documentNo="A")],
    )
    assert documents(body, tmp_path) == [["0:A1", "2:l"], ["1:A2"]]


def test_many_documents_each_whole_every_record_once_and_no_file_left(tmp_path):
    orders = 3000
    headers = [row("SalesHeader", f"H{n}", no=f"SO{n}") for n in range(orders)]
    lines = [
        row("SalesLine", f"L{n}-{i}", documentNo=f"SO{n}") for i in range(3) for n in range(orders)
    ]
    docs = documents(packet(lines, headers), tmp_path)

    assert len(docs) == orders
    for n, doc in enumerate(docs):
        assert [entry.split(":")[1] for entry in doc] == [f"H{n}", *(f"L{n}-{i}" for i in range(3))]
    positions = [int(entry.split(":")[0]) for doc in docs for entry in doc]
    assert sorted(positions) == list(range(orders * 4))
    assert list(tmp_path.iterdir()) == []


def test_the_child_file_is_removed_when_the_reader_stops_early(tmp_path):
    body = packet([row("SalesLine", "l", documentNo="A")], [row("SalesHeader", "A", no="A")])
    stream = assemble(lambda: iter(open_packet(io.BytesIO(body))), SHAPE, tmp_path)
    next(stream)
    assert [p.suffix for p in tmp_path.iterdir()] == [".sqlite"]
    stream.close()
    assert list(tmp_path.iterdir()) == []


def test_records_come_back_from_disk_unchanged(tmp_path):
    line = Record(
        Table("SalesLine", {"name": "SalesLine", "extra": "1"}),
        Status.UPSERT,
        {"DMS_ROWID": "l", "documentNo": "A", "name": "Минерална вода", "note": ""},
        None,
    )
    body = packet([line], [row("SalesHeader", "A", no="A")])
    read = lambda: iter(open_packet(io.BytesIO(body)))  # noqa: E731
    [[_, (_, back)]] = list(assemble(read, SHAPE, tmp_path))
    [original, _] = list(read())
    assert (back.table, back.status, back.raw_status) == (line.table, Status.UPSERT, None)
    assert list(back.fields.items()) == list(original.fields.items())


def test_without_joins_every_record_is_its_own_document_and_nothing_is_written(tmp_path):
    body = packet([row("SalesLine", "l", documentNo="A")], [row("SalesHeader", "A", no="A")])
    assert documents(body, tmp_path / "spool", DocumentShape({})) == [["0:l"], ["1:A"]]
    assert not (tmp_path / "spool").exists()
