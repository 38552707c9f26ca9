"""`PortalState`: what the emulated ERP API holds (queues, stored packets, done calls,
uploads) and the calls its routes and the admin API make on it. `PortalSandbox` serves it."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import orjson
from lxml import etree

from packetworker.sandbox.base import Clock, LoggedRequest, RequestLog
from packetworker.sandbox.faults import Faults
from packetworker.sandbox.queue import Message, PendingQueue, iso_ms
from packetworker.sandbox.records import DoneCall, Upload
from packetworker.sandbox.renditions import data_keys, file_key, renditions
from packetworker.sandbox.storage import Storage

_SAFE_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


@dataclass(frozen=True)
class _Slot:
    app_area: str
    user: str
    packet_unique_id: str
    packet_type: str
    size: int
    sync_log_id: str


class PortalState:
    """The portal's queues and storage, shared by the API routes (`portal_app.py`) and the
    admin API (`admin.py`); `host` and `port` are where `PortalSandbox` serves them (port 0:
    any free one)."""

    def __init__(
        self,
        *,
        app_areas: Mapping[str, str] | None = None,
        link_ttl: float = 900,
        visibility_timeout: float = 30,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock | None = None,
    ) -> None:
        self.app_areas = dict(app_areas if app_areas is not None else {"DEMO": "demo-key"})
        if not self.app_areas:
            raise ValueError("at least one app area is needed")
        self.clock = clock or Clock()
        self.link_ttl = link_ttl
        self.visibility_timeout = visibility_timeout
        self.host = host
        self.port = port
        self.faults = Faults()
        self._stopping = threading.Event()  # set on stop: releases requests `faults` hold
        self.storage = Storage(clock=self.clock, link_ttl=link_ttl, host=host)
        self._log = RequestLog()
        self._lock = threading.Lock()
        self._queues = {
            area: PendingQueue(visibility_timeout=visibility_timeout, now=self.clock.now)
            for area in self.app_areas
        }
        self._objects: dict[str, set[str]] = {area: set() for area in self.app_areas}
        self._done_calls: dict[str, list[DoneCall]] = {area: [] for area in self.app_areas}
        self._slots: dict[str, _Slot] = {}
        self._uploaded: list[str] = []

    # --- feeding packets ---------------------------------------------------------------------

    def enqueue(
        self,
        app_area: str,
        body: bytes,
        *,
        user: str,
        packet_id: str | None = None,
        format: Literal["xml", "json"] = "xml",  # the API's own word
        packet_type: Literal["data", "image"] = "data",
        operation: str | None = None,
        company_id: str = "CRONUS",
    ) -> str:
        """Store a packet as a mobile user would have sent it and list it as pending, as the
        real portal does: a data packet is listed by its JSON rendition's path and stored in
        both renditions (`renditions.py`); a file keeps its own path."""
        queue = self.queue(app_area)
        if format not in ("xml", "json") or packet_type not in ("data", "image"):
            raise ValueError("format must be xml|json and packet_type data|image")
        if not user:
            raise ValueError("user is required")
        # Any id string is listed as given (even "" — a buggy portal's); None picks a GUID.
        packet_id = str(uuid.uuid4()) if packet_id is None else packet_id
        day = datetime.fromtimestamp(self.clock.now(), UTC).strftime("%Y%m%d")
        if packet_type == "image":
            url = file_key(app_area, day, user, packet_id)
            self._store(app_area, url, body, "image/jpeg")
        else:
            url, xml_key = data_keys(app_area, day, user, packet_id)
            as_json, as_xml = renditions(body, format)
            self._store(app_area, url, as_json, "application/json")
            self._store(app_area, xml_key, as_xml, "application/xml")
        queue.add(
            Message(
                id=packet_id,
                url=url,
                user_name=user,
                on_date=iso_ms(self.clock.now()),
                size=len(body),
                company_id=company_id,
                packet_type=packet_type,
                operation=operation,
            )
        )
        return packet_id

    def enqueue_file(
        self,
        app_area: str,
        path: str | os.PathLike[str],
        *,
        user: str | None = None,
        packet_type: Literal["data", "image"] = "data",
    ) -> str:
        """Enqueue a packet file. The user comes from `salesmancode` (or a vendor `.meta`
        file next to it) unless given; a UUID file name becomes the packet id."""
        path = Path(path)
        body = path.read_bytes()
        meta = _meta(path)
        fmt: Literal["xml", "json"] = "json" if path.suffix.lower() == ".json" else "xml"
        user = user or meta.get("userName") or (salesman(body) if packet_type == "data" else None)
        if not user:
            raise ValueError(f"{path.name}: no user given and no salesmancode in the packet")
        try:
            packet_id: str | None = str(uuid.UUID(path.stem))
        except ValueError:
            packet_id = None
        return self.enqueue(
            app_area,
            body,
            user=user,
            packet_id=packet_id,
            format=fmt,
            packet_type=packet_type,
            operation=meta.get("operation"),
            company_id=meta.get("companyId") or "CRONUS",
        )

    # --- what happened -----------------------------------------------------------------------

    def pending(self, app_area: str) -> list[str]:
        return self.queue(app_area).pending_ids()

    def done_ids(self, app_area: str) -> list[str]:
        return self.queue(app_area).done_ids()

    def done_calls(self, app_area: str) -> list[DoneCall]:
        with self._lock:
            return list(self._done_calls[app_area])

    def uploads(self, app_area: str) -> list[Upload]:
        """Pushed packets whose bytes reached storage, oldest first."""
        with self._lock:
            keys = list(dict.fromkeys(self._uploaded))
            slots = [(k, self._slots[k]) for k in keys if self._slots[k].app_area == app_area]
        return [
            Upload(
                user=s.user,
                packet_unique_id=s.packet_unique_id,
                packet_type=s.packet_type,
                body=self.storage.get(key),
                declared_size=s.size,
                sync_log_id=s.sync_log_id,
            )
            for key, s in slots
        ]

    def requests(self) -> list[LoggedRequest]:
        """Every request the API and the storage front saw (admin calls excluded)."""
        return self._log.entries()

    # --- used by the routes ------------------------------------------------------------------

    def queue(self, app_area: str) -> PendingQueue:
        try:
            return self._queues[app_area]
        except KeyError:
            raise KeyError(f"unknown app area {app_area!r}") from None

    def has_object(self, app_area: str, key: str) -> bool:
        with self._lock:
            return key in self._objects.get(app_area, ())

    def record_done(self, app_area: str, call: DoneCall) -> None:
        with self._lock:
            self._done_calls[app_area].append(call)

    def open_upload(
        self, app_area: str, *, user: str, packet_unique_id: str, packet_type: str, size: int
    ) -> tuple[str, str]:
        """Register an upload slot; returns (syncLogId, presigned PUT URL)."""
        day = datetime.fromtimestamp(self.clock.now(), UTC).strftime("%Y%m%d")
        key = f"push/{packet_type}/prod/{app_area}/{day}/{user}/{packet_unique_id}.{packet_type}"
        slot = _Slot(app_area, user, packet_unique_id, packet_type, size, str(uuid.uuid4()))
        with self._lock:
            self._slots[key] = slot
        return slot.sync_log_id, self.storage.presign("PUT", key)

    def _uploaded_key(self, key: str) -> None:
        with self._lock:
            if key in self._slots:
                self._uploaded.append(key)

    def _store(self, app_area: str, key: str, body: bytes, content_type: str = "") -> None:
        self.storage.put(key, body, content_type or "application/octet-stream")
        with self._lock:
            self._objects[app_area].add(key)


def salesman(body: bytes) -> str | None:
    """The root `salesmancode` (any casing) of an XML or JSON packet, if readable."""
    try:
        if body.lstrip().startswith(b"<"):
            attrs = etree.fromstring(body, parser=_SAFE_PARSER).attrib
        else:
            attrs = orjson.loads(body)
            if not isinstance(attrs, dict):
                return None
    except (etree.XMLSyntaxError, orjson.JSONDecodeError):
        return None
    for key, value in attrs.items():
        if str(key).lower() == "salesmancode" and isinstance(value, str):
            return value
    return None


def _meta(path: Path) -> dict[str, str]:
    meta = path.with_name(path.name + ".meta")
    if not meta.is_file():
        return {}
    data = orjson.loads(meta.read_bytes())
    return {k: v for k, v in data.items() if isinstance(v, str)} if isinstance(data, dict) else {}
