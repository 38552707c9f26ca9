"""What every emulator of the sandbox stands on: a server thread on loopback, the request log,
JSON answers and the clock tests move. (Faults: `sandbox.faults`; writes that commit late:
`sandbox.late`.) Each emulator keeps its own rules, with their sources, on top of these.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Response

from packetworker.redact import redact_text

log = logging.getLogger("packetworker.sandbox")

#: Seconds any emulator-side wait gives up after (never hangs a test or a stop).
WAIT_TIMEOUT = 10.0


# --- serving ---------------------------------------------------------------------------------


class QuietHandler(WSGIRequestHandler):
    """No access log (request lines may hold presigned URLs); errors are redacted."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass

    def log(self, type: str, message: str, *args: Any) -> None:  # werkzeug's signature
        if type == "error":
            log.debug("sandbox server: %s", redact_text(message % args if args else message))


class ServerThread:
    """A werkzeug server serving `app` from a daemon thread until `stop()`."""

    def __init__(self, app: Any, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server: BaseWSGIServer = make_server(
            host, port, app, threaded=True, request_handler=QuietHandler
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"sandbox-{self.port}",
            daemon=True,
        )

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=WAIT_TIMEOUT)
        self._server.server_close()


def json_response(
    status: int,
    payload: Any = None,
    headers: Mapping[str, str] | None = None,
    *,
    content_type: str = "application/json",
) -> Response:
    """A JSON answer; `None` is an empty body (and no content type)."""
    body = b"" if payload is None else json.dumps(payload).encode()
    response = Response(body, status=status, headers=dict(headers or {}))
    if payload is not None:
        response.content_type = content_type
    return response


# --- the request log -------------------------------------------------------------------------


@dataclass(frozen=True)
class LoggedRequest:
    """One request as an emulator saw it. Header values are redacted (no key or token is
    kept); `status` is 0 when the connection was dropped on purpose or the emulator logs
    before it answers."""

    method: str
    path: str
    query: str = ""
    status: int = 0
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    server: str = ""  # which front of a sandbox with several (portal: "portal", "storage")
    user: str | None = None  # who the request authenticated as, where the emulator knows

    @property
    def header_names(self) -> frozenset[str]:
        return frozenset(name.lower() for name in self.headers)

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


def redacted_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """`headers` with every credential value masked (`packetworker.redact`)."""
    return {k: redact_text(f"{k}: {v}").split(": ", 1)[1] for k, v in headers.items()}


class RequestLog:
    """Thread-safe list of `LoggedRequest`: appended to by the server, read (iterated,
    counted, indexed) and cleared by tests."""

    def __init__(self) -> None:
        self._entries: list[LoggedRequest] = []
        self._lock = threading.Lock()

    def add(self, entry: LoggedRequest) -> None:
        with self._lock:
            self._entries.append(entry)

    def entries(self) -> list[LoggedRequest]:
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __iter__(self) -> Iterator[LoggedRequest]:
        return iter(self.entries())

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __getitem__(self, index: int) -> LoggedRequest:
        with self._lock:
            return self._entries[index]


# --- the clock -------------------------------------------------------------------------------


class Clock:
    """The time an emulator reads for expiry, visibility and timestamps; tests move it
    forward with `advance()` instead of waiting.

    By default wall-clock time plus the offset; `frozen` (or a `start`) stands still until
    advanced. `now()` is epoch seconds; calling the clock gives an aware UTC `datetime`.
    """

    def __init__(self, start: datetime | None = None, *, frozen: bool = False) -> None:
        self._start = start or (datetime.now(UTC) if frozen else None)
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            base = self._start.timestamp() if self._start is not None else time.time()
            return base + self._offset

    def __call__(self) -> datetime:
        with self._lock:
            if self._start is not None:
                return self._start + timedelta(seconds=self._offset)
        return datetime.fromtimestamp(self.now(), UTC)

    @property
    def offset(self) -> float:
        """Seconds this clock has been moved forward."""
        with self._lock:
            return self._offset

    def advance(self, seconds: float) -> datetime:
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._offset += seconds
        return self()
