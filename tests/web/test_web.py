"""The `web` process's app over real HTTP: handshake, notifications, health, metrics."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import pytest

from packetworker.sandbox.base import ServerThread
from packetworker.web import WebApp, render_metrics

SECRET = "cs-web-1b2c3d4e5f"
RESOURCE = (
    "api/v2.0/companies(c0ffee00-0000-0000-0000-000000000001)"
    "/items(1234abcd-0000-0000-0000-000000000002)"
)


class Served:
    def __init__(self, app: WebApp) -> None:
        self._server = ServerThread(app)
        self._server.start()
        self.root = self._server.base_url
        self.http = httpx.Client(base_url=self.root, timeout=5)

    def close(self) -> None:
        self.http.close()
        self._server.stop()


@pytest.fixture
def queued() -> list[dict]:
    return []


@pytest.fixture
def healthy() -> list[bool]:
    return [True]


@pytest.fixture
def served(queued, healthy) -> Iterator[Served]:
    app = WebApp(
        client_state=SECRET,
        enqueue=queued.append,
        health=lambda: healthy[0],
        metrics=lambda: [
            ("packetworker_outbound_events_total", "counter", {"event": "push_complete"}, 3),
            ("packetworker_packets", "gauge", {"app_area": "DEMO", "state": "applied"}, 7),
        ],
    )
    s = Served(app)
    yield s
    s.close()


def notification(client_state: str = SECRET, **changes) -> dict:
    return {
        "subscriptionId": "sub-1",
        "clientState": client_state,
        "expirationDateTime": "2030-01-01T00:00:00Z",
        "resource": RESOURCE,
        "changeType": "created",
        "lastModifiedDateTime": "2030-01-01T00:00:00.123Z",
        **changes,
    }


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_handshake_echoes_the_validation_token_as_plain_text(served, method, queued):
    response = served.http.request(method, "/bc/webhook", params={"validationToken": "tok-42_x"})

    assert response.status_code == 200
    assert response.text == "tok-42_x"
    assert response.headers["content-type"].startswith("text/plain")
    assert queued == []


def test_handshake_needs_no_redis(queued):
    def broken() -> bool:
        raise ConnectionError("redis is away")

    s = Served(WebApp(client_state=SECRET, enqueue=queued.append, health=broken))
    try:
        response = s.http.get("/bc/webhook", params={"validationToken": "t"})
    finally:
        s.close()

    assert (response.status_code, response.text) == (200, "t")


def test_an_oversized_token_is_refused(served):
    response = served.http.get("/bc/webhook", params={"validationToken": "x" * 5000})

    assert response.status_code == 400


def test_notifications_with_the_right_client_state_are_queued_and_answered_202(served, queued):
    response = served.http.post(
        "/bc/webhook", json={"value": [notification(), notification(changeType="updated")]}
    )

    assert response.status_code == 202
    assert [(m["entity_set"], m["change_type"]) for m in queued] == [
        ("items", "created"),
        ("items", "updated"),
    ]
    assert queued[0]["entity_id"] == "1234abcd-0000-0000-0000-000000000002"
    assert all("clientState" not in m and SECRET not in str(m) for m in queued)


def test_a_wrong_client_state_is_refused_and_logged_without_the_secret(served, queued, caplog):
    with caplog.at_level(logging.DEBUG):
        response = served.http.post(
            "/bc/webhook", json={"value": [notification(client_state="guess")]}
        )

    assert response.status_code == 401
    assert queued == []
    assert "wrong clientState" in caplog.text
    assert SECRET not in caplog.text
    assert "guess" not in caplog.text


def test_only_the_matching_notifications_of_a_mixed_call_are_queued(served, queued):
    response = served.http.post(
        "/bc/webhook",
        json={"value": [notification(client_state="nope"), notification(), {"clientState": 7}]},
    )

    assert response.status_code == 202
    assert [(m["entity_set"], m["change_type"]) for m in queued] == [("items", "created")]


def test_a_body_that_is_not_a_notification_list_is_a_400(served, queued):
    for body in (b"not json", b"[]", b'{"value": {}}'):
        response = served.http.post("/bc/webhook", content=body)
        assert response.status_code == 400
    assert queued == []


def test_queueing_failure_answers_503_so_bc_retries():
    def enqueue(message: dict) -> None:
        raise ConnectionError("redis is away")

    s = Served(WebApp(client_state=SECRET, enqueue=enqueue))
    try:
        response = s.http.post("/bc/webhook", json={"value": [notification()]})
    finally:
        s.close()

    assert response.status_code == 503


def test_a_get_without_a_token_is_not_allowed(served):
    assert served.http.get("/bc/webhook").status_code == 405


def test_unknown_paths_are_404(served):
    assert served.http.get("/elsewhere").status_code == 404


def test_health_follows_the_check(served, healthy):
    assert (served.http.get("/healthz").status_code, served.http.get("/healthz").text) == (
        200,
        "ok",
    )
    healthy[0] = False
    assert served.http.get("/healthz").status_code == 503


def test_metrics_are_prometheus_text(served):
    response = served.http.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert response.text == (
        "# HELP packetworker_outbound_events_total Outbound pushes and notifications, by event.\n"
        "# TYPE packetworker_outbound_events_total counter\n"
        'packetworker_outbound_events_total{event="push_complete"} 3\n'
        "# HELP packetworker_packets Packets in the ledger by state (outcome, for finished ones).\n"
        "# TYPE packetworker_packets gauge\n"
        'packetworker_packets{app_area="DEMO",state="applied"} 7\n'
    )


def test_metric_labels_are_escaped():
    text = render_metrics([("m", "gauge", {"r": 'a"b\\c\nd'}, 1.5)])

    assert text == '# HELP m m\n# TYPE m gauge\nm{r="a\\"b\\\\c\\nd"} 1.5\n'
