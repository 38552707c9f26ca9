"""The Dynamics portal proxy's preflight checks (`packetworker check`), live and read-only:
the service account gets a session (the proxy's `authenticate`), and the session is accepted
by the records endpoint — a GET of an id no record has answers 404, a refused session 401."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx

from packetworker.check_results import PROBE_TIMEOUT, CheckResult, describe_error, fail, ok, skip
from packetworker.settings import Settings
from packetworker.targets.dynamics_portal.client import DynamicsPortalClient
from packetworker.targets.dynamics_portal.errors import DynamicsPortalError, RecordNotFound

PART = "Dynamics portal proxy"


def dynamics_portal_checks(
    settings: Settings, *, transport: httpx.BaseTransport | None = None
) -> Iterator[CheckResult]:
    """Session, then a read of a record that does not exist."""
    client = DynamicsPortalClient(
        settings.dynamics_portal_url,
        client_id=settings.dynamics_portal_client_id,
        scope=settings.dynamics_portal_scope,
        timeout=PROBE_TIMEOUT,
        attempts=2,
        transport=transport,
    )
    with client:
        try:
            session = client.authenticate()
        except (DynamicsPortalError, httpx.HTTPError) as exc:
            yield fail(
                f"{PART} session",
                f"{client.auth.auth_url} gave no session ({describe_error(exc)}); check "
                "DYNAMICS_PORTAL_CLIENT_ID and DYNAMICS_PORTAL_SCOPE",
            )
            yield skip(f"{PART} records", "not checked: needs a session")
            return
        tenant = f" for {session.tenant}" if session.tenant else ""
        yield ok(f"{PART} session", f"session{tenant} until {session.expires_at:%Y-%m-%d %H:%M}")
        try:
            client.get_record(str(uuid.uuid4()))
        except RecordNotFound:
            yield ok(f"{PART} records", "the records endpoint accepts the session")
        except (DynamicsPortalError, httpx.HTTPError) as exc:
            yield fail(f"{PART} records", f"reading a record failed ({describe_error(exc)})")
        else:
            yield ok(f"{PART} records", "the records endpoint accepts the session")
