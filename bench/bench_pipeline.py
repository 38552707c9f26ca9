"""End-to-end throughput of the Dramatiq pipeline against the portal sandbox.

Measures packets/s from "N packets pending in the portal" to "all applied and acknowledged"
for 1, 2 and 4 worker processes, next to a naive sequential loop doing the same client calls
(pull, link, download, read, apply to the recording target, done per packet). Prints each as
a ratio against that loop, measured in the same run. Loopback only; Redis from REDIS_URL.

Run twice: with no added latency, which measures CPU (the sandbox's own included, on the
same cores), and with a per-request latency like a real portal across the internet
(`--latency`, default 30 ms), where the worker's concurrency is what counts.

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

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the e2e harness runs the worker processes

from packetworker.packets.reader import open_packet  # noqa: E402
from packetworker.portal import PortalClient  # noqa: E402
from packetworker.portal.links import rendition_path  # noqa: E402
from packetworker.sandbox import PortalSandbox  # noqa: E402
from packetworker.targets.base import ApplyContext  # noqa: E402
from packetworker.targets.recording import RecordingTarget  # noqa: E402
from tests.pipeline.e2e.harness import Deployment, wait_for  # noqa: E402

APP_AREA = "BENCH"
API_KEY = "bench-api-key-0123456789"
READY = "Worker process is ready for action."


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


def fill(sandbox: PortalSandbox, count: int) -> None:
    for number in range(count):
        sandbox.enqueue(APP_AREA, order_packet(number), user="rep-1")


def tree_cpu(pid: int) -> float:
    """CPU seconds used so far by a process and its children."""
    root = psutil.Process(pid)
    return sum(sum(p.cpu_times()[:2]) for p in [root, *root.children(recursive=True)])


def refused(sandbox: PortalSandbox) -> int:
    return sum(r.status == 503 for r in sandbox.requests())


def add_latency(sandbox: PortalSandbox, seconds: float) -> None:
    """Every later request answers `seconds` late (faults added earlier still come first)."""
    if seconds > 0:
        sandbox.faults.slow(seconds, count=10**9)


def naive_loop(
    sandbox: PortalSandbox, count: int, workdir: Path, *, latency: float
) -> tuple[float, float]:
    """Seconds for one process doing every call in sequence, one done call per packet, and
    the cores this process used meanwhile (the loop and the sandbox both run here)."""
    fill(sandbox, count)
    sandbox.faults.clear()
    add_latency(sandbox, latency)
    target = RecordingTarget(path=workdir / "naive.jsonl")
    started, cpu = time.perf_counter(), time.process_time()
    with PortalClient(
        base_url=sandbox.url,
        app_area=APP_AREA,
        api_key=API_KEY,
        storage_hosts=[sandbox.storage_hosts],  # its links are http on loopback
    ) as client:
        while sandbox.pending(APP_AREA):
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
    both_cpu = (time.process_time() - cpu) / elapsed
    sandbox.faults.clear()
    target.close()
    return elapsed, both_cpu


def pipeline(
    sandbox: PortalSandbox,
    count: int,
    workdir: Path,
    *,
    processes: int,
    threads: int,
    latency: float,
) -> tuple[float, float, float]:
    """Seconds for the deployment (clock + worker processes) to apply and ack `count`, and
    the cores this process (the sandbox) and the worker processes used meanwhile."""
    deployment = Deployment(
        root=workdir,
        redis_url=os.environ.get("REDIS_URL", "redis://localhost:6379/0"),
        portal_url=sandbox.url,
        api_key=API_KEY,
        app_area=APP_AREA,
        log_level="WARNING",
        dm_poll_interval=0.2,
        dm_http_retries=1,  # a refused listing ends the poll; the next tick tries again
        # The harness's 3 s (for crash-recovery tests) would re-send every packet still
        # waiting in the queue after 3 s: duplicate messages, each a no-op run that costs CPU.
        stale_after=600,
    )
    listing = f"/mobile/erp/pull/{APP_AREA}"
    try:
        fill(sandbox, count)
        # Keep the portal answering 503 to listings while the processes start and warm up, so
        # the timed part is the processing alone, as for the loop; clearing it is the start.
        refused_before = refused(sandbox)
        sandbox.faults.add(status=503, count=10**9, path_prefix=listing)
        worker = deployment.start_worker(processes=processes, threads=threads)
        deployment.start_clock()
        wait_for(
            lambda: (
                deployment.redis.zcard(f"{deployment.namespace}:__heartbeats__") >= processes
                and refused(sandbox) - refused_before >= 3
            ),
            timeout=60,
            what=f"{processes} worker processes polling",
        )
        done_before = len(sandbox.done_ids(APP_AREA))
        started, cpu, workers_cpu = time.perf_counter(), time.process_time(), tree_cpu(worker.pid)
        sandbox.faults.clear()
        add_latency(sandbox, latency)
        wait_for(
            lambda: len(sandbox.done_ids(APP_AREA)) - done_before >= count,
            timeout=600,
            what=f"{count} packets acknowledged",
            interval=0.01,
        )
        elapsed = time.perf_counter() - started
        sandbox_cpu = (time.process_time() - cpu) / elapsed
        workers_cpu = (tree_cpu(worker.pid) - workers_cpu) / elapsed
        sandbox.faults.clear()
        worker.terminate(timeout=30)
        return elapsed, sandbox_cpu, workers_cpu
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
        PortalSandbox(app_areas={APP_AREA: API_KEY}, visibility_timeout=60) as sandbox,
    ):
        root = Path(tmp)
        baseline, cpu = naive_loop(sandbox, packets, root / "naive", latency=latency)
        print(f"\nadded latency per portal/storage request: {latency * 1000:.0f} ms")
        print(f"{'':<28} {'packets/s':>9}  {'ratio':>6}  cores used: sandbox, workers")
        row = "{:<28} {:9.1f}  {:5.2f}x  {:.2f}  {}"
        print(row.format("naive sequential loop", packets / baseline, 1.0, cpu, "-"))
        for processes in (1, 2, 4):
            workdir = root / f"p{processes}"
            workdir.mkdir()
            seconds, cpu, workers = pipeline(
                sandbox, packets, workdir, processes=processes, threads=threads, latency=latency
            )
            label = f"pipeline, {processes} process{'es' if processes > 1 else ''}"
            print(row.format(label, packets / seconds, baseline / seconds, cpu, f"{workers:.2f}"))


if __name__ == "__main__":
    main()
