"""What the CRM emulators share on top of the sandbox's base (`sandbox.base`: server thread,
request log, JSON answers): fault switches (a 429 storm, holding requests to observe
concurrency, writes that commit after the client gave up: `commit_late`).

An emulator subclasses `Emulator`, implements `dispatch()` and is used as a context manager:

    with DataverseEmulator() as dv:
        client = DataverseClient(dv.url, ...)
"""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Request, Response

from packetworker.sandbox.base import (
    WAIT_TIMEOUT,
    LoggedRequest,
    RequestLog,
    ServerThread,
    redacted_headers,
)
from packetworker.sandbox.base import json_response as _json_response
from packetworker.sandbox.faults import Faults
from packetworker.sandbox.late import LateCommits

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def json_response(
    status: int, payload: Any = None, headers: dict[str, str] | None = None
) -> Response:
    """The CRMs' JSON answer (`sandbox.base.json_response`, UTF-8 declared)."""
    return _json_response(status, payload, headers, content_type="application/json; charset=utf-8")


class Emulator:
    """Base of the CRM emulators: serving, logging, faults. Subclasses implement `dispatch`."""

    def __init__(self) -> None:
        self._log = RequestLog()
        self.faults = Faults()
        self._server: ServerThread | None = None
        self.late = LateCommits(dropped=self.late_dropped)

    # subclasses -----------------------------------------------------------------------------

    def dispatch(self, request: Request) -> Response:
        raise NotImplementedError

    def is_api(self, request: Request) -> bool:
        """Whether faults apply to this request (token endpoints are usually exempt)."""
        return True

    def throttled(self, retry_after: int) -> Response:
        return json_response(
            429, {"message": "Too many requests"}, {"Retry-After": str(retry_after)}
        )

    def late_dropped(self) -> Response:
        """The answer to a held write the service dropped (`release_late(commit=False)`).
        None of the CRMs documents one; a gateway's 504 is the generic "gave up" answer."""
        return json_response(504, {"message": "Gateway Timeout"})

    # writes that commit late ---------------------------------------------------------------

    def commit_late(self, times: int = 1, *, after: int = 0) -> None:
        """The next `times` API write requests (POST, PUT, PATCH, DELETE), once `after` more
        have run, are accepted and held, not yet run, until `release_late`: the client times
        out, a look-up meanwhile does not see them, and they commit when released."""
        self.late.arm(times, after=after)

    def wait_held(self, count: int = 1, timeout: float = WAIT_TIMEOUT) -> bool:
        return self.late.wait_held(count, timeout)

    @property
    def held(self) -> int:
        return self.late.held

    def release_late(self, *, commit: bool = True) -> int:
        """Run and commit the held writes, or drop them (`commit=False`, answered with
        `late_dropped()`); returns once they have finished, with how many there were."""
        return self.late.release(commit=commit, timeout=WAIT_TIMEOUT)

    # serving --------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the emulator is not running; use it as a context manager")
        return self._server.base_url

    @property
    def requests(self) -> RequestLog:
        """Every request so far, in arrival order."""
        return self._log

    def __enter__(self):
        self._server = ServerThread(self._wsgi)
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.faults.release()
        self.late.close()
        if self._server is not None:
            self._server.stop()

    def requests_to(self, method: str, path_part: str = "") -> list[LoggedRequest]:
        """Logged requests with `method` whose path contains `path_part`."""
        return [r for r in self.requests if r.method == method and path_part in r.path]

    def _wsgi(self, environ, start_response):
        request = Request(environ)
        body = request.get_data(cache=True)
        self._log.add(
            LoggedRequest(
                request.method,
                request.path,
                request.query_string.decode(),
                headers=redacted_headers(dict(request.headers.items())),
                body=body,
            )
        )
        if not self.is_api(request):
            return self.dispatch(request)(environ, start_response)
        with self.faults.track():
            # Status faults only (`fail`, `storm`, `add`); a slow or dropped answer is the
            # portal sandbox's (`sandbox.wsgi`).
            fault = self.faults.take(request.path, request.query_string.decode())
            if fault is not None and fault.status == 429:
                response = self.throttled(int(float(fault.retry_after or 1)))
            elif fault is not None and fault.kind == "status":
                response = json_response(fault.status, {"message": "Service Unavailable"})
            elif request.method in WRITE_METHODS:
                response = self.late.run(lambda: self.dispatch(request))
            else:
                response = self.dispatch(request)
        return response(environ, start_response)
