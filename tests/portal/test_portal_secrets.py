"""The API key and presigned signatures never reach exception text or log lines."""

from __future__ import annotations

import io
import logging
from urllib.parse import parse_qs, urlsplit

import pytest
from support.packets import xml_packet
from support.portal import DEMO_API_KEY

from packetworker.portal import LinkExpired, PortalClient, PortalError, PortalUnavailable


def signature_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["X-Amz-Signature"][0]


def test_errors_and_logs_of_a_full_round_hold_no_secrets(portal_sandbox, portal_client, caplog):
    caplog.set_level(logging.DEBUG, logger="packetworker")
    portal_sandbox.enqueue("DEMO", xml_packet(), user="user1")
    portal_sandbox.faults.add(status=503, count=1)
    [entry] = portal_client.pull()
    link = portal_client.link(entry.url)
    portal_sandbox.clock.advance(portal_sandbox.link_ttl + 1)
    with pytest.raises(LinkExpired) as expired:
        portal_client.download(link, io.BytesIO())
    portal_client.done([entry])

    secrets = [DEMO_API_KEY, signature_of(link)]
    lines = [record.getMessage() for record in caplog.records]
    assert any("GET" in line and "/erp/pull/DEMO" in line and "503" in line for line in lines)
    assert any("X-Amz-Signature=***" in line and line.endswith("-> 403") for line in lines)
    for secret in secrets:
        assert all(secret not in line for line in lines)
        assert secret not in str(expired.value)
        assert secret not in repr(expired.value.args)


def test_unavailable_error_does_not_carry_the_key(portal_sandbox, portal_client):
    portal_sandbox.faults.add(status=503, count=10)

    with pytest.raises(PortalUnavailable) as caught:
        portal_client.pull()

    assert DEMO_API_KEY not in str(caught.value)
    assert "HTTP 503" in str(caught.value)


def test_body_that_echoes_the_key_is_redacted_in_the_error():
    import httpx

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, text=f"bad request from key {request.headers['x-api-key']}")

    client = PortalClient(
        base_url="http://portal.test/mobile",
        app_area="X",
        api_key="secret-key-77aa",
        transport=httpx.MockTransport(answer),
    )
    with client, pytest.raises(PortalError) as caught:
        client.pull()

    assert caught.value.status == 400
    assert "secret-key-77aa" not in str(caught.value)
    assert "bad request from key ***" in caught.value.body_excerpt


def test_client_repr_hides_the_key(portal_client):
    assert DEMO_API_KEY not in repr(portal_client)
