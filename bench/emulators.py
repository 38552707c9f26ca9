"""Emulators in processes of their own for benchmarks, and the worker deployment
(`bench_deployment`) whose drain of a portal backlog they time (`timed_drain`).

A benchmark that ran the portal and BC emulators in its own process measured them too: they
took most of a core, under one GIL, on the cores the worker processes need. `Emulator` starts
one emulator (`portal`: the portal sandbox with its storage; `bc`: the BC sandbox) in a child
Python process on a free loopback port and drives it over its `/_sandbox/` admin API:

    with Emulator("bc", latency=0.15) as bc:                  # BCSandbox(**options)
        bc.admin("POST", "entities/customers", json={"number": "C-1"})
        deployment = Deployment(..., **bc_settings(bc))          # its BC_* settings
        ...
        bc.admin("GET", "counters")   # requests, statuses, maxInFlight, maxQueued
        bc.cpu_seconds()              # the emulator's own CPU, apart from the workers'

`facts` holds what a client needs: for `portal` url, admin_url (its `/_sandbox` base) and
storage_hosts; for `bc` admin_url, api_url, token_url, tenant, environment, client_id and
client_secret. The admin endpoints are listed in `packetworker/sandbox/admin.py` (portal)
and `packetworker/sandbox/bc/admin.py` (BC). Options must be JSON (no clock objects); `pid`
is the child's, for its CPU or memory. The child stops on SIGTERM (`__exit__`).

    python bench/emulators.py {portal|bc} '{"option": value, ...}'   # the child's side
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the e2e harness runs the worker processes

from packetworker.settings import Settings  # noqa: E402
from tests.pipeline.e2e.harness import FAST, Deployment, wait_for  # noqa: E402

KINDS = ("portal", "bc")


def cpu_seconds(pid: int) -> float:
    """CPU seconds used so far by a process and its children."""
    root = psutil.Process(pid)
    return sum(sum(p.cpu_times()[:2]) for p in [root, *root.children(recursive=True)])


class Emulator:
    """One emulator (`kind` in KINDS) in a child process; `options` go to its constructor."""

    def __init__(self, kind: str, **options: Any) -> None:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        self.kind = kind
        self.options = options
        self.facts: dict[str, Any] = {}
        self._process: subprocess.Popen | None = None
        self._http: httpx.Client | None = None

    def __enter__(self) -> Emulator:
        argv = [sys.executable, str(Path(__file__)), self.kind, json.dumps(self.options)]
        self._process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        try:
            line = self._process.stdout.readline()  # the child's facts, once it listens
            if not line:
                raise RuntimeError(f"the {self.kind} emulator exited before it listened")
            self.facts = json.loads(line)
        except BaseException:
            self.__exit__()
            raise
        self._http = httpx.Client(base_url=f"{self.facts['admin_url']}/", timeout=60)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._http is not None:
            self._http.close()
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    @property
    def pid(self) -> int:
        return self._process.pid

    def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call `<admin_url>/<path>`; its JSON answer (None when empty). Raises on 4xx/5xx."""
        response = self._http.request(method, path, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)


def bc_settings(bc: Emulator, *, company: str = "CRONUS") -> dict[str, str]:
    """The worker's `bc_*` settings to reach `bc` (upper-cased, its environment variables)."""
    names = ("api_url", "token_url", "tenant", "environment", "client_id", "client_secret")
    return {**{f"bc_{name}": bc.facts[name] for name in names}, "bc_company": company}


def bench_deployment(
    root: Path, portal: Emulator, *, app_area: str, api_key: str, **settings: Any
) -> Deployment:
    """A `Deployment` of the worker against `portal` with production settings, not the test
    harness's short timings (made for crash tests: a 3 s packet lock and stale sweep re-send
    packets still queued, and a 1 s longest retry delay sends a packet waiting for BC's
    window to the dead-letter queue), but for a fast poll, a refused listing ending the poll
    (the next tick tries again) and WARNING logs."""
    defaults = {
        **{name: Settings.model_fields[name].default for name in FAST},
        "redis_url": os.environ.get("REDIS_URL", "redis://localhost:6379/0"),
        "log_level": "WARNING",
        "dm_poll_interval": 0.2,
        "dm_poll_jitter": 0.0,
        "dm_http_retries": 1,
    }
    return Deployment(
        root=root,
        portal_url=portal.facts["url"],
        api_key=api_key,
        app_area=app_area,
        **{**defaults, **settings},
    )


def enqueue(portal: Emulator, app_area: str, packets: Iterable[bytes], *, user: str) -> None:
    """List `packets` as pending in `portal`, sent by `user`."""
    for body in packets:
        portal.admin("POST", "enqueue", params={"app_area": app_area, "user": user}, content=body)


def timed_drain(
    deployment: Deployment,
    portal: Emulator,
    *,
    app_area: str,
    count: int,
    processes: int,
    threads: int,
    on_start: Any = None,
) -> tuple[float, float]:
    """Seconds for `deployment` (clock + `processes` worker processes) to apply and
    acknowledge `count` more packets already pending in `portal`, and the cores the worker
    processes used meanwhile. Listings answer 503 while the processes start, so only the
    work is timed; `on_start()` runs just before the clock starts (e.g. to add latency)."""
    listing = f"/mobile/erp/pull/{app_area}"

    def counters() -> dict:
        return portal.admin("GET", "counters", params={"app_area": app_area})

    refused_before = counters()["statuses"].get("503", 0)
    done_before = counters()["done"]
    portal.admin("POST", "faults", json={"status": 503, "count": 10**9, "pathPrefix": listing})
    worker = deployment.start_worker(processes=processes, threads=threads)
    deployment.start_clock()
    wait_for(
        lambda: (
            deployment.redis.zcard(f"{deployment.namespace}:__heartbeats__") >= processes
            and counters()["statuses"].get("503", 0) - refused_before >= 3
        ),
        timeout=60,
        what=f"{processes} worker processes polling",
    )
    portal.admin("DELETE", "faults")
    if on_start is not None:
        on_start()
    started, workers_cpu = time.perf_counter(), cpu_seconds(worker.pid)
    wait_for(
        lambda: counters()["done"] - done_before >= count,
        timeout=1800,
        what=f"{count} packets acknowledged",
        interval=0.1,
    )
    seconds = time.perf_counter() - started
    workers_cpu = (cpu_seconds(worker.pid) - workers_cpu) / seconds
    worker.terminate(timeout=30)
    return seconds, workers_cpu


def _facts(kind: str, emulator: Any) -> dict[str, Any]:
    if kind == "portal":
        return {
            "url": emulator.url,
            "admin_url": emulator.admin_url,
            "storage_hosts": emulator.storage_hosts,
        }
    return {
        "admin_url": f"{emulator.root}/_sandbox",
        **{
            name: getattr(emulator, name)
            for name in ("api_url", "token_url", "tenant", "environment")
        },
        "client_id": emulator.client_id,
        "client_secret": emulator.client_secret,
    }


def serve(kind: str, options: dict[str, Any]) -> None:
    """The child's side: run the emulator, print its facts as one JSON line, stop on
    SIGTERM or SIGINT."""
    if kind == "portal":
        from packetworker.sandbox import PortalSandbox as emulator_class
    else:
        from packetworker.sandbox.bc import BCSandbox as emulator_class
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    with emulator_class(**options) as emulator:
        print(json.dumps(_facts(kind, emulator)), flush=True)
        stop.wait()


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in KINDS:
        raise SystemExit(f"usage: {os.path.basename(__file__)} {{portal|bc}} OPTIONS_JSON")
    serve(sys.argv[1], json.loads(sys.argv[2]))
