"""The storage front: presigned URLs are enforced by the sandbox clock and registry."""

from __future__ import annotations

import httpx
import pytest


@pytest.fixture
def stored(portal_sandbox):
    portal_sandbox.storage.put("push-done/xml/prod/DEMO/20240101/u/p.xml", b"<p/>")
    return "push-done/xml/prod/DEMO/20240101/u/p.xml"


def test_presigned_get_serves_the_object(portal_sandbox, stored):
    answer = httpx.get(portal_sandbox.storage.presign("GET", stored))

    assert (answer.status_code, answer.content) == (200, b"<p/>")


def test_expired_url_is_403_request_has_expired(portal_sandbox, stored):
    url = portal_sandbox.storage.presign("GET", stored)
    portal_sandbox.clock.advance(portal_sandbox.link_ttl + 0.5)

    answer = httpx.get(url)

    assert answer.status_code == 403
    assert "<Code>AccessDenied</Code><Message>Request has expired</Message>" in answer.text


def test_changed_parameter_is_403(portal_sandbox, stored):
    url = portal_sandbox.storage.presign("GET", stored)

    answer = httpx.get(url.replace("X-Amz-Expires=900", "X-Amz-Expires=99999"))

    assert answer.status_code == 403
    assert "<Code>AccessDenied</Code>" in answer.text


def test_url_for_another_key_is_403(portal_sandbox, stored):
    url = portal_sandbox.storage.presign("GET", stored)

    answer = httpx.get(url.replace("/p.xml?", "/q.xml?"))

    assert answer.status_code == 403


def test_get_url_cannot_be_used_to_put(portal_sandbox, stored):
    url = portal_sandbox.storage.presign("GET", stored)

    answer = httpx.put(url, content=b"overwritten")

    assert answer.status_code == 403
    assert portal_sandbox.storage.get(stored) == b"<p/>"


def test_unsigned_request_is_403(portal_sandbox, stored):
    answer = httpx.get(f"{portal_sandbox.storage_url}/{portal_sandbox.storage.bucket}/{stored}")

    assert answer.status_code == 403


def test_presigned_put_stores_the_streamed_body(portal_sandbox):
    url = portal_sandbox.storage.presign("PUT", "push/xml/x.xml")
    body = b"<big>" + b"y" * 300_000 + b"</big>"

    answer = httpx.put(url, content=body, headers={"Content-Type": "application/xml"})

    assert answer.status_code == 200
    assert portal_sandbox.storage.get("push/xml/x.xml") == body
