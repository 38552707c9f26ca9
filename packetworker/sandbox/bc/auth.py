"""The emulator's token endpoint (Entra-like `client_credentials` and rotating `refresh_token`
grants) and the bearer check every API request passes."""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from werkzeug.wrappers import Request, Response

from packetworker.sandbox.bc.errors import ODataError
from packetworker.sandbox.bc.odata import json_response


@dataclass
class _Token:
    user: str
    expires: datetime


class Tokens:
    """Issues and checks access tokens for one client id/secret pair."""

    def __init__(
        self, *, client_id: str, client_secret: str, ttl: int, clock: Callable[[], datetime]
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.ttl = ttl
        self.clock = clock
        self.grants: list[str] = []  # grant type of every token issued, in order
        self._tokens: dict[str, _Token] = {}
        self._refresh_tokens: dict[str, str] = {}
        self._lock = threading.Lock()

    def endpoint(self, request: Request) -> Response:
        """`POST /{tenant}/oauth2/v2.0/token`."""
        form = request.form
        client_id, secret = form.get("client_id"), form.get("client_secret")
        if request.authorization and request.authorization.type == "basic":
            client_id = request.authorization.username
            secret = request.authorization.password
        grant = form.get("grant_type", "")
        if client_id != self.client_id or secret != self.client_secret:
            return _oauth_error("invalid_client", "AADSTS7000215: Invalid client secret provided.")
        body: dict[str, Any] = {"token_type": "Bearer", "expires_in": self.ttl}
        with self._lock:
            if grant == "client_credentials":
                if not form.get("scope", "").endswith("/.default"):
                    return _oauth_error("invalid_scope", "AADSTS1002012: scope must be /.default")
            elif grant == "refresh_token":
                old = form.get("refresh_token", "")
                if self._refresh_tokens.pop(old, None) is None:
                    return _oauth_error("invalid_grant", "AADSTS70008: refresh token expired.")
                new = secrets.token_urlsafe(32)
                self._refresh_tokens[new] = client_id
                body["refresh_token"] = new
            else:
                return _oauth_error("unsupported_grant_type", f"grant {grant!r} unsupported")
            token = _jwt_like(client_id)
            self._tokens[token] = _Token(client_id, self.clock() + timedelta(seconds=self.ttl))
            self.grants.append(grant)
        body["access_token"] = token
        return json_response(200, body)

    def authenticate(self, request: Request) -> str:
        """The user of the request's bearer token; 401 when it is unknown or expired."""
        header = request.headers.get("Authorization", "")
        token = header[7:] if header.lower().startswith("bearer ") else ""
        with self._lock:
            known = self._tokens.get(token)
            if known is None or known.expires <= self.clock():
                raise ODataError(
                    401,
                    "Authentication_InvalidCredentials",
                    "The server has rejected the client credentials.",
                    headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
                )
            return known.user

    def expire_all(self) -> None:
        with self._lock:
            past = self.clock() - timedelta(seconds=1)
            for token in self._tokens.values():
                token.expires = past

    def issue_refresh_token(self) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._refresh_tokens[token] = self.client_id
        return token


def _oauth_error(error: str, description: str) -> Response:
    return json_response(400 if error != "invalid_client" else 401, {
        "error": error, "error_description": description,
    })  # fmt: skip


def _jwt_like(subject: str) -> str:
    """An opaque token shaped like a JWT (header.payload.signature), as Entra's look."""

    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    header = part({"typ": "JWT", "alg": "RS256"})
    claims = part({"aud": "https://api.businesscentral.dynamics.com", "appid": subject,
                   "iat": int(time.time()), "jti": secrets.token_hex(8)})  # fmt: skip
    return f"{header}.{claims}.{secrets.token_urlsafe(32)}"
