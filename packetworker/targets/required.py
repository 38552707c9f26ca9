"""What each system needs from the settings, and the error that names what is missing.

Pure checks, no I/O: a system target (or the outbound side, which reads Business Central)
refuses to be built without them instead of falling back to an emulator or a dry run, and the
long-running processes run the same checks before they start.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from packetworker.errors import PacketworkerError

if TYPE_CHECKING:
    from packetworker.settings import Settings


class NotConfigured(ValueError, PacketworkerError):
    """`subject` cannot run without settings; the message names them (never their values)."""

    def __init__(self, subject: str, missing: Sequence[str] = (), *, hint: str = "") -> None:
        self.subject = subject
        self.missing = tuple(missing)
        message = f"{subject} needs {', '.join(self.missing)}" if self.missing else subject
        super().__init__(f"{message}{'; ' + hint if hint else ''}")


def require(subject: str, missing: Sequence[str]) -> None:
    """Raise `NotConfigured` when anything is `missing`."""
    if missing:
        raise NotConfigured(subject, missing)


def _blank(value: object) -> bool:
    if hasattr(value, "get_secret_value"):
        value = value.get_secret_value()
    return not str(value or "").strip()


def _unset(settings: Settings, *names: str) -> list[str]:
    return [name.upper() for name in names if _blank(getattr(settings, name))]


def missing_bc(settings: Settings) -> list[str]:
    """Business Central: tenant and app, with a client secret or a delegated refresh token."""
    missing = _unset(settings, "bc_tenant", "bc_client_id")
    if _blank(settings.bc_client_secret) and _blank(settings.bc_refresh_token):
        missing.append("BC_CLIENT_SECRET (or BC_REFRESH_TOKEN)")
    return missing


def missing_dataverse(settings: Settings) -> list[str]:
    """Dataverse: environment URL and app registration (tenant when the token URL names it)."""
    names = ["dataverse_url", "dataverse_client_id", "dataverse_client_secret"]
    if "{tenant}" in settings.dataverse_token_url:
        names.insert(1, "dataverse_tenant")
    return _unset(settings, *names)


def missing_crmaas(settings: Settings) -> list[str]:
    """CRM as a Service: base URL and the primary subscription key (the secondary is optional)."""
    return _unset(settings, "crmaas_url", "crmaas_primary_key")


def missing_dynamics_portal(settings: Settings) -> list[str]:
    """The Dynamics portal proxy: base URL and service account."""
    return _unset(settings, "dynamics_portal_url", "dynamics_portal_client_id")
