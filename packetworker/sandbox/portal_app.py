"""Routes of the emulated ERP API (`/mobile/erp/...`), as the real one answers them."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from lxml import etree
from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from packetworker.sandbox.base import json_response
from packetworker.sandbox.portal_state import PortalState
from packetworker.sandbox.records import DoneCall

URLS = Map(
    [
        Rule("/mobile/erp/pull/<app_area>", endpoint="pull", methods=["GET"]),
        Rule("/mobile/erp/pull/<app_area>/link", endpoint="link", methods=["GET"]),
        Rule("/mobile/erp/pull/<app_area>/done", endpoint="done", methods=["POST"]),
        Rule("/mobile/erp/push/<app_area>/<user>", endpoint="push", methods=["GET"]),
    ]
)
_SAFE_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


class PortalApp:
    """WSGI app for the ERP API endpoints; state lives in the `PortalState`."""

    def __init__(self, sandbox: PortalState) -> None:
        self.sandbox = sandbox

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        try:
            endpoint, args = URLS.bind_to_environ(environ).match()
            response = self._authorized(request, args["app_area"]) or getattr(self, endpoint)(
                request, **args
            )
        except NotFound:
            response = json_response(404, {"message": "Not Found"})
        except HTTPException as exc:
            response = json_response(exc.code or 500, {"message": exc.name})
        return response(environ, start_response)

    def _authorized(self, request: Request, app_area: str) -> Response | None:
        expected = self.sandbox.app_areas.get(app_area)
        if expected is None or request.headers.get("x-api-key") != expected:
            # Never echo the key that was sent.
            return json_response(401, {"message": "Unauthorized: missing or invalid x-api-key"})
        return None

    def pull(self, request: Request, app_area: str) -> Response:
        list_type = request.args.get("packetType", "packet")
        fmt = request.args.get("format", "json")
        if list_type not in ("packet", "file") or fmt not in ("json", "xml"):
            return json_response(
                400, {"message": "packetType must be packet|file, format json|xml"}
            )
        entries = self.sandbox.queue(app_area).receive(list_type)
        if fmt == "json":
            return json_response(200, entries)
        root = etree.Element("messages")
        for entry in entries:
            message = etree.SubElement(root, "message")
            for name, value in entry.items():
                etree.SubElement(message, name).text = str(value)
        return Response(etree.tostring(root, encoding="UTF-8"), mimetype="application/xml")

    def link(self, request: Request, app_area: str) -> Response:
        path = request.args.get("path", "")
        if not self.sandbox.has_object(app_area, path):
            return json_response(404, {"message": f"no packet at {path!r}"})
        return json_response(200, {"url": self.sandbox.storage.presign("GET", path)})

    def done(self, request: Request, app_area: str) -> Response:
        fmt = request.args.get("format", "")
        list_type = request.args.get("packetType", "packet")
        try:
            pairs = _done_pairs(request.get_data())
        except ValueError as exc:
            return json_response(400, {"success": False, "message": str(exc)})
        queue = self.sandbox.queue(app_area)
        rejected = tuple(i for i, handle in pairs if not queue.delete(i, handle))
        call = DoneCall(list_type, fmt, tuple(i for i, _ in pairs), rejected)
        self.sandbox.record_done(app_area, call)
        return json_response(200, {"success": True})  # the real API says success either way

    def push(self, request: Request, app_area: str, user: str) -> Response:
        size = request.args.get("size", "")
        fmt = request.args.get("packetType", "xml")
        if not user.strip() or not size.isdigit() or fmt not in ("xml", "json"):
            message = "user, a size in bytes and packetType xml|json are required"
            return json_response(400, {"success": False, "message": message})
        packet_id = request.args.get("packetUniqueId") or str(uuid.uuid4())
        sync_log_id, upload_path = self.sandbox.open_upload(
            app_area, user=user, packet_unique_id=packet_id, packet_type=fmt, size=int(size)
        )
        return json_response(
            200, {"success": True, "syncLogId": sync_log_id, "uploadPath": upload_path}
        )


def _done_pairs(body: bytes) -> list[tuple[str, str]]:
    """(id, receiptHandle) pairs from an XML `<messages>` or JSON done body (format sniffed,
    since the vendor's connector posts its XML list back as text/plain)."""
    text = body.strip()
    if text.startswith(b"<"):
        try:
            root = etree.fromstring(text, parser=_SAFE_PARSER)
        except etree.XMLSyntaxError as exc:
            raise ValueError(f"done body is not well-formed XML: {exc}") from None
        if root.getroottree().docinfo.internalDTD is not None or root.tag != "messages":
            raise ValueError("done body must be a <messages> document without a DTD")
        return [
            (m.findtext("id", "").strip(), m.findtext("receiptHandle", "").strip())
            for m in root.iter("message")
        ]
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"done body is neither XML nor JSON: {exc}") from None
    if isinstance(data, dict):
        data = data.get("messages")
    if not isinstance(data, list) or not all(isinstance(m, dict) for m in data):
        raise ValueError('done body must be {"messages": [{"id", "receiptHandle"}, ...]}')
    return [(str(m.get("id", "")), str(m.get("receiptHandle", ""))) for m in data]
