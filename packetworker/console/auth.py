"""Who may open the console, and forms that only the console's own pages can post.

- **Credentials:** `WEB_CONSOLE_TOKEN`, or `WEB_CONSOLE_USER` + `WEB_CONSOLE_PASSWORD`; with
  none set the console is off. A request is let in by a session cookie (set by the login
  form), by `Authorization: Bearer <token>`, or by HTTP Basic credentials. Every comparison is
  constant-time.
- **Sessions:** the cookie is `<expiry>.<HMAC(expiry)>`, keyed by the credentials themselves
  (changing them ends every session); HttpOnly, SameSite=Strict, Secure over https.
- **CSRF:** every POST carries a form token, HMAC of the session (or of the credentials
  header) under a separate label, so another site can neither read nor forge it; the login
  form uses a double-submit cookie. SameSite=Strict is a second line, not the only one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from werkzeug.wrappers import Request

SESSION_COOKIE = "pw_console"
LOGIN_CSRF_COOKIE = "pw_console_login"
SESSION_SECONDS = 12 * 3600


@dataclass
class Gate:
    token: str = ""
    user: str = ""
    password: str = ""
    clock: Callable[[], float] = time.time
    _key: bytes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        material = "\0".join(("packetworker-console", self.token, self.user, self.password))
        self._key = hashlib.sha256(material.encode()).digest()

    @property
    def enabled(self) -> bool:
        return bool(self.token or (self.user and self.password))

    @property
    def modes(self) -> tuple[str, ...]:
        """What the login form asks for: `token`, `password`, or both."""
        return tuple(
            mode
            for mode, on in (("token", self.token), ("password", self.user and self.password))
            if on
        )

    # --- credentials ---------------------------------------------------------------------

    def check_token(self, token: str) -> bool:
        return bool(self.token) and _same(token, self.token)

    def check_password(self, user: str, password: str) -> bool:
        if not (self.user and self.password):
            return False
        # Both compared, always, so the time taken does not say which one was wrong.
        return _same(user, self.user) & _same(password, self.password)

    def authenticated(self, request: Request) -> bool:
        if not self.enabled:
            return False
        if self._header_ok(request):
            return True
        return self.session_ok(request.cookies.get(SESSION_COOKIE, ""))

    def _header_ok(self, request: Request) -> bool:
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer":
            return self.check_token(value.strip())
        if scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(value.strip()).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return False
            return self.check_password(user, password)
        return False

    # --- sessions ------------------------------------------------------------------------

    def new_session(self) -> str:
        expiry = str(int(self.clock()) + SESSION_SECONDS)
        return f"{expiry}.{self._sign('session', expiry)}"

    def session_ok(self, value: str) -> bool:
        expiry, _, signature = value.partition(".")
        if not expiry.isdigit() or not _same(signature, self._sign("session", expiry)):
            return False
        return int(expiry) > self.clock()

    # --- CSRF ----------------------------------------------------------------------------

    def csrf_token(self, request: Request) -> str:
        """The form token of this request's session (or of its credentials header)."""
        session = request.cookies.get(SESSION_COOKIE, "")
        basis = session if self.session_ok(session) else "header"
        return self._sign("csrf", basis)

    def csrf_ok(self, request: Request) -> bool:
        return _same(request.form.get("csrf", ""), self.csrf_token(request))

    @staticmethod
    def new_login_csrf() -> str:
        return secrets.token_urlsafe(24)

    @staticmethod
    def login_csrf_ok(request: Request) -> bool:
        cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        return bool(cookie) and _same(request.form.get("csrf", ""), cookie)

    def _sign(self, label: str, value: str) -> str:
        return hmac.new(self._key, f"{label}:{value}".encode(), hashlib.sha256).hexdigest()


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())
