"""Reader throughput and memory, against baselines measured in the same run.

    python bench/bench_read.py [--quick]

1. Throughput on a ≥ 200 MB XML packet: our reader vs a bare lxml iterparse loop that builds
   the same per-record dicts (goal: ratio ≥ 0.85).
2. Peak RSS, each case in a fresh subprocess, for 50 MB and 500 MB XML packets (goal: flat,
   < 100 MB), xmltodict on the 50 MB packet as a reference, and the JSON reader on 50 MB and
   500 MB JSON packets.

Packets are generated under bench/out/ (gitignored) and reused across runs.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
sys.path.insert(0, str(HERE))

from gen_packets import write_json_packet, write_xml_packet  # noqa: E402

MB = 1024 * 1024


def packet(kind: str, size_mb: int) -> Path:
    path = OUT / f"bench-{size_mb}mb.{kind}"
    if not path.exists() or path.stat().st_size < size_mb * MB:
        print(f"generating {path.name} …", file=sys.stderr, flush=True)
        tmp = path.with_suffix(".tmp")
        (write_xml_packet if kind == "xml" else write_json_packet)(tmp, size_mb * MB)
        tmp.replace(path)
    return path


# -- the cases (each also runnable alone: `bench_read.py --case NAME PATH`) -------------------
def case_ours(path: str) -> int:
    from packetworker.packets import Limits, open_packet

    n = 0
    with open_packet(path, limits=Limits(max_body_bytes=4 * 1024 * MB)) as reader:
        for record in reader:
            n += len(record.fields)
    return n


def case_baseline(path: str) -> int:
    """The bare loop: lxml iterparse on <r>, a dict per record, clear and drop siblings."""
    from lxml import etree

    n = 0
    for _, elem in etree.iterparse(path, events=("end",), tag="r"):
        fields = {child.tag: child.text for child in elem}
        n += len(fields)
        elem.clear()
        parent = elem.getparent()
        while elem.getprevious() is not None:
            del parent[0]
    return n


def case_xmltodict(path: str) -> int:
    import xmltodict

    with open(path, "rb") as f:
        doc = xmltodict.parse(f)
    return len(doc["NavMobileSync"]["table"]["r"])


CASES = {"ours": case_ours, "baseline": case_baseline, "xmltodict": case_xmltodict}


def run_case_here(name: str, path: str) -> None:
    # Imports first, so timings cover reading only.
    import lxml.etree  # noqa: F401
    import xmltodict  # noqa: F401

    import packetworker.packets  # noqa: F401

    # CPU time, not wall time: the ratio stays meaningful on a busy machine.
    start = time.process_time()
    n = CASES[name](path)
    elapsed = time.process_time() - start
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"{n} {elapsed:.4f} {peak_kb}")


def in_subprocess(name: str, path: Path) -> tuple[float, float]:
    """(CPU seconds, peak RSS in MB) of one case in a fresh interpreter."""
    out = subprocess.run(
        [sys.executable, __file__, "--case", name, str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return float(out[1]), int(out[2]) / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", nargs=2, metavar=("NAME", "PATH"), help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="smaller packets, for a smoke run")
    args = parser.parse_args()
    if args.case:
        run_case_here(*args.case)
        return 0

    big, small, huge = (20, 5, 50) if args.quick else (200, 50, 500)
    rows: list[tuple[str, str, str, str]] = []

    # 1. Throughput: alternate the two loops and keep each one's best time.
    xml_big = packet("xml", big)
    size_mb = xml_big.stat().st_size / MB
    best = {"baseline": float("inf"), "ours": float("inf")}
    for _ in range(5 if args.quick else 3):
        for name in ("baseline", "ours"):
            seconds, _rss = in_subprocess(name, xml_big)
            best[name] = min(best[name], seconds)
    ratio = best["baseline"] / best["ours"]
    for name in ("baseline", "ours"):
        rows.append(
            (
                f"XML {name} {size_mb:.0f} MB",
                f"{best[name]:.2f} s",
                f"{size_mb / best[name]:.0f} MB/s",
                "",
            )
        )
    rows.append(
        (
            "throughput ratio ours/baseline",
            f"{ratio:.2f}",
            "goal ≥ 0.85",
            "OK" if ratio >= 0.85 else "MISS",
        )
    )

    # 2. Peak RSS, fresh process per case.
    for label, name, path in (
        (f"XML reader {small} MB", "ours", packet("xml", small)),
        (f"XML reader {huge} MB", "ours", packet("xml", huge)),
        (f"xmltodict {small} MB (reference)", "xmltodict", packet("xml", small)),
    ):
        seconds, rss = in_subprocess(name, path)
        goal = "" if name == "xmltodict" else ("OK" if rss < 100 else "MISS")
        rows.append((label, f"{seconds:.2f} s", f"peak RSS {rss:.0f} MB", goal))
    for size in (small, huge):
        seconds, rss = in_subprocess("ours", packet("json", size))
        rows.append(
            (
                f"JSON reader {size} MB",
                f"{seconds:.2f} s",
                f"peak RSS {rss:.0f} MB",
                "OK" if rss < 100 else "MISS",
            )
        )

    width = max(len(r[0]) for r in rows)
    print(f"{'case':<{width}}  {'CPU time':>9}  {'rate / memory':<18} goal")
    for label, a, b, c in rows:
        print(f"{label:<{width}}  {a:>9}  {b:<18} {c}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
