"""The console's WSGI app, mounted by the `web` process under `/console`.

Routes (all but the login page and the stylesheet need a login, see `auth.Gate`):

- `GET /console/` overview per app area; `GET /console/packets?q=` the searchable list;
  `GET /console/packets/<id>` a packet's story; `GET /console/packets/<id>/raw` its archived
  bytes (as an attachment, `text/plain`, never rendered as HTML);
- `GET /console/quarantine` quarantined, stuck and held packets;
- `POST /console/packets/<id>/redrive` re-drives one (`operations.dlq_retry`, queued to the
  workers exactly as `packetworker dlq retry ID` does), then shows its page;
- `GET|POST /console/login`, `POST /console/logout`.

Every answer is `no-store`, framed by nobody, and under a CSP that allows no script at all.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from pydantic import SecretStr
from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.utils import redirect
from werkzeug.wrappers import Request, Response

import packetworker.console.pages as pages
from packetworker.console.auth import LOGIN_CSRF_COOKIE, SESSION_COOKIE, SESSION_SECONDS, Gate
from packetworker.pipeline import operations
from packetworker.pipeline.operations import Enqueue, Views
from packetworker.redact import redact_text

logger = logging.getLogger(__name__)

PREFIX = "/console"
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@dataclass
class Console:
    """The console over `views` (ledger, archive, settings); `enqueue` sends a packet to the
    workers; `outbound` answers the outbound push counters."""

    gate: Gate
    views: Views
    enqueue: Enqueue
    outbound: Callable[[], Mapping[str, int]] = dict

    def __post_init__(self) -> None:
        # Every secret setting, masked on every page should one ever reach a stored error.
        settings = self.views.settings
        self._secrets = tuple(
            value.get_secret_value()
            for name in type(settings).model_fields
            if isinstance(value := getattr(settings, name), SecretStr)
        )
        self._routes = Map(
            [
                Rule(f"{PREFIX}/", endpoint="overview", methods=["GET"]),
                Rule(f"{PREFIX}/console.css", endpoint="css", methods=["GET"]),
                Rule(f"{PREFIX}/login", endpoint="login", methods=["GET", "POST"]),
                Rule(f"{PREFIX}/logout", endpoint="logout", methods=["POST"]),
                Rule(f"{PREFIX}/packets", endpoint="packets", methods=["GET"]),
                Rule(f"{PREFIX}/packets/<path:packet_id>/raw", endpoint="raw", methods=["GET"]),
                Rule(
                    f"{PREFIX}/packets/<path:packet_id>/redrive",
                    endpoint="redrive",
                    methods=["POST"],
                ),
                Rule(f"{PREFIX}/packets/<path:packet_id>", endpoint="packet", methods=["GET"]),
                Rule(f"{PREFIX}/quarantine", endpoint="quarantine", methods=["GET"]),
            ],
            strict_slashes=False,
        )

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        try:
            if not self.gate.enabled:
                raise NotFound()
            endpoint, args = self._routes.bind_to_environ(environ).match()
            public = endpoint in ("login", "css")
            form = request.method == "POST" and endpoint != "login"
            if not public and not self.gate.authenticated(request):
                response = redirect(f"{PREFIX}/login", 303)
            elif form and not self.gate.csrf_ok(request):
                refused = pages.message("Refused", "Form expired; reload the page.")
                response = self._html(refused, 403)
            else:
                response = getattr(self, f"_{endpoint}")(request, **args)
        except HTTPException as exc:
            response = exc.get_response(environ)
        except Exception:
            logger.exception("Console page failed.")
            response = self._html(pages.message("Error", "The page failed; see the web log."), 500)
        for name, value in _HEADERS.items():
            response.headers.setdefault(name, value)
        return response(environ, start_response)

    # --- pages ---------------------------------------------------------------------------

    def _css(self, request: Request) -> Response:
        response = Response(pages.CSS, content_type="text/css; charset=utf-8")
        response.headers["Cache-Control"] = "max-age=3600"
        return response

    def _login(self, request: Request) -> Response:
        if request.method == "POST":
            if not self.gate.login_csrf_ok(request):
                return self._login_form("Form expired; try again.", 403)
            form = request.form
            ok = self.gate.check_token(form.get("token", "")) or self.gate.check_password(
                form.get("user", ""), form.get("password", "")
            )
            if not ok:
                logger.warning("Console login refused.")
                return self._login_form("Wrong credentials.", 401)
            response = redirect(f"{PREFIX}/", 303)
            response.set_cookie(
                SESSION_COOKIE,
                self.gate.new_session(),
                max_age=SESSION_SECONDS,
                path=PREFIX,
                httponly=True,
                secure=_https(request),
                samesite="Strict",
            )
            response.delete_cookie(LOGIN_CSRF_COOKIE, path=f"{PREFIX}/login")
            return response
        return self._login_form(None, 200)

    def _login_form(self, error: str | None, status: int) -> Response:
        csrf = self.gate.new_login_csrf()
        response = self._html(pages.login(self.gate.modes, csrf, error=error), status)
        response.set_cookie(
            LOGIN_CSRF_COOKIE, csrf, path=f"{PREFIX}/login", httponly=True, samesite="Strict"
        )
        return response

    def _logout(self, request: Request) -> Response:
        response = redirect(f"{PREFIX}/login", 303)
        response.delete_cookie(SESSION_COOKIE, path=PREFIX)
        return response

    def _overview(self, request: Request) -> Response:
        status = operations.status(self.views)
        return self._html(pages.overview(status, self.outbound(), self._csrf(request)))

    def _packets(self, request: Request) -> Response:
        search = request.args.get("q", "")[:200]
        items = operations.packets(self.views, search=search)
        now = self.views.ledger.clock()
        return self._html(pages.packet_list(items, search, now, self._csrf(request)))

    def _packet(self, request: Request, packet_id: str) -> Response:
        flash = "Re-driven: queued to the workers." if request.args.get("redriven") else ""
        told = operations.story(self.views, packet_id)
        if told is None:
            raise NotFound(f"packet {packet_id} is not in the ledger")
        raw = operations.raw_packet(self.views, packet_id)
        redrivable = operations.redrivable(self.views, packet_id)
        html = pages.story(told, raw, self._csrf(request), redrivable=redrivable, flash=flash)
        return self._html(html)

    def _raw(self, request: Request, packet_id: str) -> Response:
        limit = self.views.settings.max_packet_bytes
        raw = operations.raw_packet(self.views, packet_id, limit=limit)
        if raw is None:
            raise NotFound(f"packet {packet_id} is not archived")
        response = Response(raw[0], content_type="text/plain; charset=utf-8")
        response.headers["Content-Disposition"] = "attachment; filename=packet.txt"
        return response

    def _quarantine(self, request: Request) -> Response:
        quarantined = operations.dlq_list(self.views)
        held = operations.held_list(self.views)
        return self._html(pages.quarantine(quarantined, held, self._csrf(request)))

    def _redrive(self, request: Request, packet_id: str) -> Response:
        try:
            operations.dlq_retry(self.views, packet_id, enqueue=self.enqueue)
        except LookupError as exc:
            refused = pages.message("Not re-driven", str(exc), csrf=self._csrf(request))
            return self._html(refused, 409)
        logger.info("Console re-drove packet %s.", packet_id, extra={"packet_id": packet_id})
        return redirect(f"{PREFIX}/packets/{quote(packet_id, safe='')}?redriven=1", 303)

    # --- helpers -------------------------------------------------------------------------

    def _csrf(self, request: Request) -> str:
        return self.gate.csrf_token(request)

    def _html(self, body: str, status: int = 200) -> Response:
        body = redact_text(body, *self._secrets)
        return Response(body, status=status, content_type="text/html; charset=utf-8")


def _https(request: Request) -> bool:
    return request.scheme == "https" or request.headers.get("X-Forwarded-Proto") == "https"
