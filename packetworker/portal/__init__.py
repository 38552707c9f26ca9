"""Dynamics Mobile ERP API client: pull lists, download links, done receipts, pushes."""

from packetworker.portal.client import DEFAULT_BASE_URL, PortalClient
from packetworker.portal.entries import Download, PullEntry, PushResult
from packetworker.portal.errors import (
    DownloadTooLarge,
    LinkExpired,
    PortalAuthError,
    PortalError,
    PortalProtocolError,
    PortalUnavailable,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "Download",
    "DownloadTooLarge",
    "LinkExpired",
    "PortalAuthError",
    "PortalClient",
    "PortalError",
    "PortalProtocolError",
    "PortalUnavailable",
    "PullEntry",
    "PushResult",
]
