"""One request budget per remote account: how many requests may be in flight, and how many
may start per sliding window, shared by every client (and, with a shared limiter, by every
process) that spends it.

Business Central allows 5 running requests and 6,000 per 5-minute sliding window *per user*
(business-central.md §5.4); Dataverse 52 concurrent and 6,000 per 5 minutes (crm.md). The
clients (portal, BC, CRM) take a `RequestLimiter` and send through `BudgetedTransport`, which
holds one slot per HTTP request from the moment it is sent until its answer is read or it
fails: a `$batch` of 100 operations takes one slot, like any other request.

Waiting for a slot is bounded. When no slot comes free in time the transport raises
`SlotUnavailable`, an `httpx.PoolTimeout`: the request was never sent, exactly as when
httpx's own pool has no free connection. Clients pass it through without spending a retry,
and the pipeline reschedules the packet without counting a failed attempt.

`LocalLimiter` is the in-process limiter (tests, replay, a single process); the pipeline
injects one shared through Redis (`packetworker.pipeline.limits`). A client built while
`using_limiters(...)` is in force takes its limiter from there (`limiter_for`).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Protocol

import httpx

from packetworker.errors import PacketworkerError

Release = Callable[[], None]

#: Sliding window of the services' per-user rate limits (BC and Dataverse: 5 minutes).
WINDOW_SECONDS = 300.0


class SlotUnavailable(httpx.PoolTimeout, PacketworkerError):
    """No request slot came free within the wait bound; the request was not sent.

    `retry_after` is when a slot is expected (seconds), a hint for rescheduling."""

    transient = True

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = max(0.0, retry_after)

    def __reduce__(self):
        return (_rebuild, (str(self), self.retry_after))


def _rebuild(message: str, retry_after: float) -> SlotUnavailable:
    return SlotUnavailable(message, retry_after=retry_after)


class RequestLimiter(Protocol):
    """Hands out request slots: `acquire()` waits (bounded) for one and returns the function
    that gives it back (safe to call more than once), or raises `SlotUnavailable`."""

    def acquire(self) -> Release: ...


class LocalLimiter:
    """A `RequestLimiter` for the threads of one process.

    At most `max_in_flight` slots held at once, and at most `per_window` acquisitions in any
    `window` seconds (0: no window). `wait` bounds how long `acquire` waits.
    """

    def __init__(
        self,
        max_in_flight: int,
        *,
        per_window: int = 0,
        window: float = WINDOW_SECONDS,
        wait: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self.max_in_flight = max_in_flight
        self.per_window = per_window
        self.window = window
        self.wait = wait
        self._clock = clock
        self._held = 0
        self._starts: deque[float] = deque()
        self._changed = threading.Condition()

    def acquire(self) -> Release:
        deadline = self._clock() + self.wait
        with self._changed:
            while True:
                delay = self._delay()
                if delay == 0:
                    break
                remaining = deadline - self._clock()
                if remaining <= 0:
                    raise SlotUnavailable(
                        f"no request slot within {self.wait:g} s", retry_after=delay
                    )
                self._changed.wait(min(delay, remaining))
            self._held += 1
            if self.per_window:
                self._starts.append(self._clock())
        return _once(self._release)

    def _delay(self) -> float:
        """0 when a slot is free now, else the seconds until one may be (an estimate)."""
        if self.per_window:
            horizon = self._clock() - self.window
            while self._starts and self._starts[0] <= horizon:
                self._starts.popleft()
            if len(self._starts) >= self.per_window:
                return max(self._starts[0] - horizon, 1e-3)
        return 0.0 if self._held < self.max_in_flight else 1.0

    def _release(self) -> None:
        with self._changed:
            self._held -= 1
            self._changed.notify()


def _once(release: Release) -> Release:
    lock = threading.Lock()
    done = False

    def give_back() -> None:
        nonlocal done
        with lock:
            if done:
                return
            done = True
        release()

    return give_back


class BudgetedTransport(httpx.BaseTransport):
    """Sends each request through `inner` while holding a slot of `limiter`: taken before
    the request goes out, given back when its answer has been read (or the request failed)."""

    def __init__(self, inner: httpx.BaseTransport, limiter: RequestLimiter) -> None:
        self.inner = inner
        self.limiter = limiter

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        release = self.limiter.acquire()
        try:
            response = self.inner.handle_request(request)
        except BaseException:
            release()
            raise
        if response.is_closed:  # read in full already (e.g. a body given as bytes)
            release()
        else:
            response.stream = _ReleasingStream(response.stream, release)
        return response

    def close(self) -> None:
        self.inner.close()


class _ReleasingStream(httpx.SyncByteStream):
    def __init__(self, stream: httpx.SyncByteStream, release: Release) -> None:
        self._stream = stream
        self._release = release

    def __iter__(self) -> Iterator[bytes]:
        yield from self._stream

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            self._release()


def budgeted(
    transport: httpx.BaseTransport | None,
    limiter: RequestLimiter | None,
    *,
    limits: httpx.Limits | None = None,
) -> httpx.BaseTransport | None:
    """`transport` (or httpx's default one, with `limits`) behind `limiter`; unchanged
    when there is no limiter."""
    if limiter is None:
        return transport
    inner = transport or httpx.HTTPTransport(limits=limits or httpx.Limits())
    return BudgetedTransport(inner, limiter)


_IN_USE: ContextVar[Mapping[str, RequestLimiter] | None] = ContextVar("limiters", default=None)


@contextmanager
def using_limiters(limiters: Mapping[str, RequestLimiter]) -> Iterator[None]:
    """Clients built inside this block take their limiter from `limiters`, by service name
    (`"bc"`, `"dataverse"`, `"portal:<app area>"`)."""
    token = _IN_USE.set(limiters)
    try:
        yield
    finally:
        _IN_USE.reset(token)


def limiter_for(service: str) -> RequestLimiter | None:
    """The limiter injected for `service` (see `using_limiters`), None when there is none."""
    limiters = _IN_USE.get()
    return limiters.get(service) if limiters is not None else None
