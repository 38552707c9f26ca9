"""Session tokens of the Dynamics portal proxy, as an `httpx.Auth` flow.

`POST .../authenticate` with a client id and scope answers a session token and its
`expires_at`. The token is reused until `renew_margin` seconds before it expires, then
renewed before the request that would otherwise carry a dying token; a 401 (the proxy
dropped the session early) gets one renewal and one resend. The authentication request
goes through the same `httpx.Client` as everything else (httpx runs it from the flow).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx

from packetworker.targets.dynamics_portal.errors import DynamicsPortalAuthError, error_for


@dataclass(frozen=True, slots=True)
class Session:
    token: str = field(repr=False)
    expires_at: datetime
    tenant: str | None = None


class SessionAuth(httpx.Auth):
    """Bearer session tokens from the proxy's `authenticate` endpoint; thread-safe."""

    requires_response_body = True

    def __init__(
        self,
        *,
        auth_url: str,
        client_id: str,
        scope: str,
        renew_margin: float = 60.0,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.auth_url = auth_url
        self.client_id = client_id
        self.scope = scope
        self.renew_margin = timedelta(seconds=renew_margin)
        self._now = now
        self._lock = threading.Lock()
        self.session: Session | None = None
        self.authentications = 0  # sessions obtained; for health output and tests

    def auth_request(self) -> httpx.Request:
        return httpx.Request(
            "POST", self.auth_url, json={"client_id": self.client_id, "scope": self.scope}
        )

    def accept(self, response: httpx.Response) -> Session:
        """Store the session an `authenticate` answer carries, or raise why there is none."""
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200 or not body.get("authenticated"):
            status = response.status_code if response.status_code >= 400 else 401
            error = error_for(status, "", str(body.get("error") or "authentication refused"))
            if not error.transient:
                error = DynamicsPortalAuthError(status, "", error.proxy_message, transient=False)
            raise error
        expires_at = datetime.fromisoformat(str(body["expires_at"]).replace("Z", "+00:00"))
        session = Session(str(body["session_token"]), expires_at, body.get("tenant"))
        with self._lock:
            self.session = session
            self.authentications += 1
        return session

    def valid_token(self) -> str | None:
        """The current token unless it expires within the renewal margin."""
        with self._lock:
            session = self.session
        if session is None or self._now() + self.renew_margin >= session.expires_at:
            return None
        return session.token

    def invalidate(self, token: str) -> None:
        with self._lock:
            if self.session is not None and self.session.token == token:
                self.session = None

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self.valid_token()
        if token is None:
            token = self.accept((yield self.auth_request())).token
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            self.invalidate(token)
            token = self.accept((yield self.auth_request())).token
            request.headers["Authorization"] = f"Bearer {token}"
            yield request
