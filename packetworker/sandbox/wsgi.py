"""The portal sandbox's fronts (API, storage) wrapped in its request log and scripted faults."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from packetworker.sandbox.base import LoggedRequest, RequestLog, json_response, redacted_headers
from packetworker.sandbox.faults import Faults

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class Instrumented:
    """Wraps an app: logs each request and applies scripted faults before the app runs; a
    request is counted in flight (and held there by `faults.hold`) until the app answers.

    Paths under `exempt_prefix` (the admin API) are neither logged nor faulted, so driving
    the sandbox never consumes a fault meant for the code under test.
    """

    def __init__(
        self,
        app: WSGIApp,
        *,
        server: str,
        faults: Faults,
        log: RequestLog,
        stopping: threading.Event,
        exempt_prefix: str | None = None,
    ) -> None:
        self.app = app
        self.server = server
        self.faults = faults
        self.log = log
        self.stopping = stopping
        self.exempt_prefix = exempt_prefix

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "")
        if self.exempt_prefix and path.startswith(self.exempt_prefix):
            return self.app(environ, start_response)
        method = environ.get("REQUEST_METHOD", "")
        headers = _headers(environ)

        def record(status: int) -> None:
            self.log.add(
                LoggedRequest(method, path, status=status, headers=headers, server=self.server)
            )

        fault = self.faults.take(path, environ.get("QUERY_STRING", ""))
        if fault is not None and fault.kind == "refuse":
            record(0)
            return _drop_connection(environ, start_response)
        if fault is not None and fault.kind == "status":
            record(fault.status)
            extra = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            message = {"message": f"sandbox fault {fault.status}"}
            response = json_response(fault.status, message, extra)
            return response(environ, start_response)
        if fault is not None and fault.kind == "slow":
            self.stopping.wait(fault.seconds)  # interruptible, so stop() is never held up

        def logging_start_response(status: str, *args: Any) -> Any:
            record(int(status.split(" ", 1)[0]))
            return start_response(status, *args)

        with self.faults.track():
            body = self.app(environ, logging_start_response)
        if fault is not None and fault.kind == "trickle":
            return self._trickle(body, fault.piece_bytes, fault.seconds)
        return body

    def _trickle(self, body: Iterable[bytes], piece: int, seconds: float) -> Iterator[bytes]:
        """`body` in pieces of `piece` bytes, `seconds` apart (until the sandbox stops)."""
        try:
            for chunk in body:
                for start in range(0, len(chunk), piece):
                    if self.stopping.wait(seconds):
                        return
                    yield chunk[start : start + piece]
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()


def _drop_connection(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    sock = environ.get("werkzeug.socket")
    if sock is not None:
        with contextlib.suppress(OSError):  # the client may have gone already
            sock.shutdown(socket.SHUT_RDWR)
    # The server's attempt to write this answer fails on the closed socket and is dropped.
    start_response("500 Connection Dropped", [("Content-Length", "0")])
    return [b""]


def _headers(environ: dict[str, Any]) -> dict[str, str]:
    """The request's headers (lower-case names), credential values redacted."""
    headers = {
        k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")
    }
    headers.update(
        (k.replace("_", "-").lower(), environ[k])
        for k in ("CONTENT_TYPE", "CONTENT_LENGTH")
        if environ.get(k)
    )
    return redacted_headers(headers)
