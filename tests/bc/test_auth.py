"""OAuth against the emulator's Entra-like token endpoint."""

from __future__ import annotations

import pytest

from packetworker.targets.bc import AuthError, BCAuth
from packetworker.targets.tokens import MemoryTokenStore


def test_client_credentials_token_is_fetched_once_and_reused(sandbox, client):
    client.companies()
    client.companies()

    assert sandbox.token_grants == ["client_credentials"]


def test_token_expired_mid_run_is_refreshed_and_the_call_succeeds(sandbox, clock, client):
    sandbox.add_item(number="1000")
    assert [i["number"] for i in client.list("items")] == ["1000"]

    clock.advance(sandbox.token_ttl + 1)  # the emulator now rejects the cached token
    numbers = [i["number"] for i in client.list("items")]

    assert numbers == ["1000"]
    assert sandbox.token_grants == ["client_credentials", "client_credentials"]
    assert [r.status for r in sandbox.requests if "/items" in r.path] == [200, 401, 200]


def test_all_tokens_revoked_forces_one_refresh_and_one_retry(sandbox, client):
    client.companies()
    sandbox.expire_tokens()

    assert len(client.companies()) == 1
    assert len(sandbox.token_grants) == 2


def test_token_close_to_expiry_is_renewed_before_use(sandbox, make_client):
    sandbox.token_ttl = 30  # shorter than the 60 s leeway: every use needs a new token
    client = make_client()

    client.companies()
    client.companies()

    assert sandbox.token_grants == ["client_credentials"] * 2
    assert all(r.status != 401 for r in sandbox.requests)


def test_refresh_token_flow_rotates_the_refresh_token(sandbox, make_client):
    first = sandbox.issue_refresh_token()
    store = MemoryTokenStore()
    auth = BCAuth(
        token_url=sandbox.token_url,
        client_id=sandbox.client_id,
        client_secret=sandbox.client_secret,
        refresh_token=first,
        store=store,
    )
    client = make_client(auth=auth)

    client.companies()
    after_first = store.load()
    sandbox.expire_tokens()
    client.companies()
    after_second = store.load()

    assert sandbox.token_grants == ["refresh_token", "refresh_token"]
    assert after_first.refresh_token not in (first, after_second.refresh_token)
    assert after_second.rotations == 2
    assert sandbox.used_refresh_tokens == [first, after_first.refresh_token]


def test_wrong_secret_raises_auth_error_without_the_secret(sandbox):
    auth = BCAuth(
        token_url=sandbox.token_url, client_id=sandbox.client_id, client_secret="s3cr3t-x"
    )

    with pytest.raises(AuthError) as info:
        auth.access_token()

    assert info.value.code == "invalid_client"
    assert info.value.transient is False
    assert "s3cr3t-x" not in str(info.value)
    assert "s3cr3t-x" not in repr(auth)
