"""Commands that talk to the Dynamics Mobile ERP API (or run its local sandbox)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table as RichTable

from packetworker.cli.app import app, console, expand, fail, settings
from packetworker.portal import PortalClient, PortalError


def _client() -> PortalClient:
    s = settings()
    if not s.dm_app_area or not s.dm_api_key.get_secret_value():
        raise fail("set DM_APP_AREA and DM_API_KEY (or run `packetworker sandbox`)", code=2)
    return PortalClient.from_settings(s)


@app.command()
def pull(
    packet_type: Annotated[str, typer.Option("--type", help="packet or file.")] = "packet",
) -> None:
    """List the packets pending in the portal for the configured app area."""
    try:
        with _client() as client:
            entries = client.pull(packet_type=packet_type, format=settings().dm_list_format)
    except PortalError as exc:
        raise fail(str(exc)) from None
    table = RichTable(title=f"{len(entries)} pending {packet_type} entries")
    for column in ("id", "user", "operation", "on date", "company", "type"):
        table.add_column(column)
    for e in entries:
        table.add_row(
            e.id,
            e.user_name or "",
            e.operation or "",
            e.on_date or "",
            e.company_id or "",
            e.packet_type or "",
        )
    console.print(table)


@app.command()
def push(
    user: Annotated[str, typer.Argument(help="Mobile user who receives the packet.")],
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
    packet_id: Annotated[str | None, typer.Option("--id", help="packetUniqueId.")] = None,
) -> None:
    """Upload a packet to a mobile user through the push endpoint's presigned upload."""
    from packetworker.packets import detect_format

    with file.open("rb") as f:
        fmt = detect_format(f.read(64))
    try:
        with _client() as client:
            result = client.push(
                user, file, packet_unique_id=packet_id or str(uuid.uuid4()), packet_type=fmt
            )
    except PortalError as exc:
        raise fail(str(exc)) from None
    console.print(
        f"pushed {result.size} bytes to {user} as {result.packet_unique_id}"
        f" (sync log {result.sync_log_id})",
        highlight=False,
    )


@app.command()
def sandbox(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="0 picks a free port.")] = 8765,
    app_area: Annotated[str, typer.Option("--app-area")] = "DEMO",
    api_key: Annotated[str, typer.Option("--api-key")] = "demo-key",
    link_ttl: Annotated[float, typer.Option("--link-ttl", help="Seconds.")] = 900.0,
    samples: Annotated[
        list[Path] | None, typer.Option("--enqueue", help="Packets to enqueue at start.")
    ] = None,
) -> None:
    """Run the local ERP API emulator (portal + S3) until interrupted."""
    try:
        from packetworker.sandbox import serve_forever
    except ImportError as exc:
        raise fail(
            f"the sandbox needs the 'sandbox' extra: pip install 'packetworker[sandbox]' ({exc})"
        ) from None
    serve_forever(
        host=host,
        port=port,
        app_area=app_area,
        api_key=api_key,
        link_ttl=link_ttl,
        samples=list(expand(list(samples or []))),
    )
