"""OAuth 2.0 against Microsoft Entra ID (v2.0 endpoints), shared by Business Central and
Dataverse.

`EntraAuth` is an `httpx.Auth`: it adds `Authorization: Bearer ...` to each request, keeps the
access token cached until shortly before it expires (`leeway`), and on a 401 from the API
invalidates the token, obtains a new one and sends the request once more. Token requests go
through Authlib's httpx client (`OAuth2Client`), with the token endpoint given directly so the
same code runs against Entra, a sandbox tenant or the local emulators.

Two grants:
- client credentials (service-to-service): a new token is simply requested again;
- refresh token (delegated set-ups, obtained by the authorization-code sign-in below). Each
  refresh answer carries a new refresh token that replaces the old one; it is written to the
  `TokenStore` (compare-and-set, under the store's cross-process lock) *before* the new
  access token is used, so a crash never leaves only a spent token behind
  (business-central.md §1.3.1).

Authorization-code sign-in (`packetworker bc login`): `start_sign_in` builds the authorize
URL (PKCE S256, `state`, `offline_access`), `code_from_redirect` checks the redirect and
`redeem_code` exchanges the code for tokens (Entra's auth-code flow page, entra-docs
`docs/identity-platform/v2-oauth2-auth-code-flow.md`).

Subclasses say which errors to raise (`_refused`, `_failed`, `_unreachable`).
"""

from __future__ import annotations

import logging
import secrets
import threading
import warnings
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

import httpx

from packetworker.errors import PacketworkerError
from packetworker.http import is_transient_status
from packetworker.targets.tokens import (
    MemoryTokenStore,
    StoredToken,
    TokenStore,
    digest,
    utcnow,
)

with warnings.catch_warnings():
    import authlib.deprecate  # noqa: F401 - sets Authlib's "always" filter; ours goes after it

    # Authlib >= 1.7 prefers the `httpx2` fork and warns when it falls back to `httpx`, which
    # is what this project uses; the fallback is the supported, tested path here.
    warnings.filterwarnings("ignore", message="The httpx module is deprecated")
    from authlib.integrations.httpx_client import OAuth2Client, OAuthError

logger = logging.getLogger(__name__)

DEFAULT_TOKEN_URL = "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"  # noqa: S105
DEFAULT_AUTHORIZE_URL = "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/authorize"
# Entra returns a refresh token only when this scope was requested (auth-code flow page).
OFFLINE_ACCESS = "offline_access"


class SignInError(ValueError, PacketworkerError):
    """The authorization-code sign-in failed: refused, wrong state, or no code."""


class EntraAuth(httpx.Auth):
    """Bearer tokens from Entra ID; thread-safe, refreshed before expiry and on 401.

    Delegated when `store` is given: the refresh token is read from it (seeded from
    `refresh_token`, e.g. the BC_REFRESH_TOKEN setting, when the store has none or the
    setting changed) and every rotation is written back to it.
    """

    def __init__(
        self,
        *,
        token_url: str,
        client_id: str,
        client_secret: str,
        scope: str,
        refresh_token: str | None = None,
        store: TokenStore | None = None,
        leeway: int = 60,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.token_url = token_url
        self._secrets = tuple(s for s in (client_secret, refresh_token) if s)
        self._live: tuple[str, ...] = ()  # the refresh tokens of the last refresh
        self._seed = refresh_token or ""
        if self._seed and store is None:
            store = MemoryTokenStore()
        self.store = store
        self._clock = clock
        self._lock = threading.Lock()
        self._token: dict | None = None
        self.fetches = 0  # how many tokens were obtained; handy for health output and tests
        self._oauth = OAuth2Client(
            client_id=client_id,
            client_secret=client_secret or None,
            # Entra documents the secret in the form body; Basic auth works too but is rarer.
            token_endpoint_auth_method="client_secret_post" if client_secret else "none",
            scope=scope,
            token_endpoint=token_url,
            leeway=leeway,
            timeout=timeout,
            transport=transport,
        )

    @property
    def is_delegated(self) -> bool:
        return self.store is not None

    @property
    def grant(self) -> str:
        return "refresh_token" if self.is_delegated else "client_credentials"

    def stored(self) -> StoredToken | None:
        """The stored refresh token's record (delegated set-ups), or None."""
        return self.store.load() if self.store is not None else None

    def access_token(self) -> str:
        """A valid access token, fetching a new one when none is cached or it nearly expired."""
        with self._lock:
            token = self._token
            if token is None or self._oauth.token.is_expired(leeway=self._oauth.leeway):
                token = self._fetch()
            return token["access_token"]

    def invalidate(self, access_token: str) -> None:
        """Forget `access_token` (the API refused it); a no-op if it was already replaced."""
        with self._lock:
            if self._token is not None and self._token.get("access_token") == access_token:
                self._token = None

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self.access_token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            # Tokens can be revoked or expire early (clock skew, policy change): one fresh
            # token and one more try; a second 401 is a real authorization problem.
            self.invalidate(token)
            request.headers["Authorization"] = f"Bearer {self.access_token()}"
            yield request

    def close(self) -> None:
        self._oauth.close()

    # --- token requests ------------------------------------------------------------------

    def _fetch(self) -> dict:
        if self.store is None:
            token = self._request(lambda: self._oauth.fetch_token(grant_type="client_credentials"))
        else:
            with self.store.lock():
                token = self._refresh(self.store)
        self.fetches += 1
        self._token = dict(token)
        return self._token

    def _refresh(self, store: TokenStore) -> dict:
        current = self._current_refresh_token(store)
        token = self._request(lambda: self._oauth.refresh_token(refresh_token=current))
        rotated = token.get("refresh_token")
        if rotated and rotated != current:
            self._live = (current, rotated)
            if not store.rotate(current, rotated):
                # Someone replaced the record meanwhile (a new sign-in): theirs stays.
                logger.warning("The stored refresh token of %s changed meanwhile.", store.name)
        return token

    def _current_refresh_token(self, store: TokenStore) -> str:
        stored = store.load()
        seed = self._seed
        if seed and (stored is None or stored.setting_digest != digest(seed)):
            # First use of this setting value (or it changed): it replaces the stored one.
            stored = StoredToken(seed, "setting", self._clock(), setting_digest=digest(seed))
            store.save(stored)
        if stored is None:
            raise self._refused(
                "no_refresh_token",
                f"no refresh token stored for {store.name}: sign in with `packetworker bc login`",
            )
        self._live = (stored.refresh_token,)
        return stored.refresh_token

    def _request(self, call: Callable[[], dict]) -> dict:
        try:
            return call()
        except OAuthError as exc:
            error = exc.error or "invalid_grant"
            raise self._refused(error, self._clean(exc.description)) from None
        except httpx.HTTPStatusError as exc:
            status = exc.response.status_code
            raise self._failed(status, is_transient_status(status)) from None
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None

    # --- errors (subclasses raise their own types) ---------------------------------------

    def _refused(self, code: str, description: str) -> Exception:
        """The token endpoint refused the request (credentials, grant, consent)."""
        return SignInError(f"{code}: {description}")

    def _failed(self, status: int, transient: bool) -> Exception:
        """The token endpoint answered an HTTP error without an OAuth error body."""
        return SignInError(f"token endpoint failed with HTTP {status}")

    def _unreachable(self, exc: httpx.TransportError) -> Exception:
        return exc

    def _clean(self, text: str | None) -> str:
        text = text or ""
        for secret in (*self._secrets, *self._live):
            text = text.replace(secret, "***")
        return text

    def __repr__(self) -> str:  # never show secrets or tokens
        return f"<{type(self).__name__} {self.grant} token_url={self.token_url!r}>"


# --- authorization-code sign-in ----------------------------------------------------------


def with_offline_access(scope: str) -> str:
    """`scope` plus `offline_access` (needed for a refresh token), once."""
    parts = scope.split()
    return " ".join(parts if OFFLINE_ACCESS in parts else [*parts, OFFLINE_ACCESS])


@dataclass(frozen=True)
class SignIn:
    """One sign-in in progress: the URL to open and what the redirect must match."""

    url: str
    redirect_uri: str
    state: str = field(repr=False)
    code_verifier: str = field(repr=False)


def start_sign_in(
    *, authorize_url: str, client_id: str, redirect_uri: str, scope: str, prompt: str | None = None
) -> SignIn:
    """The authorize URL with `response_type=code`, `response_mode=query`, a random `state`
    and a PKCE S256 challenge, asking for `scope` plus `offline_access`."""
    verifier = secrets.token_urlsafe(64)  # 86 characters: RFC 7636 wants 43..128
    state = secrets.token_urlsafe(24)
    client = OAuth2Client(
        client_id=client_id,
        scope=with_offline_access(scope),
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
    )
    extra = {"response_mode": "query"}
    if prompt:
        extra["prompt"] = prompt
    with client:
        url, _ = client.create_authorization_url(
            authorize_url, state=state, code_verifier=verifier, **extra
        )
    return SignIn(url=url, redirect_uri=redirect_uri, state=state, code_verifier=verifier)


def code_from_redirect(sign_in: SignIn, redirected: str) -> str:
    """The `code` of the URL Entra redirected the browser to (or just its query string);
    `SignInError` when it carries an error, another sign-in's `state`, or no code."""
    query = urlsplit(redirected).query if "://" in redirected else redirected.lstrip("?")
    params = {k: v[0] for k, v in parse_qs(query).items()}
    if "error" in params:
        description = params.get("error_description", "").splitlines()[0:1]
        detail = f": {description[0]}" if description else ""
        raise SignInError(f"sign-in refused ({params['error']}){detail}")
    if not secrets.compare_digest(params.get("state", ""), sign_in.state):
        raise SignInError("the redirect belongs to another sign-in (state differs); start again")
    code = params.get("code", "")
    if not code:
        raise SignInError("the redirect carries no authorization code")
    return code


def redeem_code(
    auth: EntraAuth, sign_in: SignIn, code: str, *, origin: str = "login"
) -> StoredToken:
    """Exchange `code` at the token endpoint and store the refresh token it returns (in place
    of any stored one). `auth` must be delegated (have a store)."""
    if auth.store is None:
        raise ValueError("redeem_code needs an EntraAuth with a token store")
    oauth = auth._oauth
    token = auth._request(
        lambda: oauth.fetch_token(
            grant_type="authorization_code",
            code=code,
            redirect_uri=sign_in.redirect_uri,
            code_verifier=sign_in.code_verifier,
        )
    )
    refresh = token.get("refresh_token")
    if not refresh:
        raise SignInError("Entra returned no refresh token: was offline_access granted?")
    stored = StoredToken(
        refresh,
        origin,
        auth._clock(),
        setting_digest=digest(auth._seed),  # type: ignore[arg-type]
    )
    auth.store.save(stored)
    with auth._lock:
        auth._token = dict(token)
        auth.fetches += 1
    return stored
