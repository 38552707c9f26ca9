"""Dataverse's preflight checks (`packetworker check`), live and read-only.

In order, each needing the one before: the app registration gets a token; `WhoAmI` answers
(the app user exists in the environment); the org has what the mapping writes and the
alternate key it relies on (`prerequisites.verify_org`), one row per item.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx

from packetworker.check_results import PROBE_TIMEOUT, CheckResult, describe_error, fail, ok, skip
from packetworker.settings import Settings
from packetworker.targets.dataverse.auth import DataverseAuth
from packetworker.targets.dataverse.client import DataverseClient
from packetworker.targets.dataverse.errors import DataverseError
from packetworker.targets.dataverse.prerequisites import verify_org

PART = "Dataverse"


def dataverse_checks(
    settings: Settings, *, transport: httpx.BaseTransport | None = None
) -> Iterator[CheckResult]:
    """Token, `WhoAmI`, org prerequisites."""
    auth = DataverseAuth(
        environment_url=settings.dataverse_url,
        tenant=settings.dataverse_tenant,
        client_id=settings.dataverse_client_id,
        client_secret=settings.dataverse_client_secret.get_secret_value(),
        token_url=settings.dataverse_token_url or None,
        transport=transport,
    )
    client = DataverseClient(
        settings.dataverse_url, auth=auth, timeout=PROBE_TIMEOUT, attempts=2, transport=transport
    )
    with client:
        try:
            auth.access_token()
        except (DataverseError, httpx.HTTPError) as exc:
            yield fail(
                f"{PART} token",
                f"no token from {auth.token_url} ({describe_error(exc)}); check "
                "DATAVERSE_TENANT, DATAVERSE_CLIENT_ID and DATAVERSE_CLIENT_SECRET",
            )
            yield skip(f"{PART} user", "not checked: needs a token")
            yield skip(f"{PART} org", "not checked: needs a token")
            return
        yield ok(f"{PART} token", f"token from {auth.token_url}")
        try:
            me = client.who_am_i()
        except (DataverseError, httpx.HTTPError) as exc:
            yield fail(
                f"{PART} user",
                f"WhoAmI at {settings.dataverse_url} failed ({describe_error(exc)}); create "
                "the application user for DATAVERSE_CLIENT_ID and give it a security role",
            )
            yield skip(f"{PART} org", "not checked: needs the application user")
            return
        yield ok(f"{PART} user", f"WhoAmI: user {me.get('UserId')} in {settings.dataverse_url}")
        for passed, message in verify_org(client):
            yield (ok if passed else fail)(f"{PART} org", message)
