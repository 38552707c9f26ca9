"""The `packetworker` command line. Each module registers its commands on one Typer app."""

from __future__ import annotations

from packetworker.cli import outbound, packets, pipeline, portal  # noqa: F401  (registers commands)
from packetworker.cli.app import app


def main() -> None:
    app()
