"""The `web` process's own server (waitress, as `packetworker web` builds it) under hostile
clients: oversized bodies, deeply nested JSON, and many idle or half-sent connections."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from support.web import Waitress

from packetworker.settings import Settings
from packetworker.web import MAX_NOTIFICATION_BYTES, WebApp

SECRET = "cs-hostile-9f8e7d6c"


@pytest.fixture
def queued() -> list[dict]:
    return []


@pytest.fixture
def app(queued) -> WebApp:
    return WebApp(client_state=SECRET, enqueue=queued.append, health=lambda: True)


@pytest.fixture
def served(app) -> Iterator[Waitress]:
    server = Waitress(app, web_channel_timeout=1)
    yield server
    server.close()


def read_status(sock: socket.socket) -> str:
    """The status line of the first response on `sock` (raises on the socket's timeout)."""
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.split(b"\r\n", 1)[0].decode()


def test_a_body_declared_too_large_is_refused_before_any_of_it_is_sent(served, queued):
    with served.connect() as sock:
        sock.settimeout(5)
        sock.sendall(
            b"POST /bc/webhook HTTP/1.1\r\nHost: localhost\r\n"
            b"Content-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % (100 * 1024 * 1024)
        )

        status = read_status(sock)

    assert status.split(" ")[1] == "413"
    assert queued == []


def test_a_body_just_over_the_limit_is_refused_by_the_app_too(app, queued):
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/bc/webhook",
        "QUERY_STRING": "validationToken=t",  # even the handshake path never gets that far
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
        "CONTENT_LENGTH": str(MAX_NOTIFICATION_BYTES + 1),
        "wsgi.input": _Unreadable(),
    }
    statuses: list[str] = []

    b"".join(app(environ, lambda status, headers, exc_info=None: statuses.append(status)))

    assert statuses == ["413 REQUEST ENTITY TOO LARGE"]


class _Unreadable:
    def read(self, *args: object) -> bytes:
        raise AssertionError("the body was read")

    readline = read


def test_deeply_nested_json_is_a_400_without_a_traceback(served, queued, caplog):
    body = b'{"value": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"

    with caplog.at_level(logging.DEBUG):
        response = httpx.post(f"{served.root}/bc/webhook", content=body, timeout=10)

    assert response.status_code == 400
    assert "Recursion" not in response.text
    assert "Traceback" not in response.text
    assert "RecursionError" not in caplog.text
    assert "Traceback" not in caplog.text
    assert queued == []


def test_health_answers_while_120_clients_sit_idle_or_half_way_through_a_request(served):
    idle = [served.connect() for _ in range(60)]
    half_sent = [served.connect() for _ in range(60)]
    for sock in half_sent:
        sock.sendall(
            b"POST /bc/webhook HTTP/1.1\r\nHost: localhost\r\nContent-Length: 500\r\n\r\n"
            b'{"value": ['
        )
    started = time.monotonic()
    try:
        # The 120 connections exceed waitress's connection limit (100): /healthz is only
        # accepted once the idle and half-sent ones are dropped after WEB_CHANNEL_TIMEOUT.
        response = httpx.get(f"{served.root}/healthz", timeout=8)
    finally:
        for sock in idle + half_sent:
            sock.close()

    assert (response.status_code, response.text) == (200, "ok")
    assert time.monotonic() - started < 8


def test_the_server_listens_on_web_host(app):
    server = Waitress(app, web_host="127.0.0.1")
    try:
        assert server.server.effective_host == "127.0.0.1"
        assert httpx.get(f"{server.root}/healthz", timeout=5).status_code == 200
    finally:
        server.close()


def test_web_host_defaults_to_every_interface_for_the_platform_router(monkeypatch):
    monkeypatch.delenv("WEB_HOST", raising=False)

    assert Settings(_env_file=None).web_host == "0.0.0.0"
