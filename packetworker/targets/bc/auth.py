"""OAuth 2.0 against Microsoft Entra ID for the Business Central API.

`BCAuth` is an `httpx.Auth`: it adds `Authorization: Bearer ...` to each request, keeps the
access token cached until shortly before it expires (`leeway`), and on a 401 from the API
invalidates the token, obtains a new one and sends the request once more. Token requests go
through Authlib's httpx client (`OAuth2Client`), with the token endpoint given directly so the
same code runs against Entra, a BC sandbox tenant or the local emulator.

Two grants:
- client credentials (service-to-service): a new token is simply requested again;
- refresh token (delegated set-ups, obtained once via the authorization-code flow): each
  refresh may rotate the refresh token; `on_refresh_token` lets the caller persist the new one.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Generator

import httpx

with warnings.catch_warnings():
    import authlib.deprecate  # noqa: F401 - sets Authlib's "always" filter; ours goes after it

    # Authlib >= 1.7 prefers the `httpx2` fork and warns when it falls back to `httpx`, which
    # is what this project uses; the fallback is the supported, tested path here.
    warnings.filterwarnings("ignore", message="The httpx module is deprecated")
    from authlib.integrations.httpx_client import OAuth2Client, OAuthError

from packetworker.targets.bc.errors import AuthError, BCError, is_transient

DEFAULT_SCOPE = "https://api.businesscentral.dynamics.com/.default"
DEFAULT_TOKEN_URL = "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"  # noqa: S105


class BCAuth(httpx.Auth):
    """Bearer tokens for BC from Entra ID; thread-safe, refreshed before expiry and on 401."""

    def __init__(
        self,
        *,
        token_url: str,
        client_id: str,
        client_secret: str,
        scope: str = DEFAULT_SCOPE,
        refresh_token: str | None = None,
        on_refresh_token: Callable[[str], None] | None = None,
        leeway: int = 60,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.token_url = token_url
        self._secrets = tuple(s for s in (client_secret, refresh_token) if s)
        self._refresh_token = refresh_token
        self._on_refresh_token = on_refresh_token
        self._lock = threading.Lock()
        self._token: dict | None = None
        self.fetches = 0  # how many tokens were obtained; handy for health output and tests
        self._oauth = OAuth2Client(
            client_id=client_id,
            client_secret=client_secret,
            # Entra documents the secret in the form body; Basic auth works too but is rarer.
            token_endpoint_auth_method="client_secret_post",  # noqa: S106
            scope=scope,
            token_endpoint=token_url,
            grant_type="refresh_token" if refresh_token else "client_credentials",
            leeway=leeway,
            timeout=timeout,
            transport=transport,
        )

    @classmethod
    def client_credentials(
        cls, *, tenant: str, client_id: str, client_secret: str, **options
    ) -> BCAuth:
        """Service-to-service auth; `token_url` defaults to the tenant's Entra endpoint."""
        token_url = options.pop("token_url", None) or DEFAULT_TOKEN_URL
        return cls(
            token_url=token_url.format(tenant=tenant),
            client_id=client_id,
            client_secret=client_secret,
            **options,
        )

    @property
    def is_delegated(self) -> bool:
        return self._refresh_token is not None

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

    def _fetch(self) -> dict:
        try:
            if self._refresh_token is not None:
                token = self._oauth.refresh_token(self.token_url, refresh_token=self._refresh_token)
            else:
                token = self._oauth.fetch_token(self.token_url, grant_type="client_credentials")
        except OAuthError as exc:
            raise AuthError(
                400, exc.error or "invalid_grant", self._clean(exc.description), transient=False
            ) from None
        except httpx.HTTPStatusError as exc:
            status = exc.response.status_code
            transient = is_transient(status, None)
            raise BCError(
                status, "TokenEndpoint", "token endpoint failed", transient=transient
            ) from None
        self.fetches += 1
        rotated = token.get("refresh_token")
        if self._refresh_token is not None and rotated and rotated != self._refresh_token:
            self._refresh_token = rotated
            self._secrets = (*self._secrets, rotated)
            if self._on_refresh_token is not None:
                self._on_refresh_token(rotated)
        self._token = dict(token)
        return self._token

    def _clean(self, text: str | None) -> str:
        text = text or ""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def __repr__(self) -> str:  # never show secrets or tokens
        kind = "refresh_token" if self.is_delegated else "client_credentials"
        return f"<BCAuth {kind} token_url={self.token_url!r}>"
