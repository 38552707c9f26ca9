"""Business Central errors, classified as transient (retry later) or permanent.

BC answers errors as `{"error": {"code": "...", "message": "... CorrelationId: ..."}}`. The
HTTP status alone is not enough: a 400 is always permanent, but a 500 may be a data problem
(`Internal_RecordNotFound`) or a hiccup (`Internal_ServerError`). The code decides.
"""

from __future__ import annotations

from packetworker.http import TRANSIENT_STATUSES
from packetworker.targets.http_errors import HTTPTargetError

# Codes that mean "the service, not your request, had a problem".
TRANSIENT_CODES = frozenset(
    {"Internal_ServerError", "Internal_TenantUnavailable", "Unknown_Throttled"}
)

# Codes that will fail the same way however often they are retried, whatever the status.
PERMANENT_CODES = frozenset(
    {
        "Internal_EntityWithSameKeyExists",
        "Internal_RecordNotFound",
        "Internal_DataNotFoundFilter",
        "Internal_InvalidTableRelation",
        "Internal_CompanyNotFound",
        "Request_EntityChanged",
    }
)

PERMANENT_PREFIXES = ("BadRequest", "Application_", "Authorization_", "Authentication_")


def is_transient(status: int, code: str | None) -> bool:
    """Whether a request that failed with `status`/`code` may succeed if sent again."""
    if code in PERMANENT_CODES:
        return False
    if code in TRANSIENT_CODES or status in TRANSIENT_STATUSES:
        return True
    if code and code.startswith(PERMANENT_PREFIXES):
        return False
    return status >= 500


class BCError(HTTPTargetError):
    """A Business Central API call failed.

    `code` is BC's error code (`BadRequest_NotFound`, `Internal_EntityWithSameKeyExists`, ...)
    or a synthetic one when the body carried none. `retry_after` is the server's
    `Retry-After` in seconds when it sent one. The message is redacted: it never carries
    bearer tokens or client secrets, even if the server echoed them.
    """

    @property
    def bc_message(self) -> str:
        return self.detail


class EntityChanged(BCError):
    """The entity changed since its etag was read (`Request_EntityChanged`, 409 or 412).

    Never retried blindly: re-read the entity, re-apply the change, send the new etag.
    """


class AuthError(BCError):
    """The token endpoint refused the credentials, or the API refused a fresh token."""


class NotFound(BCError):
    """The addressed entity or route does not exist (404)."""


class NotSent(BCError):
    """The request never reached BC (no connection, none free): it certainly did not run."""


class NoAnswer(BCError):
    """The request was sent but no answer came (timeout, reset): it may have run."""


def error_from_response(status: int, body: object, *, retry_after: float | None = None) -> BCError:
    """Build the right `BCError` subclass from a status and a decoded (or raw) error body."""
    code, message = _code_and_message(status, body)
    transient = is_transient(status, code)
    if code == "Request_EntityChanged" or status == 412:
        cls: type[BCError] = EntityChanged
    elif status in (401, 403):
        cls = AuthError
    elif status == 404:
        cls = NotFound
    else:
        cls = BCError
    return cls(status, code, message, transient=transient, retry_after=retry_after)


def _code_and_message(status: int, body: object) -> tuple[str, str]:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        return str(error.get("code") or f"HTTP_{status}"), str(error.get("message") or "")
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body or "")
    return f"HTTP_{status}", text[:500]
