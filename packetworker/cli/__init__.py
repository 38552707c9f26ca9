"""The `packetworker` command line. Each module registers its commands on one Typer app."""

from __future__ import annotations

import sys

from packetworker.cli import (  # noqa: F401  (registers commands)
    bc,
    check,
    outbound,
    packets,
    pipeline,
    portal,
)
from packetworker.cli.app import app
from packetworker.targets import NotConfigured

# Exit status of a command refused for a missing or wrong setting (as for a usage error).
NOT_CONFIGURED = 2


def main() -> None:
    """Run the CLI; a missing setting ends it with one line naming it, not a traceback."""
    try:
        app()
    except NotConfigured as exc:
        print(f"packetworker: {exc}", file=sys.stderr, flush=True)
        sys.exit(NOT_CONFIGURED)
