"""The emulator's Entra-like OAuth endpoints and the bearer check every API request passes.

- `GET /{tenant}/oauth2/v2.0/authorize`: the authorization-code sign-in. The "user" signs in at
  once (as `user`, consenting) and the browser is redirected to the registered redirect URI
  with `code` and `state` — or with `error` when `sign_in_error` is set.
- `POST /{tenant}/oauth2/v2.0/token`: `client_credentials`, `authorization_code` and
  `refresh_token` grants; every refresh answer carries a new refresh token.

Sources: entra-docs `docs/identity-platform/v2-oauth2-auth-code-flow.md` (auth-code page),
`docs/identity-platform/refresh-tokens.md` (refresh-token page), summarised in
business-central.md §1.3.1.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from werkzeug.wrappers import Request, Response

from packetworker.sandbox.bc.errors import ODataError
from packetworker.sandbox.bc.odata import json_response

# The auth-code page: codes are short-lived, "about 10 minutes".
CODE_TTL = timedelta(minutes=10)
OFFLINE_ACCESS = "offline_access"


@dataclass
class _Token:
    user: str
    expires: datetime


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    scope: str
    challenge: str
    user: str
    expires: datetime
    redeemed: bool = False


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
        self.redirect_uris: set[str] = set()  # the app registration's redirect URIs
        self.user = "pw-user@sandbox"  # who signs in at the authorize endpoint
        self.sign_in_error: str | None = None  # e.g. "access_denied": the user refuses
        # The refresh-token page says a used refresh token is to be discarded but is not
        # revoked; refusing it is stricter, and shows whether a client kept a spent one.
        self.refuse_used_refresh_tokens = True
        self.used_refresh_tokens: list[str] = []
        self._tokens: dict[str, _Token] = {}
        self._refresh_tokens: dict[str, str] = {}  # refresh token → user
        self._codes: dict[str, _Code] = {}
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
        user = client_id
        with self._lock:
            if grant == "client_credentials":
                if not form.get("scope", "").endswith("/.default"):
                    return _oauth_error("invalid_scope", "AADSTS1002012: scope must be /.default")
            elif grant == "authorization_code":
                redeemed = self._redeem(form, client_id)
                if isinstance(redeemed, Response):
                    return redeemed
                user, body["scope"] = redeemed.user, redeemed.scope
                # Auth-code page: a refresh token only when offline_access was requested.
                if OFFLINE_ACCESS in redeemed.scope.split():
                    body["refresh_token"] = self._new_refresh_token(user)
            elif grant == "refresh_token":
                old = form.get("refresh_token", "")
                owner = self._refresh_tokens.get(old)
                if owner is None or (
                    self.refuse_used_refresh_tokens and old in self.used_refresh_tokens
                ):
                    return _oauth_error(
                        "invalid_grant",
                        "AADSTS70008: The provided authorization code or refresh token has "
                        "expired due to inactivity.",
                    )
                self.used_refresh_tokens.append(old)
                user = owner
                # Refresh-token page: each answer carries a new refresh token to keep instead.
                body["refresh_token"] = self._new_refresh_token(user)
            else:
                return _oauth_error("unsupported_grant_type", f"grant {grant!r} unsupported")
            token = _jwt_like(client_id)
            self._tokens[token] = _Token(user, self.clock() + timedelta(seconds=self.ttl))
            self.grants.append(grant)
        body["access_token"] = token
        return json_response(200, body)

    def authorize(self, request: Request) -> Response:
        """`GET /{tenant}/oauth2/v2.0/authorize`: sign the user in, redirect with a code."""
        args = request.args
        redirect_uri = args.get("redirect_uri", "")
        if args.get("client_id") != self.client_id:
            return _sign_in_page("AADSTS700016: Application not found in the directory.")
        if redirect_uri not in self.redirect_uris:
            # Auth-code page: redirect_uri must exactly match one registered on the app;
            # Entra shows an error page instead of redirecting anywhere else.
            return _sign_in_page(
                "AADSTS50011: The redirect URI specified in the request does not match the "
                "redirect URIs configured for the application."
            )
        state = {"state": args["state"]} if "state" in args else {}

        def back(**params: str) -> Response:
            return _redirect(redirect_uri, {**params, **state})

        if args.get("response_type") != "code":  # auth-code page: required, "code"
            return back(error="unsupported_response_type", error_description="use code")
        if args.get("response_mode", "query") != "query":  # the emulator redirects only so
            return back(error="invalid_request", error_description="only response_mode=query")
        scope = args.get("scope", "")
        if not scope.strip():  # auth-code page: scope is required
            return back(error="invalid_request", error_description="AADSTS900144: scope")
        challenge = args.get("code_challenge", "")
        # Auth-code page: PKCE is recommended for every client; the emulator requires it, S256.
        if not challenge or args.get("code_challenge_method") != "S256":
            return back(error="invalid_request", error_description="PKCE S256 is required")
        if self.sign_in_error:
            return back(error=self.sign_in_error, error_description="The user refused.")
        code = secrets.token_urlsafe(48)
        with self._lock:
            self._codes[code] = _Code(
                self.client_id, redirect_uri, scope, challenge, self.user, self.clock() + CODE_TTL
            )
        return back(code=code)

    def _redeem(self, form, client_id: str) -> _Code | Response:
        code = self._codes.get(form.get("code", ""))
        if code is None or code.client_id != client_id:
            return _oauth_error("invalid_grant", "AADSTS70000: The provided code is not valid.")
        if code.redeemed:
            # Entra docs: an authorization code can be redeemed once (AADSTS54005).
            return _oauth_error(
                "invalid_grant",
                "AADSTS54005: OAuth2 Authorization code was already redeemed, please retry "
                "with a new valid code or use an existing refresh token.",
            )
        if code.expires <= self.clock():  # auth-code page: codes live about 10 minutes
            return _oauth_error(
                "invalid_grant", "AADSTS70008: The provided authorization code has expired."
            )
        if form.get("redirect_uri") != code.redirect_uri:
            # Auth-code page: the same redirect_uri as in the authorize request.
            return _oauth_error(
                "invalid_grant", "redirect_uri differs from the one of the authorize request."
            )
        verifier = form.get("code_verifier", "")
        if not verifier or _s256(verifier) != code.challenge:
            # Auth-code page: code_verifier is the one the code_challenge was made from.
            return _oauth_error(
                "invalid_grant",
                "AADSTS501481: The Code_Verifier does not match the code_challenge supplied "
                "in the authorization request.",
            )
        code.redeemed = True
        return code

    def _new_refresh_token(self, user: str) -> str:
        token = secrets.token_urlsafe(32)
        self._refresh_tokens[token] = user
        return token

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
        with self._lock:
            return self._new_refresh_token(self.user)


def _oauth_error(error: str, description: str) -> Response:
    return json_response(400 if error != "invalid_client" else 401, {
        "error": error, "error_description": description,
    })  # fmt: skip


def _sign_in_page(message: str) -> Response:
    return Response(f"Sign-in error: {message}", status=400, content_type="text/plain")


def _redirect(uri: str, params: dict[str, str]) -> Response:
    joiner = "&" if "?" in uri else "?"
    return Response(status=302, headers={"Location": f"{uri}{joiner}{urlencode(params)}"})


def _s256(verifier: str) -> str:
    """RFC 7636 S256: BASE64URL(SHA256(verifier)) without padding."""
    raw = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _jwt_like(subject: str) -> str:
    """An opaque token shaped like a JWT (header.payload.signature), as Entra's look."""

    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    header = part({"typ": "JWT", "alg": "RS256"})
    claims = part({"aud": "https://api.businesscentral.dynamics.com", "appid": subject,
                   "iat": int(time.time()), "jti": secrets.token_hex(8)})  # fmt: skip
    return f"{header}.{claims}.{secrets.token_urlsafe(32)}"
