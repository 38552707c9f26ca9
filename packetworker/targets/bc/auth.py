"""OAuth 2.0 for the Business Central API: the shared Entra client (`targets/entra.py`) with
BC's scope, BC's error types and the settings that choose the grant.

Grants (`BC_AUTH_GRANT`): `client_credentials` (service-to-service), or
`authorization_code` (delegated: a BC user signs in once with `packetworker bc login`; the
refresh token then lives in Redis and every rotation replaces it). `auto` is
`authorization_code` when `BC_REFRESH_TOKEN` is set, else `client_credentials`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

from packetworker.targets.bc.errors import AuthError, BCError
from packetworker.targets.entra import DEFAULT_TOKEN_URL, EntraAuth
from packetworker.targets.tokens import RedisTokenStore, TokenStore

if TYPE_CHECKING:
    from packetworker.settings import Settings

DEFAULT_SCOPE = "https://api.businesscentral.dynamics.com/.default"

__all__ = ["DEFAULT_SCOPE", "DEFAULT_TOKEN_URL", "BCAuth", "is_delegated", "token_store"]


def is_delegated(settings: Settings) -> bool:
    """Whether the settings ask for the delegated (authorization-code) grant."""
    grant = settings.bc_auth_grant
    if grant == "auto":
        return bool(settings.bc_refresh_token.get_secret_value())
    return grant == "authorization_code"


def token_store(settings: Settings) -> RedisTokenStore:
    """The Redis record of BC's refresh token for this tenant and app."""
    from packetworker.redis_client import redis_for

    name = f"bc:{settings.bc_tenant}:{settings.bc_client_id}"
    return RedisTokenStore(redis_for(settings), settings.ledger_namespace, name)


class BCAuth(EntraAuth):
    """Bearer tokens for BC from Entra ID; thread-safe, refreshed before expiry and on 401."""

    def __init__(self, *, scope: str = DEFAULT_SCOPE, **options) -> None:
        super().__init__(scope=scope, **options)

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

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        store: TokenStore | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30.0,
        delegated: bool | None = None,
    ) -> BCAuth:
        """Auth configured by the `bc_*` settings; delegated set-ups (`is_delegated`, or
        `delegated=True` for the sign-in itself) keep their refresh token in Redis
        (`token_store`) unless `store` is given."""
        delegated = is_delegated(settings) if delegated is None else delegated
        if delegated and store is None:
            store = token_store(settings)
        return cls(
            token_url=settings.bc_token_url.format(tenant=settings.bc_tenant),
            client_id=settings.bc_client_id,
            client_secret=settings.bc_client_secret.get_secret_value(),
            scope=settings.bc_scope,
            refresh_token=settings.bc_refresh_token.get_secret_value() or None,
            store=store if delegated else None,
            timeout=timeout,
            transport=transport,
        )

    def _refused(self, code: str, description: str) -> Exception:
        if code == "invalid_grant" and self.is_delegated:
            description += " (sign in again: packetworker bc login)"
        return AuthError(400, code, description, transient=False)

    def _failed(self, status: int, transient: bool) -> Exception:
        return BCError(status, "TokenEndpoint", "token endpoint failed", transient=transient)
