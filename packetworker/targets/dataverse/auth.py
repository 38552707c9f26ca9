"""OAuth 2.0 client credentials for Dataverse (Microsoft Entra ID).

The token logic is the Business Central client's (`packetworker.targets.bc.auth.BCAuth`,
Authlib's httpx `OAuth2Client` with an overridable token URL, cached until shortly before
expiry, renewed once on a 401); only the scope and the error types differ. Dataverse wants
the scope `<environment URL>/.default`.
"""

from __future__ import annotations

import httpx

from packetworker.targets.bc.auth import BCAuth
from packetworker.targets.bc.errors import BCError
from packetworker.targets.dataverse.errors import DataverseAuthError, DataverseError

DEFAULT_TOKEN_URL = "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"  # noqa: S105


def default_scope(environment_url: str) -> str:
    """`https://org.crm4.dynamics.com/.default` for an environment URL."""
    return environment_url.rstrip("/") + "/.default"


class DataverseAuth(BCAuth):
    """Bearer tokens for one Dataverse environment; thread-safe, renewed before expiry."""

    def __init__(
        self,
        *,
        environment_url: str,
        tenant: str,
        client_id: str,
        client_secret: str,
        token_url: str | None = None,
        scope: str | None = None,
        leeway: int = 60,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(
            token_url=(token_url or DEFAULT_TOKEN_URL).format(tenant=tenant),
            client_id=client_id,
            client_secret=client_secret,
            scope=scope or default_scope(environment_url),
            leeway=leeway,
            timeout=timeout,
            transport=transport,
        )

    def _fetch(self) -> dict:
        try:
            return super()._fetch()
        except BCError as exc:
            kind = DataverseError if exc.transient else DataverseAuthError
            raise kind(
                exc.status,
                exc.code,
                f"token request failed: {exc.bc_message}",
                transient=exc.transient,
            ) from None
        except httpx.TransportError as exc:
            raise DataverseError(
                0, "", f"token endpoint unreachable: {type(exc).__name__}", transient=True
            ) from None

    def __repr__(self) -> str:  # never show secrets or tokens
        return f"<DataverseAuth token_url={self.token_url!r}>"
