"""What the portal sends is checked before it is used: rendition paths, storage links and
upload paths, download deadlines, huge pull lists and absurd entries."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator

import orjson
import pytest
from support.packets import xml_packet
from support.portal import DEMO_API_KEY

from packetworker.portal import PortalClient
from packetworker.portal.entries import MAX_RECEIPT_HANDLE_CHARS, entry_problem, iter_list
from packetworker.portal.errors import DownloadDeadline, PortalUnavailable, UnsafeLink
from packetworker.portal.links import check_link, rendition_path
from packetworker.sandbox.queue import Message

# --- renditions ---------------------------------------------------------------------------


def test_the_xml_rendition_rewrites_only_segment_two_and_the_extension():
    listed = "push-done/json/prod/JSONAREA/20210714/json.user/json-id.json.json"

    assert (
        rendition_path(listed) == "push-done/xml/prod/JSONAREA/20210714/json.user/json-id.json.xml"
    )
    assert rendition_path(listed, "as-listed") == listed


@pytest.mark.parametrize(
    "path",
    [
        "push-done/file/prod/A/20210714/u/id.jpg",  # attachments keep their path
        "push-done/xml/prod/A/20210714/u/id.xml",
        "push-done/json/prod/A/20210714/u/id.bin",
        "json",
    ],
)
def test_paths_of_any_other_shape_are_kept(path):
    assert rendition_path(path) == path


# --- links ----------------------------------------------------------------------------------


def _resolver(table: dict[str, list[str]]):
    return lambda host: table.get(host, [])


@pytest.mark.parametrize(
    "url",
    [
        "http://storage.example.com/b/k",  # plain http
        "https://127.0.0.1/b/k",
        "https://10.1.2.3/b/k",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/b/k",
        "https://[::ffff:127.0.0.1]/b/k",
        "https://[fe80::1]/b/k",
        "https://0.0.0.0/b/k",
        "https://inside.example.com/b/k",  # resolves to a private address
        "https://dual.example.com/b/k",  # one of its addresses is loopback
        "ftp://storage.example.com/b/k",
    ],
)
def test_links_to_internal_hosts_or_without_https_are_refused(url):
    resolve = _resolver(
        {
            "inside.example.com": ["192.168.7.9"],
            "dual.example.com": ["52.1.2.3", "127.0.0.1"],
            "storage.example.com": ["52.1.2.3"],
        }
    )

    with pytest.raises(UnsafeLink) as caught:
        check_link(url, resolve=resolve)

    assert caught.value.transient is False


def test_a_link_whose_host_does_not_resolve_is_tried_again_later():
    with pytest.raises(PortalUnavailable) as caught:
        check_link("https://nowhere.example.com/b/k", resolve=_resolver({}))

    assert caught.value.transient is True


def test_a_public_https_link_and_a_listed_host_are_allowed():
    resolve = _resolver({"bucket.s3.amazonaws.com": ["52.216.1.2"]})

    check_link("https://bucket.s3.amazonaws.com/k?X-Amz-Signature=abc", resolve=resolve)
    check_link("http://127.0.0.1:9000/b/k", allowed_hosts={"127.0.0.1"}, resolve=resolve)


def test_a_download_link_to_loopback_is_refused_before_any_request(portal_sandbox):
    portal_sandbox.enqueue("DEMO", xml_packet(), user="user1")
    with PortalClient(base_url=portal_sandbox.url, app_area="DEMO", api_key=DEMO_API_KEY) as client:
        [entry] = client.pull()
        link = client.link(rendition_path(entry.url))

        with pytest.raises(UnsafeLink, match="only https"):
            client.download(link, io.BytesIO())

    assert [r.server for r in portal_sandbox.requests()] == ["portal", "portal"]


def test_a_push_upload_path_to_loopback_is_refused_and_nothing_is_uploaded(portal_sandbox):
    client = PortalClient(base_url=portal_sandbox.url, app_area="DEMO", api_key=DEMO_API_KEY)
    with client, pytest.raises(UnsafeLink, match="refused link"):
        client.push("user1", xml_packet("user1"))

    assert portal_sandbox.uploads("DEMO") == []
    assert [r.server for r in portal_sandbox.requests()] == ["portal"]


# --- download deadline ------------------------------------------------------------------------


def test_a_trickling_download_stops_at_its_total_deadline(portal_sandbox, portal_client):
    portal_sandbox.enqueue("DEMO", xml_packet("user1", records=50), user="user1")
    [entry] = portal_client.pull()
    link = portal_client.link(rendition_path(entry.url))
    # 16 bytes every 20 ms: a read never waits long, but the body needs many seconds.
    portal_sandbox.faults.trickle(
        0.02, piece_bytes=16, path_prefix=f"/{portal_sandbox.storage.bucket}/"
    )
    into = io.BytesIO()

    started = time.monotonic()
    with pytest.raises(DownloadDeadline) as caught:
        portal_client.download(link, into, deadline=0.5)

    assert time.monotonic() - started < 3
    assert caught.value.transient is True
    assert 0 < len(into.getvalue()) < len(xml_packet("user1", records=50))


# --- pull lists ---------------------------------------------------------------------------------


def _entry(n: int) -> dict[str, object]:
    return {
        "url": f"push-done/json/prod/A/20210714/u/{n:08d}.json",
        "receiptHandle": "AQEB" + "x" * 400,
        "id": f"{n:08d}",
        "userName": "u",
        "size": 0,
        "companyId": "C",
        "appCode": "SLA",
        "packetType": "data",
    }


def _json_list(count: int) -> Iterator[bytes]:
    yield b"["
    for n in range(count):
        yield (b"," if n else b"") + orjson.dumps(_entry(n))
    yield b"]"


def _xml_list(count: int) -> Iterator[bytes]:
    yield b"<messages>"
    for n in range(count):
        fields = "".join(f"<{k}>{v}</{k}>" for k, v in _entry(n).items())
        yield f"<message>{fields}</message>".encode()
    yield b"</messages>"


class _Counted:
    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks = chunks
        self.read = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            self.read += 1
            yield chunk


@pytest.mark.parametrize("make", [_json_list, _xml_list])
def test_a_capped_read_of_a_huge_list_stops_after_the_cap(make):
    chunks = _Counted(make(100_000))

    entries = list(iter_list(chunks, limit=50))

    assert [e.id for e in entries] == [f"{n:08d}" for n in range(50)]
    # Read ahead is bounded by the parsers' buffers (64 KiB), not by the list's length.
    assert chunks.read < 500


def test_pull_over_http_returns_at_most_the_limit(portal_sandbox, portal_client):
    queue = portal_sandbox.queue("DEMO")
    for n in range(3000):
        url = f"push-done/json/prod/DEMO/20210714/u/{n}.json"
        queue.add(Message(id=str(n), url=url, user_name="u", on_date="", size=0, company_id="C"))

    as_json = portal_client.pull(limit=25)
    portal_sandbox.clock.advance(portal_sandbox.visibility_timeout + 1)
    as_xml = portal_client.pull(format="xml", limit=25)

    assert [e.id for e in as_json] == [str(n) for n in range(25)]
    assert [e.id for e in as_xml] == [str(n) for n in range(25)]


def test_entries_with_absurd_ids_or_receipt_handles_are_refused_with_the_reason():
    body = orjson.dumps(
        [
            {**_entry(1), "id": ""},
            {**_entry(2), "receiptHandle": "AQEB" + "h" * MAX_RECEIPT_HANDLE_CHARS},
            _entry(3),
        ]
    )

    problems = [entry_problem(e) for e in iter_list([body])]

    assert problems == [
        "the packet id is empty",
        f"the receipt handle is {MAX_RECEIPT_HANDLE_CHARS + 4} characters long (limit 1024)",
        None,
    ]


def test_an_xml_list_with_a_dtd_is_refused():
    body = (
        b'<!DOCTYPE messages [<!ENTITY x "boom">]>'
        b"<messages><message><id>&x;</id></message></messages>"
    )

    with pytest.raises(ValueError, match="DTD"):
        list(iter_list([body]))
