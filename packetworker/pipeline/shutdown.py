"""Graceful shutdown when the whole process group is signalled, as Heroku and honcho do.

Heroku (and honcho, and a terminal) send SIGTERM to *every* process of the group. Each
dramatiq worker process therefore gets it twice: once from the group, once forwarded by the
dramatiq main process. dramatiq's handler in the worker process (`dramatiq/cli.py`,
`worker_process.termhandler`) takes the second one as "kill now" and exits with work in
flight, so the shutdown grace never happens.

`GracefulShutdown` wraps that handler once the worker process has booted: the first SIGTERM
(or SIGHUP) goes to dramatiq, which stops taking messages and gives in-flight ones
`worker_shutdown_timeout_ms`; repeats within that grace are logged and ignored; one after it
still reaches dramatiq's handler and kills, so an operator can insist.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

import dramatiq
from dramatiq.middleware import Middleware

logger = logging.getLogger(__name__)

#: The signals dramatiq's worker-process handler treats as "stop, then kill on a repeat".
GUARDED_SIGNALS = tuple(
    sig for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)) if sig is not None
)

Handler = Callable[[int, FrameType | None], Any]


class RepeatGuard:
    """A signal handler passing the first signal to `handler` and ignoring repeats within
    `grace` seconds of it (counted with `clock`)."""

    def __init__(
        self, handler: Handler, *, grace: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.handler = handler
        self.grace = grace
        self.clock = clock
        self.first: float | None = None

    def __call__(self, signum: int, frame: FrameType | None) -> Any:
        now = self.clock()
        if self.first is None:
            self.first = now
            return self.handler(signum, frame)
        left = self.first + self.grace - now
        if left > 0:
            logger.info(
                "%s again while stopping (the process group and dramatiq both send it); "
                "ignored, in-flight work has %.0fs left.",
                signal.Signals(signum).name,
                left,
            )
            return None
        return self.handler(signum, frame)


class GracefulShutdown(Middleware):
    """Installs a `RepeatGuard` over dramatiq's handlers in each worker process at boot."""

    def __init__(self, *, grace_ms: int) -> None:
        self.grace = grace_ms / 1000

    def after_process_boot(self, broker: dramatiq.Broker) -> None:
        # Only the dramatiq CLI's worker processes emit process_boot, from their main thread,
        # after installing their handlers; anything else is left as it is.
        if threading.current_thread() is not threading.main_thread():
            return
        term = signal.getsignal(signal.SIGTERM)
        if not callable(term) or isinstance(term, RepeatGuard):
            return
        # One guard for every signal sharing dramatiq's handler: a SIGHUP after a SIGTERM is
        # a repeat too.
        guard = RepeatGuard(term, grace=self.grace)
        for sig in GUARDED_SIGNALS:
            if signal.getsignal(sig) is term:
                signal.signal(sig, guard)
