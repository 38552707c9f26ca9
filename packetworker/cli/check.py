"""`packetworker check`: the preflight an operator runs before going live.

Runs `packetworker.preflight`'s checks against the configured parts (live, read-only) and
prints one row per part: ✓, ✗ or - (not configured / not checked), and what was found or
what to do. Exit status 1 when any check failed, else 0.
"""

from __future__ import annotations

import json

import typer
from rich.table import Table

from packetworker.cli.app import app, console, settings
from packetworker.preflight import CheckResult, run_checks

MARKS = {"ok": "[green]✓[/green]", "fail": "[red]✗[/red]", "skip": "[dim]-[/dim]"}


@app.command()
def check(
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line and row."),
) -> None:
    """Check Redis, the portal key, the archive, the target and the webhook URL, live and
    read-only; exit 1 if any check fails.

    Example: packetworker check --json

    Settings: every configured one (REDIS_URL, DM_*, ARCHIVE_URL, TARGET and the target's
    own, WEBHOOK_URL); secrets are never printed.
    """
    results = run_checks(settings())
    if as_json:
        for r in results:
            typer.echo(json.dumps({"part": r.part, "status": r.status, "detail": r.detail}))
    else:
        console.print(_table(results))
    failed = [r for r in results if r.failed]
    if failed:
        console.print(f"[red]{len(failed)} check(s) failed.[/red]", highlight=False)
        raise typer.Exit(1)
    console.print("[green]Ready.[/green]")


def _table(results: list[CheckResult]) -> Table:
    table = Table(show_header=True, header_style="bold")
    table.add_column("part", no_wrap=True)
    table.add_column("", no_wrap=True)
    table.add_column("what to do / what was found", overflow="fold")
    for r in results:
        table.add_row(r.part, MARKS[r.status], r.detail)
    return table
