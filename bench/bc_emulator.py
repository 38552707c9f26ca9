"""The BC emulator in a process of its own, for benchmarks that measure the worker alone.

`start_bc(...)` runs this file as a child process, which starts a `BCSandbox` on a free
loopback port, seeds a customer and items, prints one JSON line of what a worker needs to
reach it (the settings `BC_*`) and then serves until its stdin closes. Reading that line
is the wait for the port.

    with start_bc(latency=0) as env:
        subprocess.run([...], env={**os.environ, **env})
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def start_bc(
    *, latency: float = 0.0, customer: str = "C-1", items: int = 10
) -> Iterator[dict[str, str]]:
    """The emulator running in a child process; yields the worker's `BC_*` settings."""
    child = subprocess.Popen(
        [sys.executable, __file__, json.dumps([latency, customer, items])],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=ROOT,
        text=True,
    )
    try:
        line = child.stdout.readline()
        if not line:
            raise RuntimeError(f"the BC emulator stopped before it started ({child.wait()})")
        yield json.loads(line)
    finally:
        child.stdin.close()  # the child's signal to stop
        child.wait(timeout=30)


def _serve(latency: float, customer: str, items: int) -> None:
    sys.path.insert(0, str(ROOT))
    from packetworker.sandbox.bc import BCSandbox

    # No request budget: the benchmark measures the worker, not BC's throttling.
    with BCSandbox(latency=latency, rate_limit=None, max_concurrent=50) as bc:
        bc.add_customer(number=customer)
        for n in range(1, items + 1):
            bc.add_item(number=f"ITEM-{n:02d}", baseUnitOfMeasureCode="PCS")
        settings = {
            "BC_API_URL": bc.api_url,
            "BC_TOKEN_URL": bc.token_url,
            "BC_TENANT": bc.tenant,
            "BC_ENVIRONMENT": bc.environment,
            "BC_CLIENT_ID": bc.client_id,
            "BC_CLIENT_SECRET": bc.client_secret,
            "BC_COMPANY": "CRONUS",
        }
        print(json.dumps(settings), flush=True)
        sys.stdin.read()  # until the parent closes it


if __name__ == "__main__":
    _serve(*json.loads(sys.argv[1]))
