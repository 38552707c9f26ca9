"""End-to-end throughput of the Dramatiq pipeline against the portal sandbox.

Measures packets/s from "N packets pending in the portal" to "all applied and acknowledged"
for 1, 2 and 4 worker processes, next to a naive sequential loop doing the same client calls
(pull, link, download, read, apply to the recording target, done per packet). Prints each as
a ratio against that loop, measured in the same run. Loopback only; Redis from REDIS_URL.

The portal sandbox runs in a process of its own (`bench/emulators.py`), on the same cores.
Run twice: with no added latency, which measures CPU (the sandbox's own included), and with
a per-request latency like a real portal across the internet (`--latency`, default 30 ms),
where the worker's concurrency is what counts.

    python bench/bench_pipeline.py [--packets 300] [--threads 4] [--latency 0.03]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the e2e harness runs the worker processes

from bench.emulators import Emulator, bench_deployment, enqueue, timed_drain  # noqa: E402
from packetworker.packets.reader import open_packet  # noqa: E402
from packetworker.portal import PortalClient  # noqa: E402
from packetworker.portal.links import rendition_path  # noqa: E402
from packetworker.targets.base import ApplyContext  # noqa: E402
from packetworker.targets.recording import RecordingTarget  # noqa: E402

APP_AREA = "BENCH"
API_KEY = "bench-api-key-0123456789"


def order_packet(number: int, *, lines: int = 3) -> bytes:
    rows = "".join(
        f'<r status="insert"><DMS_ROWID>{uuid.uuid4()}</DMS_ROWID>'
        f"<DocumentNo>SO-{number:05d}</DocumentNo><LineNo>{line}</LineNo>"
        f"<ItemNo>ITEM-{line:03d}</ItemNo><Quantity>{line + 1}</Quantity></r>"
        for line in range(lines)
    )
    return (
        f'<NavMobileSync salesmancode="rep-1"><table tablename="SalesLine" name="SalesLine">'
        f"{rows}</table></NavMobileSync>"
    ).encode()


def fill(portal: Emulator, count: int) -> None:
    enqueue(portal, APP_AREA, map(order_packet, range(count)), user="rep-1")


def add_latency(portal: Emulator, seconds: float) -> None:
    """Every later request answers `seconds` late (faults added earlier still come first)."""
    if seconds > 0:
        portal.admin("POST", "faults", json={"slow": seconds, "count": 10**9})


def naive_loop(
    portal: Emulator, count: int, workdir: Path, *, latency: float
) -> tuple[float, float]:
    """Seconds for one process doing every call in sequence, one done call per packet, and
    the cores the loop and the sandbox used meanwhile."""
    fill(portal, count)
    portal.admin("DELETE", "faults")
    add_latency(portal, latency)
    target = RecordingTarget(path=workdir / "naive.jsonl")
    started = time.perf_counter()
    cpu = time.process_time() + portal.cpu_seconds()
    with PortalClient(
        base_url=portal.facts["url"],
        app_area=APP_AREA,
        api_key=API_KEY,
        storage_hosts=[portal.facts["storage_hosts"]],  # its links are http on loopback
    ) as client:
        while portal.admin("GET", "counters", params={"app_area": APP_AREA})["pending"]:
            for entry in client.pull():
                body = io.BytesIO()
                client.download(client.link(rendition_path(entry.url)), body)
                body.seek(0)
                with open_packet(body) as packet:
                    records = list(packet)
                ctx = ApplyContext(app_area=APP_AREA, packet_id=entry.id, user=entry.user_name)
                target.apply(records, ctx=ctx)
                client.done([entry])
    elapsed = time.perf_counter() - started
    both_cpu = (time.process_time() + portal.cpu_seconds() - cpu) / elapsed
    portal.admin("DELETE", "faults")
    target.close()
    return elapsed, both_cpu


def pipeline(
    portal: Emulator,
    count: int,
    workdir: Path,
    *,
    processes: int,
    threads: int,
    latency: float,
) -> tuple[float, float, float]:
    """Seconds for the deployment (clock + worker processes) to apply and ack `count`, and
    the cores the sandbox and the worker processes used meanwhile."""
    deployment = bench_deployment(workdir, portal, app_area=APP_AREA, api_key=API_KEY)
    start: dict = {}

    def on_start() -> None:
        add_latency(portal, latency)
        start["cpu"] = portal.cpu_seconds()

    try:
        fill(portal, count)
        seconds, workers = timed_drain(
            deployment, portal, app_area=APP_AREA, count=count, processes=processes,
            threads=threads, on_start=on_start,
        )  # fmt: skip
        sandbox_cpu = (portal.cpu_seconds() - start["cpu"]) / seconds
        portal.admin("DELETE", "faults")
        return seconds, sandbox_cpu, workers
    finally:
        deployment.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packets", type=int, default=300)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--latency", type=float, default=0.03, help="seconds per request")
    args = parser.parse_args()
    print(f"packets: {args.packets}, threads per process: {args.threads}, cpus: {os.cpu_count()}")
    for latency in (0.0, args.latency):
        run(args.packets, args.threads, latency)


def run(packets: int, threads: int, latency: float) -> None:
    with (
        tempfile.TemporaryDirectory() as tmp,
        Emulator("portal", app_areas={APP_AREA: API_KEY}, visibility_timeout=60) as portal,
    ):
        root = Path(tmp)
        baseline, cpu = naive_loop(portal, packets, root / "naive", latency=latency)
        print(f"\nadded latency per portal/storage request: {latency * 1000:.0f} ms")
        print(f"{'':<28} {'packets/s':>9}  {'ratio':>6}  cores used: sandbox, workers")
        row = "{:<28} {:9.1f}  {:5.2f}x  {:.2f}  {}"
        print(row.format("naive sequential loop", packets / baseline, 1.0, cpu, "-"))
        for processes in (1, 2, 4):
            workdir = root / f"p{processes}"
            workdir.mkdir()
            seconds, cpu, workers = pipeline(
                portal, packets, workdir, processes=processes, threads=threads, latency=latency
            )
            label = f"pipeline, {processes} process{'es' if processes > 1 else ''}"
            print(row.format(label, packets / seconds, baseline / seconds, cpu, f"{workers:.2f}"))


if __name__ == "__main__":
    main()
