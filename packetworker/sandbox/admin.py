"""The `/_sandbox/` admin API, so a separately started sandbox can be driven over HTTP.

    POST   /_sandbox/enqueue?app_area=&user=&format=&packet_type=&operation=&company_id=&packet_id=
           body = packet bytes                        -> {"id": ..., "user": ...}
           (user: the packet's salesmancode when not given; format: xml|json, detected
           from the body when not given; a bad request answers 400 with "message" and "usage")
    GET    /_sandbox/state?app_area=                  -> pending, done, doneCalls, uploads
    GET    /_sandbox/requests                         -> the request log
    GET    /_sandbox/counters?app_area=               -> pending, done (counts), statuses
                                                         (status -> requests), cheap to poll
    POST   /_sandbox/faults  {"status": 503, "count": 2, "retryAfter": 1, "pathPrefix": null}
                             {"slow": 2.5, "count": 1} | {"refuse": true, "count": 1}
                             {"trickle": 0.5, "pieceBytes": 1, "count": 1}
    DELETE /_sandbox/faults
    POST   /_sandbox/clock?advance=SECONDS            -> {"now": ...}

Loopback development tool: it takes no key, and the sandbox only listens on 127.0.0.1 by default.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import asdict
from typing import Any

import orjson
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from packetworker.sandbox.base import json_response
from packetworker.sandbox.portal_state import PortalState, salesman

PREFIX = "/_sandbox/"
# Sent with every refused enqueue, so a caller sees how to ask (issue 11 §6).
ENQUEUE_USAGE = (
    "POST /_sandbox/enqueue?user=USER[&format=xml|json][&app_area=AREA][&packet_id=ID]"
    "[&packet_type=data|image][&operation=OP][&company_id=CO] with the packet bytes as the "
    "body (e.g. curl --data-binary @samples/sales-order.xml URL); user defaults to the "
    "packet's salesmancode, or use: packetworker sandbox enqueue FILE --user USER"
)


class BadEnqueue(ValueError):
    """An enqueue request the sandbox cannot take; answered 400 with `ENQUEUE_USAGE`."""


URLS = Map(
    [
        Rule("/_sandbox/enqueue", endpoint="enqueue", methods=["POST"]),
        Rule("/_sandbox/state", endpoint="state", methods=["GET"]),
        Rule("/_sandbox/requests", endpoint="requests", methods=["GET"]),
        Rule("/_sandbox/counters", endpoint="counters", methods=["GET"]),
        Rule("/_sandbox/faults", endpoint="add_fault", methods=["POST"]),
        Rule("/_sandbox/faults", endpoint="clear_faults", methods=["DELETE"]),
        Rule("/_sandbox/clock", endpoint="clock", methods=["POST"]),
    ]
)


class AdminApp:
    """Serves `/_sandbox/`; every other path goes to `api`."""

    def __init__(self, sandbox: PortalState, api: Any) -> None:
        self.sandbox = sandbox
        self.api = api

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if not environ.get("PATH_INFO", "").startswith(PREFIX):
            return self.api(environ, start_response)
        request = Request(environ)
        try:
            endpoint, _ = URLS.bind_to_environ(environ).match()
            response = getattr(self, endpoint)(request)
        except HTTPException as exc:
            response = json_response(exc.code or 500, {"message": exc.name})
        except BadEnqueue as exc:
            response = json_response(400, {"message": str(exc), "usage": ENQUEUE_USAGE})
        except (KeyError, ValueError, TypeError) as exc:
            response = json_response(400, {"message": str(exc)})
        return response(environ, start_response)

    def _app_area(self, request: Request) -> str:
        return request.args.get("app_area") or next(iter(self.sandbox.app_areas))

    def enqueue(self, request: Request) -> Response:
        args = request.args
        body = request.get_data()
        if not body:
            raise BadEnqueue("the request has no body: send the packet bytes as the body")
        app_area = self._app_area(request)
        if app_area not in self.sandbox.app_areas:
            known = ", ".join(self.sandbox.app_areas)
            raise BadEnqueue(f"unknown app area {app_area!r} (this sandbox serves {known})")
        fmt = args.get("format") or ("json" if body.lstrip()[:1] in (b"{", b"[") else "xml")
        packet_type = args.get("packet_type", "data")
        if fmt not in ("xml", "json") or packet_type not in ("data", "image"):
            raise BadEnqueue("format must be xml or json, packet_type data or image")
        user = args.get("user") or (salesman(body) if packet_type == "data" else None)
        if not user:
            raise BadEnqueue("no user given and the packet names no salesmancode")
        packet_id = self.sandbox.enqueue(
            app_area,
            body,
            user=user,
            packet_id=args.get("packet_id") or None,
            format=fmt,  # type: ignore[arg-type]
            packet_type=packet_type,  # type: ignore[arg-type]
            operation=args.get("operation") or None,
            company_id=args.get("company_id", "CRONUS"),
        )
        return json_response(200, {"id": packet_id, "user": user})

    def state(self, request: Request) -> Response:
        app_area = self._app_area(request)
        uploads = [
            {
                "user": u.user,
                "packetUniqueId": u.packet_unique_id,
                "packetType": u.packet_type,
                "size": len(u.body),
                "sha256": hashlib.sha256(u.body).hexdigest(),
            }
            for u in self.sandbox.uploads(app_area)
        ]
        return json_response(
            200,
            {
                "appArea": app_area,
                "pending": self.sandbox.pending(app_area),
                "done": self.sandbox.done_ids(app_area),
                "doneCalls": [asdict(c) for c in self.sandbox.done_calls(app_area)],
                "uploads": uploads,
            },
        )

    def requests(self, request: Request) -> Response:
        entries = [
            {"server": e.server, "method": e.method, "path": e.path, "status": e.status}
            for e in self.sandbox.requests()
        ]
        return json_response(200, entries)

    def counters(self, request: Request) -> Response:
        app_area = self._app_area(request)
        statuses = Counter(str(e.status) for e in self.sandbox.requests())
        return json_response(
            200,
            {
                "appArea": app_area,
                "pending": len(self.sandbox.pending(app_area)),
                "done": len(self.sandbox.done_ids(app_area)),
                "statuses": dict(statuses),
            },
        )

    def add_fault(self, request: Request) -> Response:
        spec = orjson.loads(request.get_data() or b"{}")
        count = int(spec.get("count", 1))
        prefix = spec.get("pathPrefix")
        if spec.get("refuse"):
            self.sandbox.faults.refuse(count=count, path_prefix=prefix)
        elif spec.get("trickle") is not None:
            self.sandbox.faults.trickle(
                float(spec["trickle"]),
                piece_bytes=int(spec.get("pieceBytes", 1)),
                count=count,
                path_prefix=prefix,
            )
        elif spec.get("slow") is not None:
            self.sandbox.faults.slow(float(spec["slow"]), count=count, path_prefix=prefix)
        else:
            self.sandbox.faults.add(
                status=int(spec["status"]),
                count=count,
                retry_after=spec.get("retryAfter"),
                path_prefix=prefix,
            )
        return json_response(200, {"pending": len(self.sandbox.faults.pending())})

    def clear_faults(self, request: Request) -> Response:
        self.sandbox.faults.clear()
        return json_response(200, {"pending": 0})

    def clock(self, request: Request) -> Response:
        self.sandbox.clock.advance(float(request.args.get("advance", "0")))
        return json_response(200, {"now": self.sandbox.clock.now()})
