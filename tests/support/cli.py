"""Running the `packetworker` command line as a real process, as an operator would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def run_packetworker(
    *args: str, env: dict[str, str], cwd: Path, timeout: float = 120
) -> subprocess.CompletedProcess:
    """`python -m packetworker ARGS` to completion, its output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "packetworker", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
