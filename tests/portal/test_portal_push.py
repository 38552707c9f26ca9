"""Push: upload slot, then PUT of the exact bytes (from bytes, files and streams)."""

from __future__ import annotations

import io
import uuid

import httpx
import pytest
from support.packets import xml_packet

from packetworker.portal import PortalClient, PortalProtocolError


class OneWayStream(io.RawIOBase):
    """A readable stream that cannot seek, like a pipe."""

    def __init__(self, data: bytes) -> None:
        self._inner = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        chunk = self._inner.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def test_push_uploads_the_exact_bytes(portal_sandbox, portal_client):
    body = xml_packet("user7", records=50)
    packet_id = str(uuid.uuid4())

    result = portal_client.push("user7", body, packet_unique_id=packet_id)

    [upload] = portal_sandbox.uploads("DEMO")
    assert upload.body == body
    assert (upload.user, upload.packet_unique_id, upload.packet_type) == ("user7", packet_id, "xml")
    assert upload.declared_size == len(body)
    assert result.packet_unique_id == packet_id
    assert result.size == len(body)
    assert result.sync_log_id == upload.sync_log_id


def test_push_without_an_id_uses_a_fresh_uuid(portal_sandbox, portal_client):
    result = portal_client.push("user1", b"{}", packet_type="json")

    [upload] = portal_sandbox.uploads("DEMO")
    assert str(uuid.UUID(result.packet_unique_id)) == upload.packet_unique_id
    assert upload.packet_type == "json"


def test_push_from_a_file_path(portal_sandbox, portal_client, tmp_path):
    body = xml_packet("user1", pad=200_000)
    path = tmp_path / "out.xml"
    path.write_bytes(body)

    portal_client.push("user1", path)

    assert portal_sandbox.uploads("DEMO")[0].body == body


def test_push_from_a_stream_that_cannot_seek(portal_sandbox, portal_client):
    body = xml_packet("user1", pad=100_000)

    result = portal_client.push("user1", io.BufferedReader(OneWayStream(body)))

    assert result.size == len(body)
    assert portal_sandbox.uploads("DEMO")[0].body == body


def test_failed_upload_is_retried_with_the_whole_body(portal_sandbox, portal_client, retry_waits):
    body = xml_packet("user1", pad=150_000)
    portal_sandbox.faults.add(status=500, count=1, path_prefix=f"/{portal_sandbox.storage.bucket}/")

    portal_client.push("user1", io.BytesIO(body))

    assert portal_sandbox.uploads("DEMO")[0].body == body
    assert len(retry_waits) == 1


def _client_answering(answer: dict) -> PortalClient:
    """A client whose API answers `answer` to the push call (for bodies the sandbox never sends)."""
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=answer))
    return PortalClient(
        base_url="http://portal.test/mobile", app_area="X", api_key="k", transport=transport
    )


@pytest.mark.parametrize(
    "answer",
    [{"success": False, "uploadPath": "https://s3.test/u"}, {"success": True}, {"uploadPath": 3}],
)
def test_push_answer_without_success_and_upload_path_is_a_protocol_error(answer):
    with _client_answering(answer) as client, pytest.raises(PortalProtocolError) as caught:
        client.push("user1", b"<x/>")

    assert caught.value.transient is False


def test_push_needs_a_user(portal_client):
    with pytest.raises(ValueError, match="user"):
        portal_client.push("", b"<x/>")
