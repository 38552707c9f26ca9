"""Commands on local packet files: validate, inspect, convert."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.table import Table as RichTable

from packetworker.cli.app import app, console, errors, expand, fail, out_stream, settings
from packetworker.packets import Limits, PacketError, convert, summarize, validate_packet


def _limits() -> Limits:
    s = settings()
    return Limits(max_body_bytes=s.max_packet_bytes, max_field_bytes=s.max_field_bytes)


@app.command()
def validate(
    files: Annotated[list[Path], typer.Argument(help="Packet files or folders.", exists=True)],
) -> None:
    """Validate packets against the schemas; one line per error, non-zero exit if any.

    Example: packetworker validate samples/ samples/invalid/junk.xml

    Settings: MAX_PACKET_BYTES, MAX_FIELD_BYTES.
    """
    limits = _limits()
    checked = bad = 0
    for path in expand(files):
        checked += 1
        issues = validate_packet(path, limits=limits, name=str(path))
        bad += bool(issues)
        for issue in issues:
            errors.print(str(issue), highlight=False, soft_wrap=True)
    console.print(f"{checked - bad} of {checked} packets valid", highlight=False)
    if bad:
        raise typer.Exit(1)


@app.command()
def inspect(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show a packet's user, tables, record counts by status, and size.

    Example: packetworker inspect samples/sales-order.xml --json

    Settings: MAX_PACKET_BYTES, MAX_FIELD_BYTES.
    """
    try:
        summary = summarize(file, limits=_limits(), name=str(file))
    except PacketError as exc:
        raise fail(str(exc)) from None
    if as_json:
        console.print_json(orjson.dumps(asdict(summary)).decode())
        return
    table = RichTable(
        title=f"{file.name}: user {summary.user}, {summary.format}, "
        f"{summary.size} bytes, {summary.records} records"
    )
    statuses = sorted({s for counts in summary.tables.values() for s in counts})
    table.add_column("table")
    for status in statuses:
        table.add_column(status, justify="right")
    for name, counts in summary.tables.items():
        table.add_row(name, *(str(counts.get(s, 0)) for s in statuses))
    console.print(table)


@app.command(name="convert")
def convert_command(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
    to: Annotated[str, typer.Option("--to", help="xml or json.")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Default: stdout.")] = None,
) -> None:
    """Convert a packet between XML and JSON, streaming.

    Example: packetworker convert samples/sales-order.xml --to json -o order.json

    Settings: MAX_PACKET_BYTES, MAX_FIELD_BYTES.
    """
    if to not in ("xml", "json"):
        raise fail("--to must be xml or json", code=2)
    limits = _limits()
    if output is None or str(output) == "-":
        try:
            with file.open("rb") as source:
                convert(source, out_stream(None), to=to, limits=limits)
        except PacketError as exc:
            raise fail(str(exc)) from None
        return
    # Write beside the target and rename, so a bad packet never leaves half a file behind.
    partial = output.with_name(output.name + ".part")
    try:
        with file.open("rb") as source, partial.open("wb") as sink:
            convert(source, sink, to=to, limits=limits)
        partial.replace(output)
    except PacketError as exc:
        partial.unlink(missing_ok=True)
        raise fail(str(exc)) from None
