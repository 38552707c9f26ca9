"""`packetworker bc login` end to end, and delegated tokens kept in Redis.

The login runs as a real `packetworker` process against the BC emulator's authorize and token
endpoints; the test plays the browser (follows the authorize URL, which the emulator
redirects to the login's listener on the redirect URI, or pastes the redirected URL).
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
import redis
from pydantic import SecretStr
from support.waiting import free_port

from packetworker.sandbox.bc import BCSandbox
from packetworker.settings import Settings
from packetworker.targets.bc import AuthError, BCAuth, BCClient
from packetworker.targets.bc.auth import token_store
from packetworker.targets.bc.checks import bc_checks
from packetworker.targets.entra import code_from_redirect, redeem_code, start_sign_in
from packetworker.targets.tokens import RedisTokenStore, StoredToken

SECRET = "bc-login-secret-7e1f"


@pytest.fixture
def bc() -> Iterator[BCSandbox]:
    with BCSandbox(client_secret=SECRET) as sandbox:
        yield sandbox


@pytest.fixture
def namespace(redis_url) -> Iterator[str]:
    name = f"test-bclogin-{uuid.uuid4().hex[:8]}"
    yield name
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(f"{name}:*"):
        client.delete(key)
    client.close()


@pytest.fixture
def redirect_uri(bc) -> str:
    uri = f"http://localhost:{free_port()}/bc/callback"
    bc.register_redirect_uri(uri)
    return uri


@pytest.fixture
def settings(bc, redis_url, namespace, redirect_uri) -> Settings:
    return Settings(
        _env_file=None,
        redis_url=redis_url,
        ledger_namespace=namespace,
        bc_tenant=bc.tenant,
        bc_client_id=bc.client_id,
        bc_client_secret=SECRET,
        bc_token_url=bc.token_url,
        bc_authorize_url=bc.authorize_url,
        bc_api_url=bc.api_url,
        bc_company="CRONUS",
        bc_redirect_uri=redirect_uri,
        bc_auth_grant="authorization_code",
    )


def environment(settings: Settings, tmp_path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BC_", "LEDGER_"))}
    env.update(
        {
            "REDIS_URL": settings.redis_url,
            "LEDGER_NAMESPACE": settings.ledger_namespace,
            "BC_TENANT": settings.bc_tenant,
            "BC_CLIENT_ID": settings.bc_client_id,
            "BC_CLIENT_SECRET": SECRET,
            "BC_TOKEN_URL": settings.bc_token_url,
            "BC_AUTHORIZE_URL": settings.bc_authorize_url,
            "BC_REDIRECT_URI": settings.bc_redirect_uri,
            "PYTHONUNBUFFERED": "1",
            "COLUMNS": "250",
        }
    )
    return env


class Login:
    """A running `packetworker bc login`."""

    def __init__(self, settings: Settings, tmp_path, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "packetworker", "bc", "login", *args],
            env=environment(settings, tmp_path),
            cwd=tmp_path,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.printed: list[str] = []

    def authorize_url(self, prefix: str) -> str:
        """The authorize URL the command printed (reads its output up to it)."""
        for line in self.process.stdout:
            self.printed.append(line)
            if line.startswith(prefix):
                return line.strip()
        raise AssertionError(f"no authorize URL printed: {''.join(self.printed)}")

    def finish(self, pasted: str | None = None) -> tuple[int, str]:
        out, err = self.process.communicate(input=pasted and pasted + "\n", timeout=60)
        return self.process.returncode, "".join(self.printed) + out + err


def stored(settings: Settings) -> StoredToken | None:
    return token_store(settings).load()


def test_login_receives_the_code_on_the_redirect_uri_and_the_worker_uses_the_stored_token(
    bc, settings, tmp_path
):
    login = Login(settings, tmp_path)
    url = login.authorize_url(bc.authorize_url)
    query = parse_qs(urlsplit(url).query)
    assert "offline_access" in query["scope"][0].split()
    assert query["code_challenge_method"] == ["S256"]
    assert query["state"][0]
    assert query["redirect_uri"] == [settings.bc_redirect_uri]

    browser = httpx.get(url, follow_redirects=True, timeout=10)  # emulator → listener
    code, output = login.finish()

    assert browser.status_code == 200
    assert "Signed in" in browser.text
    assert code == 0, output
    token = stored(settings)
    assert token is not None
    assert token.origin == "login"
    assert token.refresh_token not in output
    assert bc.token_grants == ["authorization_code"]

    # A worker (its own process would build the same client) uses and rotates it.
    with BCClient.from_settings(settings) as worker:
        assert [c["name"] for c in worker.companies()] == ["CRONUS"]
    rotated = stored(settings)
    assert bc.token_grants == ["authorization_code", "refresh_token"]
    assert rotated.refresh_token != token.refresh_token
    assert rotated.rotations == 1
    assert rotated.refreshed_at is not None

    # After a restart the stored (rotated) token still works; the spent one is refused.
    with BCClient.from_settings(settings) as restarted:
        assert len(restarted.companies()) == 1
    with pytest.raises(AuthError) as refused:
        BCAuth(
            token_url=bc.token_url,
            client_id=bc.client_id,
            client_secret=SECRET,
            refresh_token=token.refresh_token,
        ).access_token()
    assert refused.value.code == "invalid_grant"


def test_login_takes_a_pasted_redirect_url(bc, settings, tmp_path):
    login = Login(settings, tmp_path, "--paste")
    url = login.authorize_url(bc.authorize_url)
    redirected = httpx.get(url, follow_redirects=False, timeout=10).headers["location"]

    code, output = login.finish(pasted=redirected)

    assert code == 0, output
    assert stored(settings).origin == "login"


def test_a_redirect_of_another_sign_in_is_refused_and_nothing_is_stored(bc, settings, tmp_path):
    login = Login(settings, tmp_path, "--paste")
    url = login.authorize_url(bc.authorize_url)
    redirected = httpx.get(url, follow_redirects=False, timeout=10).headers["location"]
    params = parse_qs(urlsplit(redirected).query)
    forged = f"{settings.bc_redirect_uri}?" + urlencode(
        {"code": params["code"][0], "state": "someone-elses-state"}
    )

    code, output = login.finish(pasted=forged)

    assert code == 1
    assert "state differs" in output
    assert stored(settings) is None
    assert bc.token_grants == []


def test_a_refused_consent_fails_the_login_and_stores_nothing(bc, settings, tmp_path):
    bc.sign_in_error = "access_denied"
    login = Login(settings, tmp_path)
    url = login.authorize_url(bc.authorize_url)

    httpx.get(url, follow_redirects=True, timeout=10)
    code, output = login.finish()

    assert code == 1
    assert "access_denied" in output
    assert stored(settings) is None


def sign_in(bc: BCSandbox, settings: Settings, store) -> tuple[BCAuth, str]:
    """Sign in in process (as `bc login` does): the auth and the stored refresh token."""
    auth = BCAuth.from_settings(settings, store=store)
    started = start_sign_in(
        authorize_url=bc.authorize_url,
        client_id=bc.client_id,
        redirect_uri=settings.bc_redirect_uri,
        scope=settings.bc_scope,
    )
    redirected = httpx.get(started.url, follow_redirects=False, timeout=10).headers["location"]
    code = code_from_redirect(started, redirected)
    return auth, redeem_code(auth, started, code).refresh_token


def test_an_authorization_code_is_redeemed_only_once(bc, settings):
    auth = BCAuth.from_settings(settings, store=token_store(settings))
    started = start_sign_in(
        authorize_url=bc.authorize_url,
        client_id=bc.client_id,
        redirect_uri=settings.bc_redirect_uri,
        scope=settings.bc_scope,
    )
    redirected = httpx.get(started.url, follow_redirects=False, timeout=10).headers["location"]
    code = code_from_redirect(started, redirected)
    redeem_code(auth, started, code)

    with pytest.raises(AuthError) as again:
        redeem_code(auth, started, code)

    assert "AADSTS54005" in again.value.bc_message


def test_workers_sharing_the_stored_token_never_spend_a_used_one(bc, settings):
    # Two processes: each its own auth and its own connection to the same Redis record.
    first, _ = sign_in(bc, settings, token_store(settings))
    second = BCAuth.from_settings(settings, store=token_store(settings))

    for _ in range(3):
        bc.expire_tokens()
        first.invalidate(first.access_token())
        second.invalidate(second.access_token())
        first.access_token()
        second.access_token()

    # Every refresh used the token the other had just stored: none was refused.
    refreshes = bc.token_grants.count("refresh_token")
    assert refreshes >= 5
    assert stored(settings).rotations == refreshes


def test_a_new_refresh_token_setting_replaces_the_stored_one(bc, settings):
    store = token_store(settings)
    sign_in(bc, settings, store)
    given = bc.issue_refresh_token()
    configured = settings.model_copy(update={"bc_refresh_token": SecretStr(given)})

    BCAuth.from_settings(configured, store=store).access_token()

    token = store.load()
    assert token.origin == "setting"
    assert given in bc.used_refresh_tokens
    # The same setting on the next start does not override what rotated since.
    BCAuth.from_settings(configured, store=store).access_token()
    assert store.load().rotations == 2


def test_check_reports_how_the_token_was_obtained_and_when_it_was_last_refreshed(bc, settings):
    store = RedisTokenStore(
        redis.Redis.from_url(settings.redis_url), settings.ledger_namespace, store_name(settings)
    )
    store.save(
        StoredToken(
            bc.issue_refresh_token(),
            "login",
            obtained_at=datetime(2026, 7, 1, 9, 30, tzinfo=UTC),
            refreshed_at=datetime(2026, 7, 2, 14, 5, tzinfo=UTC),
        )
    )

    row = next(bc_checks(settings))

    assert row.status == "ok", row.detail
    assert "authorization code" in row.detail
    assert "signed in with `packetworker bc login`" in row.detail
    assert "on 2026-07-01 09:30:00 UTC; last refreshed 2026-07-02 14:05:00 UTC" in row.detail


def test_check_without_a_stored_token_says_to_sign_in(settings):
    row = next(bc_checks(settings))

    assert row.status == "fail"
    assert "packetworker bc login" in row.detail


def store_name(settings: Settings) -> str:
    return token_store(settings).name
