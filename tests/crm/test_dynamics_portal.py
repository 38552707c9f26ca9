"""DynamicsPortalClient against the portal proxy emulator over real HTTP on 127.0.0.1."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from packetworker.settings import Settings
from packetworker.targets.dynamics_portal import (
    PATH_PREFIX,
    DuplicateRecord,
    DynamicsPortalAuthError,
    DynamicsPortalClient,
    InvalidRequest,
    RecordNotFound,
    Throttled,
)

CONTACTS = "/api/data/v9.2/contacts"


class FakeNow:
    """The client's wall clock, moved by tests (the emulator's clock moves with it)."""

    def __init__(self, emulator) -> None:
        self.emulator = emulator

    def __call__(self) -> datetime:
        return datetime.fromtimestamp(self.emulator.clock.now(), UTC)

    def advance(self, seconds: float) -> None:
        self.emulator.clock.advance(seconds)


@pytest.fixture
def now(portal_proxy) -> FakeNow:
    return FakeNow(portal_proxy)


@pytest.fixture
def client(portal_proxy, fake_time, now):
    with DynamicsPortalClient(
        portal_proxy.url,
        client_id="eircodex-service-account",
        scope="Dynamics365.ReadWrite",
        renew_margin=60,
        sleep=fake_time.sleep,
        now=now,
    ) as client:
        yield client


def test_authenticate_returns_a_session_with_expiry_and_tenant(portal_proxy, client, now):
    session = client.authenticate()

    assert session.tenant == "hlf-ireland.crm4.dynamics.com"
    assert session.expires_at == (now() + timedelta(seconds=3600)).replace(microsecond=0)
    assert session.token not in repr(session)
    assert portal_proxy.authentications == [
        {"client_id": "eircodex-service-account", "scope": "Dynamics365.ReadWrite"}
    ]


def test_paths_carry_the_contracts_doubled_prefix(portal_proxy, client):
    client.create_record(CONTACTS, {"lastname": "Brennan"})

    assert [r.path for r in portal_proxy.requests] == [
        f"{PATH_PREFIX}/authenticate",
        f"{PATH_PREFIX}/records",
    ]
    assert PATH_PREFIX == "/api/v1/dynamics-portal/api/v1/dynamics-portal"


def test_first_call_authenticates_and_later_calls_reuse_the_session(portal_proxy, client):
    client.create_record(CONTACTS, {"lastname": "A"})
    client.create_record(CONTACTS, {"lastname": "B"})

    assert len(portal_proxy.authentications) == 1


def test_session_is_renewed_before_it_expires(portal_proxy, client, now):
    client.create_record(CONTACTS, {"lastname": "A"})
    now.advance(3600 - 30)  # inside the 60 s renewal margin, still valid on the server

    client.create_record(CONTACTS, {"lastname": "B"})

    assert len(portal_proxy.authentications) == 2
    assert len(portal_proxy.requests_to("POST", "/records")) == 2  # no refused request


def test_session_dropped_by_the_proxy_is_renewed_once_after_a_401(portal_proxy, client):
    client.create_record(CONTACTS, {"lastname": "A"})
    portal_proxy.expire_sessions()

    client.create_record(CONTACTS, {"lastname": "B"})

    assert len(portal_proxy.authentications) == 2
    assert sorted(r["fields"]["lastname"] for r in portal_proxy.records.values()) == ["A", "B"]


def test_unknown_scope_raises_auth_error(portal_proxy, fake_time):
    with (
        DynamicsPortalClient(
            portal_proxy.url,
            client_id="eircodex-service-account",
            scope="Other",
            sleep=fake_time.sleep,
        ) as client,
        pytest.raises(DynamicsPortalAuthError) as caught,
    ):
        client.create_record(CONTACTS, {"lastname": "A"})

    assert (caught.value.status, caught.value.transient) == (401, False)
    assert portal_proxy.records == {}


def test_create_get_update_delete_round_trip(portal_proxy, client):
    created = client.create_record(CONTACTS, {"firstname": "Aoife", "lastname": "Brennan"})
    record_id = created["dynamics_record_id"]

    updated = client.update_record(record_id, CONTACTS, {"new_mentor_status": "active"})
    fetched = client.get_record(record_id)
    deleted = client.delete_record(record_id, CONTACTS)

    assert (created["status"], updated["status"]) == ("created", "updated")
    assert fetched == {
        "dynamics_record_id": record_id,
        "firstname": "Aoife",
        "lastname": "Brennan",
        "new_mentor_status": "active",
    }
    assert deleted["deleted"] is True
    assert portal_proxy.records == {}
    [delete] = portal_proxy.requests_to("DELETE")
    assert delete.json() == {"endpoint": CONTACTS}


def test_missing_record_raises_record_not_found(client):
    with pytest.raises(RecordNotFound):
        client.get_record("a1b2c3d4-e5f6-7890-abcd-ef1234567890")


def test_invalid_endpoint_raises_invalid_request(portal_proxy, client):
    with pytest.raises(InvalidRequest) as caught:
        client.create_record("contacts", {"lastname": "A"})

    assert caught.value.status == 400
    assert portal_proxy.records == {}


def test_by_default_the_proxy_refuses_no_duplicate(portal_proxy, client):
    client.create_record(CONTACTS, {"lastname": "A", "emailaddress1": "a@hlf.ie"})

    client.create_record(CONTACTS, {"lastname": "B", "emailaddress1": "A@hlf.ie"})

    assert len(portal_proxy.records) == 2


@pytest.mark.parametrize("status", [409, 500])
def test_a_duplicate_rule_surfaces_as_duplicate_record_whatever_its_status(
    portal_proxy, client, status
):
    portal_proxy.unique_columns = ("emailaddress1",)
    portal_proxy.duplicate_status = status
    client.create_record(CONTACTS, {"lastname": "A", "emailaddress1": "a@hlf.ie"})

    with pytest.raises(DuplicateRecord) as caught:
        client.create_record(CONTACTS, {"lastname": "B", "emailaddress1": "A@hlf.ie"})

    assert (caught.value.status, caught.value.transient) == (status, False)
    assert len(portal_proxy.records) == 1


def test_throttling_is_ridden_out_honouring_retry_after(portal_proxy, client, fake_time):
    portal_proxy.faults.storm(2, retry_after=2)

    client.create_record(CONTACTS, {"lastname": "A"})

    assert fake_time.sleeps == [2.0, 2.0]
    assert len(portal_proxy.records) == 1


def test_retry_after_beyond_the_longest_wait_gives_up_at_once(portal_proxy, client, fake_time):
    portal_proxy.faults.storm(2, retry_after=600)

    with pytest.raises(Throttled) as caught:
        client.get_record("a1b2c3d4-e5f6-7890-abcd-ef1234567890")

    assert (caught.value.transient, caught.value.retry_after) == (True, 600.0)
    assert fake_time.sleeps == []


def test_client_is_built_from_settings(portal_proxy):
    settings = Settings(
        _env_file=None,
        dynamics_portal_url=portal_proxy.url,
        dynamics_portal_client_id="eircodex-service-account",
    )

    with DynamicsPortalClient.from_settings(settings) as client:
        client.create_record(CONTACTS, {"lastname": "A"})

    assert portal_proxy.authentications == [
        {"client_id": "eircodex-service-account", "scope": "Dynamics365.ReadWrite"}
    ]
