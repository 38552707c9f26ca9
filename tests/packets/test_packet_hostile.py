"""Hostile input is refused with a clear error, in bounded memory, without touching the network.

Big inputs are generated lazily (see `LazyStream`), never materialised or committed.
"""

from __future__ import annotations

import http.server
import io
import socket
import threading
from collections.abc import Iterator

import psutil
import pytest

from packetworker.packets import (
    Limits,
    MalformedPacket,
    PacketError,
    PacketTooLarge,
    UnsafePacket,
    open_packet,
    summarize,
    validate_packet,
)

from .conftest import LazyStream, repeat

MB = 1024 * 1024
HEAD = b'<?xml version="1.0" encoding="UTF-8"?>\n<NavMobileSync salesmancode="u1">'
DOCTYPE_REFUSED = "DOCTYPE declarations are not allowed in sync packets"
NESTED = "an element is nested inside a field; fields hold text only"


class PeakRss:
    """Samples this process's RSS on a thread, to see the peak of a test, not just its end."""

    def __init__(self) -> None:
        self.baseline = rss()
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, rss())

    def growth(self) -> int:
        self._stop.set()
        self._thread.join(timeout=5)
        self.peak = max(self.peak, rss())
        return self.peak - self.baseline


@pytest.fixture(autouse=True)
def bounded_memory_and_no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    """Every hostile input here: peak memory grows < 100 MB and no socket connects out."""
    attempts: list[object] = []

    def refuse(self: socket.socket, address: object) -> None:
        attempts.append(address)
        raise OSError("network access attempted during a packet test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monitor = PeakRss()
    yield attempts
    assert monitor.growth() < 100 * MB
    assert attempts == []


def read_all(source, **kwargs) -> int:
    with open_packet(source, **kwargs) as reader:
        return sum(1 for _ in reader)


def rss() -> int:
    return psutil.Process().memory_info().rss


class Recorder(http.server.BaseHTTPRequestHandler):
    hits: list[str]

    def do_GET(self) -> None:
        self.hits.append(self.path)
        body = b'<!ENTITY leak "pwned">'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_trap() -> Iterator[tuple[str, list[str]]]:
    """A real HTTP server on loopback that records every request a parser might make."""
    hits: list[str] = []
    handler = type("Trap", (Recorder,), {"hits": hits})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# -- DTDs and entities ---------------------------------------------------------------------------
def billion_laughs(levels: int = 10) -> bytes:
    entities = ['<!ENTITY lol0 "lol">']
    entities += [f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, levels)]
    return (
        b'<?xml version="1.0"?>\n<!DOCTYPE NavMobileSync [' + "".join(entities).encode() + b"]>"
        b'<NavMobileSync salesmancode="u1"><table tablename="T"><r><no>'
        + f"&lol{levels - 1};".encode()
        + b"</no></r></table></NavMobileSync>"
    )


def test_billion_laughs_is_refused_before_any_entity_expands() -> None:
    before = rss()
    with pytest.raises(UnsafePacket) as caught:
        read_all(io.BytesIO(billion_laughs()))
    assert caught.value.message == DOCTYPE_REFUSED
    assert rss() - before < 20 * MB


def test_external_file_entity_is_refused_and_never_read(tmp_path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    doc = (
        f'<!DOCTYPE NavMobileSync [<!ENTITY xxe SYSTEM "file://{secret}">]>'
        '<NavMobileSync salesmancode="u1"><table tablename="T"><r><no>&xxe;</no></r></table>'
        "</NavMobileSync>"
    ).encode()
    with pytest.raises(UnsafePacket) as caught:
        read_all(io.BytesIO(doc))
    assert caught.value.message == DOCTYPE_REFUSED
    assert "top secret" not in str(caught.value)


@pytest.mark.parametrize(
    "doctype",
    [
        '<!DOCTYPE NavMobileSync [<!ENTITY xxe SYSTEM "{url}/entity">]>',
        '<!DOCTYPE NavMobileSync SYSTEM "{url}/packet.dtd">',
        '<!DOCTYPE NavMobileSync [<!ENTITY % remote SYSTEM "{url}/param.dtd"> %remote;]>',
    ],
    ids=["general-entity", "external-dtd", "parameter-entity"],
)
def test_http_references_are_refused_without_a_request(http_trap, doctype: str) -> None:
    url, hits = http_trap
    doc = (
        doctype.format(url=url)
        + '<NavMobileSync salesmancode="u1"><table tablename="T"><r><no>&xxe;</no></r>'
        "</table></NavMobileSync>"
    ).encode()

    with pytest.raises(UnsafePacket) as caught:
        read_all(io.BytesIO(doc))
    issues = validate_packet(io.BytesIO(doc))

    assert caught.value.message == DOCTYPE_REFUSED
    assert [issue.message for issue in issues] == [DOCTYPE_REFUSED]
    assert hits == []


@pytest.mark.parametrize(
    "prefix",
    [b"", b"\xef\xbb\xbf", b"\n  ", b"<!-- export -->\n", b'<?xml version="1.0"?><?pi x?>'],
    ids=["bare", "bom", "blank", "comment", "declaration-and-pi"],
)
@pytest.mark.parametrize("keyword", [b"<!DOCTYPE", b"<!doctype"])
def test_any_doctype_is_refused_wherever_the_prolog_hides_it(prefix: bytes, keyword: bytes) -> None:
    doc = prefix + keyword + b' NavMobileSync><NavMobileSync salesmancode="u1"/>'
    with pytest.raises(UnsafePacket) as caught:
        open_packet(io.BytesIO(doc))
    assert caught.value.message == DOCTYPE_REFUSED


def test_entity_reference_without_a_dtd_is_malformed_not_expanded() -> None:
    doc = HEAD + b'<table tablename="T"><r><no>&xxe;</no></r></table></NavMobileSync>'
    with pytest.raises(MalformedPacket) as caught:
        read_all(io.BytesIO(doc))
    assert caught.value.message.startswith("the packet is not well-formed XML: ")


# -- nesting and sizes -----------------------------------------------------------------------------
def test_deep_nesting_inside_a_field_is_malformed_in_bounded_memory() -> None:
    stream = LazyStream(repeat(HEAD + b'<table tablename="T"><r><no>', b"<a>" * 1000, 50 * MB))
    before = rss()
    with pytest.raises(MalformedPacket) as caught:
        read_all(stream)
    assert caught.value.message == NESTED
    assert stream.handed_out < 1 * MB
    assert rss() - before < 50 * MB


def test_one_level_of_nesting_inside_a_field_is_malformed() -> None:
    doc = HEAD + b'<table tablename="T"><r><no><b>X</b></no></r></table></NavMobileSync>'
    with pytest.raises(MalformedPacket) as caught:
        read_all(io.BytesIO(doc))
    assert caught.value.message == NESTED
    assert caught.value.location.line == 2


def test_a_one_gigabyte_text_node_stops_at_the_field_limit_in_bounded_memory() -> None:
    stream = LazyStream(
        repeat(HEAD + b'<table tablename="T"><r><no>', b"x" * MB, 1024 * MB, b"</no></r>")
    )
    before = rss()
    with pytest.raises(PacketTooLarge) as caught:
        read_all(stream)
    assert caught.value.message == f"a field value is longer than the {8 * MB}-byte limit"
    assert stream.handed_out < 12 * MB  # libxml2 gives up at 10 MB of text
    assert rss() - before < 100 * MB


def test_a_field_over_a_configured_limit_is_too_large() -> None:
    doc = (
        HEAD + b'<table tablename="T"><r><no>' + b"x" * 5000 + b"</no></r></table></NavMobileSync>"
    )
    with pytest.raises(PacketTooLarge) as caught:
        read_all(io.BytesIO(doc), limits=Limits(max_field_bytes=4096))
    assert caught.value.message == "a field value is longer than the 4096-byte limit"


def test_field_limit_counts_utf8_bytes_not_characters() -> None:
    def doc(chars: int) -> bytes:
        text = ("Ж" * chars).encode()  # two bytes each
        return HEAD + b'<table tablename="T"><r><no>' + text + b"</no></r></table></NavMobileSync>"

    assert read_all(io.BytesIO(doc(250)), limits=Limits(max_field_bytes=500)) == 1
    with pytest.raises(PacketTooLarge):
        read_all(io.BytesIO(doc(251)), limits=Limits(max_field_bytes=500))


def test_a_big_field_deep_inside_a_large_packet_is_caught() -> None:
    record = b'<r status="insert"><no>SO-1</no><name>' + b"n" * 200 + b"</name></r>"
    stream = LazyStream(
        repeat(
            HEAD + b'<table tablename="T">',
            record * 100,
            6 * MB,
            b"<r><no>" + b"y" * (3 * MB) + b"</no></r></table></NavMobileSync>",
        )
    )
    with pytest.raises(PacketTooLarge) as caught:
        read_all(stream, limits=Limits(max_field_bytes=2 * MB))
    assert caught.value.message == f"a field value is longer than the {2 * MB}-byte limit"


def test_a_body_over_the_limit_stops_reading_right_at_the_limit() -> None:
    record = b'<r status="insert"><no>SO-1</no><qty>1</qty></r>'
    stream = LazyStream(repeat(HEAD + b'<table tablename="T">', record * 1000, 200 * MB))
    with pytest.raises(PacketTooLarge) as caught:
        read_all(stream, limits=Limits(max_body_bytes=1 * MB))
    assert caught.value.message == f"the packet is larger than the {MB}-byte limit"
    assert stream.handed_out == MB + 1


def test_a_json_body_over_the_limit_stops_reading_right_at_the_limit() -> None:
    record = b'{"status":"insert","fields":{"no":"SO-1"}},'
    stream = LazyStream(
        repeat(
            b'{"salesmancode":"u1","tables":[{"tablename":"T","records":[', record * 1000, 200 * MB
        )
    )
    with pytest.raises(PacketTooLarge) as caught:
        read_all(stream, limits=Limits(max_body_bytes=8 * MB))
    assert caught.value.message == f"the packet is larger than the {8 * MB}-byte limit"
    assert stream.handed_out == 8 * MB + 1


def test_summarize_of_a_large_packet_runs_in_flat_memory() -> None:
    record = b'<r status="insert"><no>SO-1</no><name>' + "Име".encode() * 50 + b"</name></r>"
    stream = LazyStream(
        repeat(HEAD + b'<table tablename="T">', record * 100, 100 * MB, b"</table></NavMobileSync>")
    )
    before = rss()
    summary = summarize(stream)
    assert summary.records == (100 * MB // len(record * 100)) * 100
    assert rss() - before < 50 * MB


# -- broken documents ------------------------------------------------------------------------------
def test_invalid_utf8_is_malformed() -> None:
    doc = HEAD + b'<table tablename="T"><r><no>\xc3\x28</no></r></table></NavMobileSync>'
    with pytest.raises(MalformedPacket) as caught:
        read_all(io.BytesIO(doc))
    assert caught.value.message == "the packet is not valid UTF-8"


GOOD = (
    HEAD + b'<table tablename="T" name="T"><r status="insert"><no>X-1</no><name>\xd0\x91\xd0\xb0'
    b"</name><e/></r><r><no>X-2</no></r></table></NavMobileSync>"
)
ROOT_STARTS = GOOD.index(b"<NavMobileSync") + len(b'<NavMobileSync salesmancode="u1">')


@pytest.mark.parametrize("cut", range(ROOT_STARTS, len(GOOD)))
def test_a_packet_cut_anywhere_after_the_root_starts_is_reported_truncated(cut: int) -> None:
    with pytest.raises(MalformedPacket) as caught:
        read_all(io.BytesIO(GOOD[:cut]))
    assert caught.value.message == "the packet is truncated: it ends before </NavMobileSync>"


def test_a_packet_cut_inside_the_prolog_is_reported_as_such() -> None:
    with pytest.raises(MalformedPacket) as caught:
        read_all(io.BytesIO(GOOD[:30]))
    assert caught.value.message == "the packet ends before its root element starts"


@pytest.mark.parametrize(
    ("doc", "error", "message"),
    [
        (
            b"<Orders/>",
            MalformedPacket,
            "the root element is <Orders>; a sync packet's root is <NavMobileSync>",
        ),
        (b"\x00\x01binary", MalformedPacket, "the packet is neither XML nor JSON"),
        (b"", MalformedPacket, "the packet is empty"),
        (
            b"\xff\xfe<\x00N\x00",
            MalformedPacket,
            "sync packets must be encoded in UTF-8, not UTF-16 or UTF-32",
        ),
        (
            HEAD + b'<table tablename="A"><r/></table><table tablename="B"><r/></table>'
            b'<table tablename="A"><r/></table></NavMobileSync>',
            MalformedPacket,
            "table 'A' appears more than once; all records of a table belong together",
        ),
        (
            HEAD + b'<table tablename="A"/><table tablename="A"/></NavMobileSync>',
            MalformedPacket,
            "table 'A' appears more than once; all records of a table belong together",
        ),
        (
            HEAD + b'<table tablename="A"><r/><note>x</note><r/></table></NavMobileSync>',
            MalformedPacket,
            "unexpected element <note> inside <table>",
        ),
        (
            HEAD + b'<table tablename="A"><r/></table><extra/></NavMobileSync>',
            MalformedPacket,
            "unexpected element <extra> inside <NavMobileSync>",
        ),
        (
            HEAD
            + b'<table tablename="A"><table tablename="B"><r/></table></table></NavMobileSync>',
            MalformedPacket,
            "a <table> must be a direct child of <NavMobileSync>",
        ),
        (
            b'<NavMobileSync salesmancode="  "/>',
            MalformedPacket,
            "the salesmancode attribute is empty",
        ),
        (
            HEAD
            + b'<table tablename="A"><r status="INSERTED"/><r status="Bogus"/></table>'
            + b"</NavMobileSync>",
            MalformedPacket,
            "record status 'Bogus' is unknown; expected insert, inserted, update, updated, "
            "delete, deleted, read, or no status",
        ),
    ],
    ids=[
        "wrong-root",
        "binary-junk",
        "empty",
        "utf16",
        "duplicate-tablename",
        "duplicate-empty-table",
        "junk-in-table",
        "junk-in-root",
        "nested-table",
        "blank-salesmancode",
        "unknown-status",
    ],
)
def test_broken_document_gets_its_error(doc: bytes, error: type[PacketError], message: str) -> None:
    with pytest.raises(error) as caught:
        read_all(io.BytesIO(doc))
    assert type(caught.value) is error
    assert caught.value.message == message


# -- JSON ------------------------------------------------------------------------------------------
JSON_HEAD = '{"salesmancode":"u1","tables":[{"tablename":"T","records":['


@pytest.mark.parametrize(
    ("doc", "message", "path"),
    [
        ('{"salesmancode":7}', "salesmancode must be a string, not a number", "$.salesmancode"),
        ('{"salesmancode":"u1","tables":{}}', "tables must be an array, not an object", "$.tables"),
        (
            '{"salesmancode":"u1","attributes":{"roleid":true}}',
            "roleid must be a string, not a boolean",
            "$.attributes.roleid",
        ),
        (
            JSON_HEAD + '{"fields":["no"]}]}]}',
            "fields must be an object, not an array",
            "$.tables[0].records[0].fields",
        ),
        (
            JSON_HEAD + '{"fields":{"no":null}}]}]}',
            "no must be a string, not null",
            "$.tables[0].records[0].fields.no",
        ),
        (
            JSON_HEAD + '{"status":1,"fields":{}}]}]}',
            "status must be a string, not a number",
            "$.tables[0].records[0].status",
        ),
        (
            JSON_HEAD + '{"fields":{},"extra":"x"}]}]}',
            "unknown key 'extra' in a record",
            "$.tables[0].records[0].extra",
        ),
        (JSON_HEAD + '{"status":"insert"}]}]}', "a record has no fields", "$.tables[0].records[0]"),
        (
            JSON_HEAD + '"r"]}]}',
            "a record must be an object, not a string",
            "$.tables[0].records[0]",
        ),
        (
            '{"salesmancode":"u1","tables":[{"records":[],"tablename":"T"}]}',
            'tablename is missing or comes after "records"; table keys come before "records"',
            "$.tables[0]",
        ),
        (
            '{"salesmancode":"u1","tables":[],"attributes":{}}',
            "header key 'attributes' comes after \"tables\"; header keys come first",
            "$.attributes",
        ),
        (
            JSON_HEAD + '{"fields":{"no":"1","no":"2"}}]}]}',
            "field <no> appears twice in one record",
            "$.tables[0].records[0].fields.no",
        ),
    ],
    ids=[
        "number-salesmancode",
        "tables-object",
        "bool-attribute",
        "fields-array",
        "null-field",
        "number-status",
        "unknown-record-key",
        "no-fields",
        "record-string",
        "tablename-after-records",
        "header-after-tables",
        "duplicate-field",
    ],
)
@pytest.mark.parametrize("body", ["small", "large"])
def test_json_with_wrong_types_or_shape_gets_a_clear_error_with_its_path(
    doc: str, message: str, path: str, body: str
) -> None:
    data = doc.encode()
    if body == "large":  # past the orjson threshold: the ijson stream path must agree
        data = data + b" " * (5 * MB)
    with pytest.raises(MalformedPacket) as caught:
        read_all(io.BytesIO(data))
    assert caught.value.message == message
    assert caught.value.location.path == path


@pytest.mark.parametrize("digits", [400, 5000, 1_000_000])
@pytest.mark.parametrize("form", ["integer", "exponent"])
def test_json_with_a_huge_number_is_refused_without_building_it(digits: int, form: str) -> None:
    number = "1" + "0" * digits if form == "integer" else "1e" + "9" * digits
    for padding in (b"", b" " * (5 * MB)):  # orjson and ijson paths
        data = (JSON_HEAD + '{"fields":{"qty":' + number + "}}]}]}").encode() + padding
        with pytest.raises(MalformedPacket) as caught:
            read_all(io.BytesIO(data))
        assert caught.value.message == "a number is too large; values in sync packets are strings"


def test_json_with_invalid_utf8_is_malformed() -> None:
    data = (JSON_HEAD + '{"fields":{"no":"').encode() + b"\xc3\x28" + b'"}}]}]}'
    with pytest.raises(MalformedPacket) as caught:
        read_all(io.BytesIO(data))
    assert caught.value.message == "the packet is not valid UTF-8"


def test_json_with_trailing_garbage_is_malformed() -> None:
    data = b'{"salesmancode":"u1","tables":[]} {"again":1}'
    with pytest.raises(MalformedPacket) as caught:
        read_all(io.BytesIO(data))
    assert caught.value.message == "unexpected content after the JSON packet"
