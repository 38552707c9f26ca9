"""`serve_forever`: run a portal sandbox in the foreground (the `packetworker sandbox` CLI)."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

from packetworker.sandbox.portal_sandbox import PortalSandbox


def serve_forever(
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    app_area: str = "DEMO",
    api_key: str = "demo-key",
    link_ttl: float = 900,
    samples: list[Path] | None = None,
    user: str | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Start a sandbox, print how to reach it, enqueue `samples` (as `user`, else each one's
    salesmancode), block until Ctrl-C/SIGTERM (or until `stop` is set, for callers that run
    it in a thread). A sample without a user raises ValueError before anything is served."""
    stop = stop or threading.Event()
    with PortalSandbox(
        app_areas={app_area: api_key}, link_ttl=link_ttl, host=host, port=port
    ) as sandbox:
        # Before anything is printed: a sample without a user stops the start-up.
        enqueued = [
            (sample, sandbox.enqueue_file(app_area, sample, user=user)) for sample in samples or []
        ]
        # flush: a supervisor or test reading our stdout through a pipe needs these lines now.
        print(f"Dynamics Mobile sandbox at {sandbox.url}", flush=True)
        print(f"  app area: {app_area}   x-api-key: {api_key}", flush=True)
        print(f"  admin API: {sandbox.admin_url}/ (state, enqueue, faults, clock)", flush=True)
        # Its storage links are plain http on loopback, which workers refuse unless told.
        print(
            f"  use it: export DM_API_URL={sandbox.url}"
            f" DM_APP_AREA={app_area} DM_API_KEY={api_key}"
            f" DM_STORAGE_HTTP_HOSTS={sandbox.storage_hosts}",
            flush=True,
        )
        print(
            f"  feed it: packetworker sandbox enqueue FILE... [--user USER] --url {sandbox.url}",
            flush=True,
        )
        for sample, packet_id in enqueued:
            print(f"  enqueued {sample.name} as {packet_id}", flush=True)
        previous = {}
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                previous[signum] = signal.signal(signum, lambda *_: stop.set())
        try:
            stop.wait()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
