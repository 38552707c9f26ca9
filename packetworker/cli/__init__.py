"""The `packetworker` command line. Each module registers its commands on one Typer app."""

from __future__ import annotations

from packetworker.cli import (  # noqa: F401  (registers commands)
    check,
    outbound,
    packets,
    pipeline,
    portal,
)
from packetworker.cli.app import app


def main() -> None:
    app()
