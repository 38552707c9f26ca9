"""OAuth 2.0 client credentials for Dataverse (Microsoft Entra ID).

The token logic is the shared Entra client's (`packetworker.targets.entra.EntraAuth`:
Authlib's httpx `OAuth2Client` with an overridable token URL, cached until shortly before
expiry, renewed once on a 401); only the scope and the error types differ. Dataverse wants
the scope `<environment URL>/.default`.
"""

from __future__ import annotations

from typing import Any

import httpx

from packetworker.targets.dataverse.errors import DataverseAuthError, DataverseError
from packetworker.targets.entra import DEFAULT_TOKEN_URL, EntraAuth

__all__ = ["DEFAULT_TOKEN_URL", "DataverseAuth", "default_scope"]


def default_scope(environment_url: str) -> str:
    """`https://org.crm4.dynamics.com/.default` for an environment URL."""
    return environment_url.rstrip("/") + "/.default"


class DataverseAuth(EntraAuth):
    """Bearer tokens for one Dataverse environment; thread-safe, renewed before expiry."""

    def __init__(
        self,
        *,
        environment_url: str,
        tenant: str,
        token_url: str | None = None,
        scope: str | None = None,
        **options: Any,
    ) -> None:
        """`options` are `EntraAuth`'s (client id and secret, leeway, timeout, transport)."""
        super().__init__(
            token_url=(token_url or DEFAULT_TOKEN_URL).format(tenant=tenant),
            scope=scope or default_scope(environment_url),
            **options,
        )

    def _refused(self, code: str, description: str) -> Exception:
        return DataverseAuthError(
            400, code, f"token request failed: {description}", transient=False
        )

    def _failed(self, status: int, transient: bool) -> Exception:
        kind = DataverseError if transient else DataverseAuthError
        return kind(
            status,
            "TokenEndpoint",
            "token request failed: token endpoint failed",
            transient=transient,
        )

    def _unreachable(self, exc: httpx.TransportError) -> Exception:
        return DataverseError(
            0, "", f"token endpoint unreachable: {type(exc).__name__}", transient=True
        )
