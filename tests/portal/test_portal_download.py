"""Links and downloads: exact bytes, expiry, tampering, size cap, no key at storage."""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import io
import threading
from collections.abc import Iterator

import pytest
from support.packets import xml_packet

from packetworker.portal import DownloadTooLarge, LinkExpired, PortalError
from packetworker.portal.links import rendition_path


@pytest.fixture
def listed(portal_sandbox, portal_client):
    """One packet enqueued and listed: (body, entry with the XML rendition's path as url)."""
    body = xml_packet("user1", records=20)
    portal_sandbox.enqueue("DEMO", body, user="user1")
    [entry] = portal_client.pull()
    return body, dataclasses.replace(entry, url=rendition_path(entry.url))


def test_download_writes_the_exact_bytes_and_their_hash(portal_client, listed):
    body, entry = listed
    into = io.BytesIO()

    result = portal_client.download(portal_client.link(entry.url), into)

    assert into.getvalue() == body
    assert (result.size, result.sha256) == (len(body), hashlib.sha256(body).hexdigest())


def test_link_after_expiry_is_refused_and_a_new_link_works(portal_sandbox, portal_client, listed):
    body, entry = listed
    old_link = portal_client.link(entry.url)
    portal_sandbox.clock.advance(portal_sandbox.link_ttl + 1)

    with pytest.raises(LinkExpired) as caught:
        portal_client.download(old_link, io.BytesIO())
    into = io.BytesIO()
    portal_client.download(portal_client.link(entry.url), into)

    assert caught.value.status == 403
    assert caught.value.transient is True
    assert "Request has expired" in caught.value.body_excerpt
    assert into.getvalue() == body


def test_link_still_valid_just_before_expiry(portal_sandbox, portal_client, listed):
    body, entry = listed
    link = portal_client.link(entry.url)
    portal_sandbox.clock.advance(portal_sandbox.link_ttl - 1)
    into = io.BytesIO()

    portal_client.download(link, into)

    assert into.getvalue() == body


def test_tampered_signature_is_refused(portal_client, listed):
    _, entry = listed
    link = portal_client.link(entry.url)
    signature = link.rsplit("X-Amz-Signature=", 1)[1]
    tampered = link.replace(signature, ("0" if signature[0] != "0" else "1") + signature[1:])

    with pytest.raises(LinkExpired) as caught:
        portal_client.download(tampered, io.BytesIO())

    assert caught.value.status == 403
    assert "AccessDenied" in caught.value.body_excerpt


def test_no_api_key_reaches_storage(portal_sandbox, portal_client, listed):
    _, entry = listed
    portal_client.download(portal_client.link(entry.url), io.BytesIO())
    portal_client.push("user1", b"<NavMobileSync salesmancode='user1'/>")

    storage = [r for r in portal_sandbox.requests() if r.server == "storage"]
    assert [(r.method, r.status) for r in storage] == [("GET", 200), ("PUT", 200)]
    assert all("x-api-key" not in r.header_names for r in storage)


def test_download_over_the_cap_is_refused_and_leaves_nothing(portal_client, listed):
    body, entry = listed
    into = io.BytesIO(b"kept")
    into.seek(4)

    with pytest.raises(DownloadTooLarge) as caught:
        portal_client.download(portal_client.link(entry.url), into, max_bytes=len(body) - 1)

    assert caught.value.transient is False
    assert into.getvalue() == b"kept"


class _Unsized(http.server.BaseHTTPRequestHandler):
    """Answers every GET with `body` in chunked encoding: no Content-Length to check up front."""

    protocol_version = "HTTP/1.1"
    body = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for start in range(0, len(self.body), 16 * 1024):
                chunk = self.body[start : start + 16 * 1024]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"0\r\n\r\n")
        except ConnectionError:  # the client hung up at its cap, as it should
            self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def unsized_storage() -> Iterator[tuple[str, bytes]]:
    """A real loopback server streaming a 300 kB body without declaring its length."""
    body = bytes(range(256)) * 1200
    handler = type("Unsized", (_Unsized,), {"body": body})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/bucket/p.xml", body
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_an_undeclared_body_over_the_cap_is_stopped_while_streaming_and_leaves_nothing(
    portal_client, unsized_storage
):
    url, _ = unsized_storage
    into = io.BytesIO(b"kept")
    into.seek(4)

    with pytest.raises(DownloadTooLarge) as caught:
        portal_client.download(url, into, max_bytes=100_000)

    assert caught.value.message == "object exceeds the cap of 100000 bytes"
    assert caught.value.transient is False
    assert into.getvalue() == b"kept"


def test_an_undeclared_body_within_the_cap_is_written_whole(portal_client, unsized_storage):
    url, body = unsized_storage
    into = io.BytesIO()

    result = portal_client.download(url, into, max_bytes=len(body))

    assert into.getvalue() == body
    assert (result.size, result.sha256) == (len(body), hashlib.sha256(body).hexdigest())


def test_download_of_exactly_the_cap_succeeds(portal_client, listed):
    body, entry = listed

    result = portal_client.download(
        portal_client.link(entry.url), io.BytesIO(), max_bytes=len(body)
    )

    assert result.size == len(body)


def test_storage_error_is_retried_and_the_body_rewritten_once(
    portal_sandbox, portal_client, listed, retry_waits
):
    body, entry = listed
    link = portal_client.link(entry.url)
    portal_sandbox.faults.add(status=503, count=1, path_prefix=f"/{portal_sandbox.storage.bucket}/")
    into = io.BytesIO()

    portal_client.download(link, into)

    assert into.getvalue() == body
    assert len(retry_waits) == 1


def test_dropped_storage_connection_is_retried(portal_sandbox, portal_client, listed, retry_waits):
    body, entry = listed
    link = portal_client.link(entry.url)
    portal_sandbox.faults.refuse(count=1, path_prefix=f"/{portal_sandbox.storage.bucket}/")
    into = io.BytesIO()

    portal_client.download(link, into)

    assert into.getvalue() == body
    assert len(retry_waits) == 1


def test_link_for_an_unknown_path_is_a_permanent_404(portal_client):
    with pytest.raises(PortalError) as caught:
        portal_client.link("push-done/xml/prod/DEMO/20210714/user1/missing.xml")

    assert (caught.value.status, caught.value.transient) == (404, False)
