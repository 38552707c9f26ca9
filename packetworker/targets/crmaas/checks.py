"""CRM as a Service's preflight check (`packetworker check`), live and read-only: each
configured subscription key reads one contact (the API reference: a key works for one CRM instance;
APIM answers 401 to a key it does not know)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx

from packetworker.check_results import PROBE_TIMEOUT, CheckResult, describe_error, fail, ok
from packetworker.settings import Settings
from packetworker.targets.crmaas.client import CrmaasClient
from packetworker.targets.crmaas.errors import CrmaasError

PART = "CRM as a Service"


def crmaas_checks(
    settings: Settings, *, transport: httpx.BaseTransport | None = None
) -> Iterator[CheckResult]:
    """`GET /directory/contacts?page=1&size=1` with the primary key, then the secondary."""
    keys = {
        "CRMAAS_PRIMARY_KEY": settings.crmaas_primary_key.get_secret_value(),
        "CRMAAS_SECONDARY_KEY": settings.crmaas_secondary_key.get_secret_value(),
    }
    for name, key in keys.items():
        if not key:
            continue
        # One key per client: a refused key must fail its row, not fall over to the other.
        client = CrmaasClient(
            settings.crmaas_url,
            primary_key=key,
            timeout=PROBE_TIMEOUT,
            attempts=2,
            transport=transport,
        )
        with client:
            try:
                next(client.contacts.list(size=1), None)
            except (CrmaasError, httpx.HTTPError) as exc:
                yield fail(
                    f"{PART} {name}",
                    f"{settings.crmaas_url} refused a read ({describe_error(exc)}); copy the "
                    "key from the CRM's settings, API key section (one key per CRM instance)",
                )
                continue
        yield ok(f"{PART} {name}", f"reads contacts at {settings.crmaas_url}")
