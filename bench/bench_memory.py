"""Peak memory of the worker applying one big packet of sales orders into Business Central.

Each run is a fresh worker process that replays one packet (`replay_file`, the processing
path of `process_packet`) through the BC target into the BC emulator, which runs in a
process of its own (`emulators.py`: its memory is not counted), with a Redis ledger from
REDIS_URL under a fresh namespace. The worker reports its own peak RSS (`VmHWM`: unlike
`ru_maxrss`, which Linux carries across `exec`, it never counts the parent's memory).

Printed per packet size (default 20 and 200 MB; orders of a header and 10 lines, every
header listed before every line, as the app lists its tables):

- **batched**: documents assembled on disk, applied in batches within `APPLY_BATCH_SIZE` records
  (`--batch`, 500) and `APPLY_BATCH_CHARS` (its default);
- **whole packet** (baseline, same run; `--whole`, the smaller size by default): the worker with
  both bounds larger than the packet, so every record is held and sent in one call —
  what every system target did before documents were assembled on disk;
- **reader only**: a process that only streams the packet through the reader, the floor.

The goal: a 200 MB packet applied with the worker's peak RSS under 150 MB.

    python bench/bench_memory.py [--sizes 20 200] [--whole 20] [--pad 6000] [--latency 0]

`--pad` pads every line with an unmapped `comment` of that many characters (a line is then
about `pad` + 350 bytes; `--pad 600` makes lines of about 1 KB, as the app's). The default
makes 6 KB lines: the BC emulator of the time checks every stored line on each line it
writes, so 200 MB of 1 KB lines would take it hours; bigger lines keep the run to minutes
without lightening what the worker holds per batch.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from itertools import islice
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.gen_packets import write_orders_packet  # noqa: E402

MB = 1 << 20
#: What `write_orders_packet` orders: its customer and items `ITEM-01`…`ITEM-10`.
CUSTOMER, ITEMS = "C-1", 10


def peak_mb() -> float:
    """This process's peak RSS in MB: `VmHWM` of /proc/self/status, which starts afresh at
    `exec` (`ru_maxrss` keeps the high-water mark of the process that spawned us)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(packet: Path, mode: str) -> None:
    """The measured process: apply (or only read) `packet`, print one JSON line."""
    started = time.perf_counter()
    if mode == "read":
        from packetworker.packets import Limits, open_packet

        with open_packet(packet, limits=Limits(max_body_bytes=1 << 40)) as reader:
            figures = {"records": sum(1 for _ in reader)}
    else:
        from packetworker.pipeline.context import PipelineContext
        from packetworker.pipeline.replay import replay_file

        ctx = PipelineContext.for_replay()
        ctx.target  # noqa: B018 - built before the figure below
        started_mb = peak_mb()
        try:
            result = replay_file(ctx, packet, app_area="BENCH")
        finally:
            ctx.close()
        figures = {"state": result.state, "outcomes": result.outcomes, "error": result.error}
        figures["started_mb"] = started_mb
    figures["seconds"] = time.perf_counter() - started
    figures["peak_mb"] = peak_mb()
    print(json.dumps(figures), flush=True)


WHOLE = 1 << 30  # an APPLY_BATCH_SIZE no packet reaches: the whole packet in one call


def measure(packet: Path, mode: str, *, batch: int, latency: float, tmp: Path) -> dict:
    """Run one worker process on `packet` against a fresh emulator; its figures."""
    env = {
        **os.environ,
        "TARGET": "bc",
        "APPLY_BATCH_SIZE": str(batch),
        **({"APPLY_BATCH_CHARS": str(1 << 40)} if batch >= WHOLE else {}),
        "MAX_PACKET_BYTES": str(1 << 40),
        "LEDGER_NAMESPACE": f"bench-memory-{uuid.uuid4().hex[:8]}",
        "ARCHIVE_URL": f"file://{tmp}/archive-{uuid.uuid4().hex[:8]}",
        "SPOOL_DIR": str(tmp / "spool"),
        "LOG_LEVEL": "WARNING",
        # The emulator's time per write grows with what it stores; a whole 200 MB packet's
        # $batch of 100 orders takes it minutes.
        "BC_HTTP_TIMEOUT": "900",
    }
    command = [sys.executable, __file__, "--worker", str(packet), mode]
    # Imported here: the measured worker process (this file with --worker) must not carry the
    # launcher's imports (the test harness), which a real worker lacks.
    from bench.emulators import Emulator, bc_settings

    try:
        # No request budget: the benchmark measures the worker, not BC's throttling.
        with Emulator("bc", latency=latency, rate_limit=None, max_concurrent=50) as bc:
            bc.admin("POST", "entities/customers", json={"number": CUSTOMER})
            for n in range(1, ITEMS + 1):
                bc.admin("POST", "entities/items", json={"number": f"ITEM-{n:02d}"})
            env |= {name.upper(): value for name, value in bc_settings(bc).items()}
            done = subprocess.run(command, env=env, capture_output=True, text=True)
    finally:
        _drop_namespace(env["LEDGER_NAMESPACE"])
    if done.returncode != 0:
        raise SystemExit(f"worker failed ({done.returncode}):\n{done.stderr[-3000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    applied = figures.get("state") == "applied" and set(figures["outcomes"]) == {"applied"}
    if mode == "apply" and not applied:
        raise SystemExit(f"packet not applied: {figures}")
    return figures


def _drop_namespace(namespace: str) -> None:
    """The run's ledger keys out of Redis."""
    import redis

    client = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://localhost:6379/0"))
    with client:
        found = client.scan_iter(f"{namespace}:*", count=1000)
        while keys := [*islice(found, 1000)]:
            client.delete(*keys)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[20, 200], help="MB, batched")
    parser.add_argument("--whole", type=int, nargs="*", default=[20], help="MB, baseline")
    parser.add_argument("--pad", type=int, default=6000, help="characters added to each line")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per BC request")
    parser.add_argument("--batch", type=int, default=500, help="APPLY_BATCH_SIZE")
    parser.add_argument("--worker", nargs=2, metavar=("PACKET", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(Path(args.worker[0]), args.worker[1])
        return
    print(f"{'packet':>8} {'orders':>7} {'run':<14} {'started':>8} {'peak RSS':>9} {'seconds':>8}")
    with tempfile.TemporaryDirectory(dir=ROOT / "var" if (ROOT / "var").is_dir() else None) as t:
        tmp = Path(t)
        peaks: dict[tuple[str, int], float] = {}
        for size in sorted({*args.sizes, *args.whole}):
            packet = tmp / f"orders-{size}mb.xml"
            orders = write_orders_packet(packet, size * MB, pad=args.pad)
            real = packet.stat().st_size / MB
            runs = [("reader only", "read", args.batch)]
            runs += [("batched", "apply", args.batch)] if size in args.sizes else []
            runs += [("whole packet", "apply", WHOLE)] if size in args.whole else []
            for label, mode, batch in runs:
                figures = measure(packet, mode, batch=batch, latency=args.latency, tmp=tmp)
                peaks[label, size] = figures["peak_mb"]
                started = f"{figures['started_mb']:.0f}MB" if "started_mb" in figures else "-"
                print(
                    f"{real:>6.0f}MB {orders:>7} {label:<14} {started:>8} "
                    f"{figures['peak_mb']:>7.0f}MB {figures['seconds']:>8.1f}",
                    flush=True,
                )
            if ("batched", size) in peaks and ("whole packet", size) in peaks:
                ratio = peaks["batched", size] / peaks["whole packet", size]
                print(f"{'':>8} {'':>7} batched / whole packet: {ratio:.2f}x", flush=True)
            packet.unlink()
        if len(args.sizes) > 1:
            low, high = min(args.sizes), max(args.sizes)
            growth = peaks["batched", high] / peaks["batched", low]
            print(f"peak RSS, {high} MB vs {low} MB packet (batched): {growth:.2f}x")


if __name__ == "__main__":
    main()
