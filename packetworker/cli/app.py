"""The Typer application every command module registers on, and shared CLI helpers."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import typer
from rich.console import Console

from packetworker.logs import setup_logging
from packetworker.settings import Settings, get_settings

app = typer.Typer(
    name="packetworker",
    help="Sync Dynamics Mobile packets with Business Central and CRMs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Plain help: flags render as flags (`--queue`, not `--queue <bool>` as typer's rich help
    # has it), examples keep their lines, and the text fits an 80-column terminal.
    rich_markup_mode=None,
    add_completion=False,
)
console = Console()
errors = Console(stderr=True)

# Files that sit next to packets but are not packets (expected messages, pull-list metadata).
NOT_PACKETS = {".expected", ".meta", ".md", ".txt"}


def settings() -> Settings:
    """Settings, with logging configured for a person at a terminal.

    Commands print their own results, so their log lines are only for trouble: errors unless
    LOG_LEVEL says otherwise, as text on a terminal unless LOG_FORMAT says otherwise. The
    long-running processes (worker, clock) log JSON at LOG_LEVEL as configured.
    """
    s = get_settings()
    explicit = s.model_fields_set
    setup_logging(
        level=s.log_level if "log_level" in explicit else "ERROR",
        fmt=s.log_format if "log_format" in explicit or not sys.stderr.isatty() else "text",
        secrets=(s.dm_api_key.get_secret_value(),),
    )
    return s


def expand(paths: list[Path]) -> Iterator[Path]:
    """Files named, and packet files under folders named (recursively, sorted)."""
    for path in paths:
        if path.is_dir():
            yield from sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix in {".xml", ".json"}
            )
        else:
            yield path


def fail(message: str, *, code: int = 1) -> typer.Exit:
    errors.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def out_stream(path: Path | None):
    """A binary sink: the file at `path`, or stdout when `path` is None or '-'."""
    if path is None or str(path) == "-":
        return sys.stdout.buffer
    return path.open("wb")
