from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from packetworker.sandbox.bc import BCSandbox, Clock
from packetworker.targets.bc import BCAuth, BCClient


@pytest.fixture
def clock() -> Clock:
    return Clock(frozen=True)


@pytest.fixture
def sandbox(clock) -> Iterator[BCSandbox]:
    with BCSandbox(clock=clock, page_size=10) as sb:
        yield sb


class Sleeps(list):
    """An injectable sleep that records waits instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def make_client(sandbox, sleeps):
    clients: list[BCClient] = []

    def make(**options) -> BCClient:
        auth = options.pop("auth", None) or BCAuth(
            token_url=sandbox.token_url,
            client_id=sandbox.client_id,
            client_secret=sandbox.client_secret,
            **options.pop("auth_options", {}),
        )
        options.setdefault("company", "CRONUS")
        client = BCClient(
            api_url=sandbox.api_url,
            tenant=sandbox.tenant,
            environment=sandbox.environment,
            auth=auth,
            sleep=sleeps,
            **options,
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def client(make_client) -> BCClient:
    return make_client()


class Receiver:
    """A tiny webhook receiver: echoes validation tokens, records notifications."""

    def __init__(self, *, echo: bool = True) -> None:
        self.echo = echo
        self.validations: list[str] = []
        self.notifications: list[dict] = []
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}/bc/webhook"

    @Request.application
    def _app(self, request: Request) -> Response:
        token = request.args.get("validationToken")
        if token is not None:
            self.validations.append(token)
            if not self.echo:
                return Response("nope", status=400)
            return Response(token, content_type="text/plain")
        self.notifications.append(request.get_json())
        return Response(status=202)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r
