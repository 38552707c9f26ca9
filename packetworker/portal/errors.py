"""Errors raised by the portal client.

Every error knows whether it is worth trying again later (`transient`), carries the HTTP
status when there was one and a short, redacted excerpt of the body for the logs. Their text
never contains the API key or a presigned URL's signature: the client passes its secrets in
and everything is run through `packetworker.redact` before it is stored.
"""

from __future__ import annotations

from packetworker.errors import PacketworkerError
from packetworker.redact import redact_text

EXCERPT_CHARS = 300


class PortalError(PacketworkerError):
    """Base class: a call to the Dynamics Mobile ERP API (or its storage) failed."""

    transient: bool = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        body: str | bytes = "",
        secrets: tuple[str, ...] = (),
        retry_after: float | None = None,
    ) -> None:
        if isinstance(body, bytes):
            body = body[: EXCERPT_CHARS * 4].decode("utf-8", "replace")
        self.status = status
        self.body_excerpt = redact_text(body, *secrets)[:EXCERPT_CHARS]
        self.retry_after = retry_after
        self.message = redact_text(message, *secrets)
        super().__init__(self.message)

    def __str__(self) -> str:
        text = self.message
        if self.status is not None:
            text = f"{text} (HTTP {self.status})"
        if self.body_excerpt:
            text = f"{text}: {self.body_excerpt}"
        return text


class PortalAuthError(PortalError):
    """401/403 from the API: the app area or its key is wrong. Retrying will not help."""


class PortalUnavailable(PortalError):
    """Connection errors, 429 or 5xx that outlasted the retries. Try again later.

    `retry_after` holds the server's requested delay in seconds when it sent one.
    """

    transient = True


class PortalProtocolError(PortalError):
    """The API answered 2xx with a body we cannot use (e.g. push without `uploadPath`)."""


class LinkExpired(PortalError):
    """Storage refused a presigned URL (expired or invalid): ask the API for a new one."""

    transient = True


class DownloadTooLarge(PortalError):
    """The object is larger than the configured cap; it is never read past the cap."""


class DownloadDeadline(PortalError):
    """The body did not arrive within the download's total deadline (e.g. it trickled).
    Worth another try later with a fresh link; the packet is not acknowledged meanwhile."""

    transient = True


class UnsafeLink(PortalError):
    """A link or upload path the portal sent points where we never send requests (plain
    http, a loopback/private/link-local address). Retrying will not help."""
