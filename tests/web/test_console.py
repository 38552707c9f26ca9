"""The console over real HTTP and a real Redis ledger: who gets in, which forms are taken,
what the pages show, and that no secret reaches any of them."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from support.replayed import replay_two_samples
from werkzeug.serving import make_server

from packetworker.console import Console, ConsoleViews, Gate
from packetworker.pipeline.context import PipelineContext
from packetworker.pipeline.ledger import PacketEntry
from packetworker.settings import Settings
from packetworker.web import WebApp

TOKEN = "console-token-5e1f0a9b8c7d"
PASSWORD = "console-password-a1b2c3d4"
API_KEY = "dm-api-key-never-shown-0042"
RECEIPT = "receipt-handle-never-shown-77"


@pytest.fixture
def ledger_ctx(tmp_path: Path, redis_url: str) -> Iterator[PipelineContext]:
    """A replay into a Redis ledger of its own: one packet applied, one quarantined."""
    namespace = f"console-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        _env_file=None,
        redis_url=redis_url,
        ledger_namespace=namespace,
        archive_url=f"file://{tmp_path / 'archive'}",
        spool_dir=tmp_path / "spool",
        target="recording",
        dm_api_key=API_KEY,
        web_console_token=TOKEN,
    )
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    ctx = replay_two_samples(settings, client, namespace)
    yield ctx
    for key in client.scan_iter(f"{namespace}:*"):
        client.delete(key)
    client.close()


class Served:
    def __init__(self, app: WebApp) -> None:
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}
        )
        self._thread.start()
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self._server.server_port}", timeout=5)

    def close(self) -> None:
        self.http.close()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


@pytest.fixture
def queued() -> list[tuple[str, str]]:
    return []


def serve(ctx: PipelineContext, gate: Gate, queued: list) -> Served:
    views = ConsoleViews(ctx.settings, ctx.ledger, ctx.archive)
    console = Console(gate=gate, views=views, enqueue=lambda a, p: queued.append((a, p)))
    return Served(WebApp(client_state="cs", enqueue=lambda m: None, console=console))


@pytest.fixture
def served(ledger_ctx, queued) -> Iterator[Served]:
    s = serve(ledger_ctx, Gate(token=TOKEN, user="ops", password=PASSWORD), queued)
    yield s
    s.close()


def csrf_of(html: str) -> str:
    return re.search(r'name=csrf value="([^"]+)"', html).group(1)


def log_in(http: httpx.Client, **credentials: str) -> httpx.Response:
    form = http.get("/console/login")
    return http.post("/console/login", data={"csrf": csrf_of(form.text), **credentials})


def quarantined_id(ctx: PipelineContext) -> str:
    [packet_id] = ctx.ledger.quarantine("OPS")
    return packet_id


def test_console_is_off_when_no_credentials_are_set(ledger_ctx, queued):
    s = serve(ledger_ctx, Gate(), queued)
    try:
        assert s.http.get("/console/").status_code == 404
        assert s.http.get("/console/login").status_code == 404
    finally:
        s.close()


def test_pages_send_a_stranger_to_the_login_form(served):
    for path in ("/console/", "/console/packets", "/console/quarantine"):
        response = served.http.get(path)
        assert (response.status_code, response.headers["location"]) == (303, "/console/login")


def test_a_wrong_token_is_refused_and_the_right_one_opens_the_console(served):
    refused = log_in(served.http, token="not-the-token")
    assert refused.status_code == 401
    assert served.http.get("/console/").status_code == 303

    assert log_in(served.http, token=TOKEN).status_code == 303
    overview = served.http.get("/console/")
    assert overview.status_code == 200
    assert "App area" in overview.text


def test_basic_auth_credentials_and_bearer_tokens_open_pages_directly(served):
    assert served.http.get("/console/", auth=("ops", PASSWORD)).status_code == 200
    assert served.http.get("/console/", auth=("ops", "wrong")).status_code == 303
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    assert served.http.get("/console/", headers=bearer).status_code == 200


def test_login_without_its_form_token_is_refused(served):
    served.http.get("/console/login")
    response = served.http.post("/console/login", data={"token": TOKEN})
    assert response.status_code == 403
    assert served.http.get("/console/").status_code == 303


def test_redrive_without_the_form_token_is_refused_and_queues_nothing(served, ledger_ctx, queued):
    log_in(served.http, token=TOKEN)
    packet_id = quarantined_id(ledger_ctx)

    forged = served.http.post(f"/console/packets/{packet_id}/redrive", data={"csrf": "x"})

    assert forged.status_code == 403
    assert queued == []
    assert ledger_ctx.ledger.get(packet_id).result == "quarantined"


def test_redrive_button_queues_the_packet_like_dlq_retry(served, ledger_ctx, queued):
    log_in(served.http, token=TOKEN)
    packet_id = quarantined_id(ledger_ctx)
    page = served.http.get("/console/quarantine")
    assert packet_id in page.text

    response = served.http.post(
        f"/console/packets/{packet_id}/redrive", data={"csrf": csrf_of(page.text)}
    )

    assert response.status_code == 303
    assert queued == [("OPS", packet_id)]
    entry = ledger_ctx.ledger.get(packet_id)
    assert (str(entry.state), entry.attempts, entry.result) == ("archived", 0, None)
    story = served.http.get(response.headers["location"])
    assert "Re-driven" in story.text
    assert "re-driven" in story.text


def test_search_finds_packets_by_document_number_and_outcome(served, ledger_ctx):
    log_in(served.http, token=TOKEN)

    by_outcome = served.http.get("/console/packets", params={"q": "quarantined"})
    by_document = served.http.get("/console/packets", params={"q": "BSO-000241"})

    assert quarantined_id(ledger_ctx) in by_outcome.text
    assert "1 packets" in by_outcome.text
    [applied] = ledger_ctx.ledger.ids("OPS", "applied")
    assert applied in by_document.text
    assert quarantined_id(ledger_ctx) not in by_document.text


def test_packet_page_shows_its_story_records_and_raw_bytes(served, ledger_ctx):
    log_in(served.http, token=TOKEN)
    [applied] = ledger_ctx.ledger.ids("OPS", "applied")

    page = served.http.get(f"/console/packets/{applied}").text

    for section in ("Timeline", "Tables", "Records in the target", "Errors", "Raw packet"):
        assert f"<h2>{section}</h2>" in page
    assert "SalesHeader" in page
    assert "&lt;NavMobileSync" in page  # the raw packet, escaped, never markup
    assert page.count('class="w-applied"') >= 2  # outcome and timeline step


def test_no_secret_appears_on_any_page(served, ledger_ctx):
    ledger = ledger_ctx.ledger
    ledger.record_listed(
        PacketEntry(packet_id="portal-1", app_area="OPS", receipt_handle=RECEIPT, url="/p/1")
    )
    ledger.update("portal-1", last_error=f"portal said no (key {API_KEY})")
    log_in(served.http, token=TOKEN)
    csrf = csrf_of(served.http.get("/console/").text)
    assert TOKEN not in csrf

    pages = [served.http.get(p) for p in ("/console/", "/console/packets", "/console/quarantine")]
    for packet_id in [*ledger.ids("OPS", "applied"), *ledger.quarantine("OPS"), "portal-1"]:
        pages.append(served.http.get(f"/console/packets/{packet_id}"))
    text = "".join(p.text for p in pages)
    assert all(p.status_code == 200 for p in pages)
    assert "portal-1" in text
    for secret in (TOKEN, PASSWORD, API_KEY, RECEIPT):
        assert secret not in text
        assert all(secret not in str(p.headers) for p in pages)
