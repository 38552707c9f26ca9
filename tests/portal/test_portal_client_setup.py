"""Client construction and answer shapes the sandbox does not produce."""

from __future__ import annotations

import httpx
import pytest
from pydantic import SecretStr

from packetworker.portal import PortalClient, PortalProtocolError
from packetworker.settings import Settings


def client_answering(text: str) -> PortalClient:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, text=text))
    return PortalClient(
        base_url="http://portal.test/mobile", app_area="A", api_key="k", transport=transport
    )


def test_link_accepts_a_plain_text_url():
    with client_answering("https://s3.test/bucket/p.xml?X-Amz-Signature=abc\n") as client:
        assert (
            client.link("push-done/xml/p.xml") == "https://s3.test/bucket/p.xml?X-Amz-Signature=abc"
        )


def test_link_answer_without_a_url_is_a_protocol_error():
    with (
        client_answering('{"message": "ok"}') as client,
        pytest.raises(PortalProtocolError) as caught,
    ):
        client.link("push-done/xml/p.xml")
    assert (caught.value.message, caught.value.transient) == ("link answer holds no URL", False)


def test_from_settings_takes_url_area_key_and_limits():
    settings = Settings(
        dm_api_url="http://127.0.0.1:9/mobile/",
        dm_app_area="AREA",
        dm_api_key=SecretStr("key-1234"),
        dm_http_retries=2,
        max_packet_bytes=1024,
    )

    with PortalClient.from_settings(settings, backoff_max=1.0) as client:
        assert (client.base_url, client.app_area) == ("http://127.0.0.1:9/mobile", "AREA")
        assert (client.retries, client.max_download_bytes, client.backoff_max) == (2, 1024, 1.0)


def test_an_app_area_is_required():
    with pytest.raises(ValueError, match="app_area"):
        PortalClient(base_url="http://portal.test/mobile", app_area="", api_key="k")


def test_paths_quote_the_user_name():
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.raw_path.decode())
        return httpx.Response(200, json={"success": False})

    client = PortalClient(
        base_url="http://portal.test/mobile",
        app_area="A",
        api_key="k",
        transport=httpx.MockTransport(answer),
    )
    with client, pytest.raises(PortalProtocolError):
        client.push("ivan petrov/2", b"<x/>", packet_unique_id="p1")

    assert seen == ["/mobile/erp/push/A/ivan%20petrov%2F2?packetUniqueId=p1&size=4&packetType=xml"]
