"""Retries: 429 with Retry-After, 5xx, dropped connections, timeouts; never 4xx."""

from __future__ import annotations

import pytest
from support.packets import xml_packet
from support.portal import DEMO_API_KEY
from support.waiting import free_port

from packetworker.portal import PortalAuthError, PortalClient, PortalError, PortalUnavailable
from packetworker.retrying import parse_retry_after


def pulls(sandbox):
    return [r for r in sandbox.requests() if r.path == "/mobile/erp/pull/DEMO"]


def test_429_waits_as_long_as_retry_after_says(portal_sandbox, portal_client, retry_waits):
    packet_id = portal_sandbox.enqueue("DEMO", xml_packet(), user="user1")
    portal_sandbox.faults.add(status=429, count=1, retry_after=7)

    entries = portal_client.pull()

    assert [e.id for e in entries] == [packet_id]
    assert retry_waits == [7.0]
    assert [r.status for r in pulls(portal_sandbox)] == [429, 200]


def test_500_then_success_returns_the_list(portal_sandbox, portal_client, retry_waits):
    packet_id = portal_sandbox.enqueue("DEMO", xml_packet(), user="user1")
    portal_sandbox.faults.add(status=500, count=1)

    entries = portal_client.pull()

    assert [e.id for e in entries] == [packet_id]
    assert len(retry_waits) == 1
    assert 0 <= retry_waits[0] <= portal_client.backoff_max


@pytest.mark.parametrize("status", [408, 502, 503])
def test_a_link_answered_with_a_transient_status_is_asked_for_again(
    portal_sandbox, portal_client, retry_waits, status
):
    portal_sandbox.enqueue("DEMO", xml_packet(), user="user1")
    [entry] = portal_client.pull()
    portal_sandbox.faults.fail(1, status=status, path_prefix="/mobile/erp/pull/DEMO/link")

    url = portal_client.link(entry.url)

    assert url.startswith("http")
    links = [r.status for r in portal_sandbox.requests() if r.path.endswith("/pull/DEMO/link")]
    assert links == [status, 200]
    assert len(retry_waits) == 1


def test_503_beyond_the_retries_is_unavailable(portal_sandbox, portal_client, retry_waits):
    portal_sandbox.faults.add(status=503, count=10)

    with pytest.raises(PortalUnavailable) as caught:
        portal_client.pull()

    assert (caught.value.status, caught.value.transient) == (503, True)
    assert len(pulls(portal_sandbox)) == portal_client.retries
    assert len(retry_waits) == portal_client.retries - 1


def test_retry_after_beyond_backoff_max_gives_up_at_once(
    portal_sandbox, portal_client, retry_waits
):
    portal_sandbox.faults.add(status=429, count=1, retry_after=3600)

    with pytest.raises(PortalUnavailable) as caught:
        portal_client.pull()

    assert caught.value.retry_after == 3600.0
    assert retry_waits == []
    assert len(pulls(portal_sandbox)) == 1


def test_auth_errors_are_not_retried(portal_sandbox, portal_client, retry_waits):
    portal_sandbox.faults.add(status=403, count=1)

    with pytest.raises(PortalAuthError):
        portal_client.pull()

    assert retry_waits == []
    assert len(pulls(portal_sandbox)) == 1


def test_other_4xx_are_not_retried(portal_sandbox, portal_client, retry_waits):
    portal_sandbox.faults.add(status=400, count=1)

    with pytest.raises(PortalError) as caught:
        portal_client.pull()

    assert (type(caught.value), caught.value.status, caught.value.transient) == (
        PortalError,
        400,
        False,
    )
    assert retry_waits == []


def test_dropped_connection_is_retried(portal_sandbox, portal_client, retry_waits):
    portal_sandbox.faults.refuse(count=1)

    assert portal_client.pull() == []
    assert [r.status for r in pulls(portal_sandbox)] == [0, 200]
    assert len(retry_waits) == 1


def test_slow_answer_past_the_timeout_is_retried(portal_sandbox, retry_waits):
    portal_sandbox.faults.slow(2.0, count=1)
    client = PortalClient(
        base_url=portal_sandbox.url,
        app_area="DEMO",
        api_key=DEMO_API_KEY,
        timeout=0.3,
        sleep=retry_waits.append,
    )

    with client:
        assert client.pull() == []

    assert len(retry_waits) == 1


def test_nothing_listening_is_unavailable_after_the_retries(retry_waits):
    client = PortalClient(
        base_url=f"http://127.0.0.1:{free_port()}/mobile",
        app_area="DEMO",
        api_key=DEMO_API_KEY,
        retries=2,
        sleep=retry_waits.append,
    )

    with client, pytest.raises(PortalUnavailable) as caught:
        client.pull()

    assert caught.value.status is None
    assert "ConnectError" in str(caught.value)
    assert len(retry_waits) == 1


def test_retry_after_http_date_is_seconds_from_now():
    now = 1_700_000_000.0  # 2023-11-14T22:13:20Z

    assert parse_retry_after("Tue, 14 Nov 2023 22:13:50 GMT", now=now) == 30.0
    assert parse_retry_after("Tue, 14 Nov 2023 22:13:00 GMT", now=now) == 0.0


def test_retry_after_seconds_and_junk():
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
