"""Throughput into Business Central at BC's per-user limits: packets in groups vs one by one.

N single-order packets (one sales order of 10 lines each, as the mobile app sends them) go
from "pending in the portal" to "applied and acknowledged" through real `dramatiq` worker
processes into the BC emulator, whose every request takes `--latency` (150 ms) inside BC's
per-user limits (5 running, 100 queued, 6,000 per sliding 5 minutes: business-central.md
§5.4), for 1, 2 and 4 processes. Each process count runs twice in the same run: packets in
groups (`APPLY_GROUP_SIZE`, 100) and one at a time (`APPLY_GROUP_SIZE=1`, the per-packet
design). Printed per run: packets/s, BC requests per packet, most BC requests in flight,
429s, the share of BC's sustained ceiling (6,000 per 5 minutes = 20 requests/s) used, and
the cores the worker processes and the emulators (this process: portal, storage and BC)
used meanwhile.

The per-packet runs take `--baseline-packets` (200): at ~4 requests per packet they cannot
pass ~5 packets/s, so 2,000 would take minutes per process count; a shorter run only
flatters them (it never reaches the 5-minute window). Loopback only; Redis from REDIS_URL.

    python bench/bench_throughput.py [--packets 2000] [--baseline-packets 200] [--latency 0.15]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the e2e harness runs the worker processes

from bench.bench_pipeline import refused, tree_cpu  # noqa: E402
from packetworker.sandbox import PortalSandbox  # noqa: E402
from packetworker.sandbox.bc import BCSandbox  # noqa: E402
from tests.pipeline.e2e.harness import Deployment, wait_for  # noqa: E402

APP_AREA = "BENCHBC"
API_KEY = "bench-bc-api-key-0123456789"
CUSTOMER = "C-1"
ITEMS = tuple(f"ITEM-{n:02d}" for n in range(1, 11))
#: BC's sustained ceiling per user: 6,000 requests per 5 minutes (business-central.md §5.4).
CEILING = 6000 / 300


def order_packet(number: int) -> bytes:
    """One sales order with a line per item, in the shape the mobile app sends."""
    doc = f"SO-{number:05d}"
    lines = "".join(
        f'<r status="insert"><DMS_ROWID>{doc}-{i}</DMS_ROWID><documentNo>{doc}</documentNo>'
        f"<lineNo>{i * 1000}</lineNo><no>{item}</no><quantity>{i}</quantity></r>"
        for i, item in enumerate(ITEMS, start=1)
    )
    return (
        '<NavMobileSync salesmancode="rep-1">'
        '<table tablename="SalesHeader" name="SalesHeader"><r status="insert">'
        f"<DMS_ROWID>{doc}</DMS_ROWID><no>{doc}</no><documentType>0</documentType>"
        f"<customerNo>{CUSTOMER}</customerNo><dateCreated>2026-03-11T09:00:00Z</dateCreated>"
        f'</r></table><table tablename="SalesLine" name="SalesLine">{lines}</table>'
        "</NavMobileSync>"
    ).encode()


@dataclass(frozen=True)
class Figures:
    packets: int
    seconds: float
    bc_requests: int
    max_in_flight: int
    too_many: int
    workers_cpu: float
    emulators_cpu: float

    def row(self, label: str) -> str:
        rate = self.bc_requests / self.seconds
        return (
            f"{label:<26} {self.packets:>7} {self.packets / self.seconds:>9.1f} "
            f"{self.bc_requests / self.packets:>12.3f} {self.max_in_flight:>9} "
            f"{self.too_many:>5} {rate / CEILING:>8.0%} {self.workers_cpu:>7.2f} "
            f"{self.emulators_cpu:>9.2f}"
        )


HEADER = (
    f"{'':<26} {'packets':>7} {'packets/s':>9} {'BC req/pkt':>12} {'in flight':>9} "
    f"{'429s':>5} {'ceiling':>8} {'workers':>7} {'emulators':>9}"
)


def run(
    packets: int, *, processes: int, threads: int, group_size: int, latency: float, root: Path
) -> Figures:
    """Seconds and BC figures for a fresh deployment, portal and BC to apply and acknowledge
    `packets` orders."""
    with (
        PortalSandbox(app_areas={APP_AREA: API_KEY}, visibility_timeout=120) as portal,
        BCSandbox(latency=latency) as bc,
    ):
        bc.add_customer(number=CUSTOMER)
        for item in ITEMS:
            bc.add_item(number=item, baseUnitOfMeasureCode="PCS")
        deployment = Deployment(
            root=root,
            redis_url=os.environ.get("REDIS_URL", "redis://localhost:6379/0"),
            portal_url=portal.url,
            api_key=API_KEY,
            app_area=APP_AREA,
            log_level="WARNING",
            target="bc",
            bc_api_url=bc.api_url,
            bc_token_url=bc.token_url,
            bc_tenant=bc.tenant,
            bc_environment=bc.environment,
            bc_client_id=bc.client_id,
            bc_client_secret=bc.client_secret,
            bc_company="CRONUS",
            apply_group_size=group_size,
            dm_poll_interval=0.2,
            dm_http_retries=1,  # a refused listing ends the poll; the next tick tries again
            stale_after=600,  # no re-sends of packets still queued behind the others
            # Production values, not the test harness's short ones (made for crash tests):
            # a group outlives a 3 s packet lock, and a 5 s poll lock skips polls (and the
            # acks they post) queued behind the groups.
            packet_lock_ttl=600,
            # The sandbox hides every entry it lists for its visibility timeout; the whole
            # backlog is taken by the first poll, not 1,000 now and the rest 2 minutes later.
            dm_poll_max_entries=max(1000, packets),
            poll_lock_ttl_ms=300_000,
            broker_heartbeat_timeout_ms=60_000,
        )
        listing = f"/mobile/erp/pull/{APP_AREA}"
        try:
            for number in range(packets):
                portal.enqueue(APP_AREA, order_packet(number), user="rep-1")
            # Listings answer 503 while the processes start, so the timed part is the work.
            refused_before = refused(portal)
            portal.faults.add(status=503, count=10**9, path_prefix=listing)
            worker = deployment.start_worker(processes=processes, threads=threads)
            deployment.start_clock()
            wait_for(
                lambda: (
                    deployment.redis.zcard(f"{deployment.namespace}:__heartbeats__") >= processes
                    and refused(portal) - refused_before >= 3
                ),
                timeout=60,
                what=f"{processes} worker processes polling",
            )
            logged = len(bc.requests)
            started, workers_cpu = time.perf_counter(), tree_cpu(worker.pid)
            cpu = time.process_time()
            portal.faults.clear()
            wait_for(
                lambda: len(portal.done_ids(APP_AREA)) >= packets,
                timeout=1800,
                what=f"{packets} packets acknowledged",
                interval=0.01,
            )
            seconds = time.perf_counter() - started
            workers_cpu = (tree_cpu(worker.pid) - workers_cpu) / seconds
            emulators_cpu = (time.process_time() - cpu) / seconds
            api = [r for r in bc.requests[logged:] if r.user is not None]  # not token calls
            orders = len(bc.store(None, "salesOrders"))
            if orders != packets:
                raise SystemExit(f"BC holds {orders} orders for {packets} packets")
            worker.terminate(timeout=30)
            return Figures(
                packets=packets,
                seconds=seconds,
                bc_requests=len(api),
                max_in_flight=bc.max_in_flight,
                too_many=sum(r.status == 429 for r in api),
                workers_cpu=workers_cpu,
                emulators_cpu=emulators_cpu,
            )
        finally:
            deployment.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packets", type=int, default=2000, help="grouped runs")
    parser.add_argument("--baseline-packets", type=int, default=200, help="per-packet runs")
    parser.add_argument("--group-size", type=int, default=100)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--latency", type=float, default=0.15, help="seconds per BC request")
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    print(
        f"orders of {len(ITEMS)} lines, BC answering in {args.latency * 1000:.0f} ms, "
        f"threads per process: {args.threads}, cpus: {os.cpu_count()}"
    )
    print(HEADER)
    with tempfile.TemporaryDirectory() as tmp:
        for processes in args.processes:
            plural = "es" if processes > 1 else ""
            runs = {}
            for label, group, count in (
                ("per packet", 1, args.baseline_packets),
                (f"groups of {args.group_size}", args.group_size, args.packets),
            ):
                root = Path(tmp) / f"p{processes}-g{group}"
                root.mkdir()
                runs[group] = figures = run(
                    count,
                    processes=processes,
                    threads=args.threads,
                    group_size=group,
                    latency=args.latency,
                    root=root,
                )
                print(figures.row(f"{processes} process{plural}, {label}"), flush=True)
            base, grouped = runs[1], runs[args.group_size]
            speedup = (grouped.packets / grouped.seconds) / (base.packets / base.seconds)
            print(f"{'':<26} groups vs per packet: {speedup:.1f}x packets/s", flush=True)


if __name__ == "__main__":
    main()
