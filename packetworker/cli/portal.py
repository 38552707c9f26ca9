"""Commands that talk to the Dynamics Mobile ERP API (or run its local sandbox)."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table as RichTable

from packetworker.cli.app import app, console, errors, expand, fail, settings
from packetworker.packets import Limits, detect_format, validate_packet
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
    """List the packets pending in the portal for the configured app area.

    Example: packetworker pull --type file

    Settings: DM_API_URL, DM_APP_AREA, DM_API_KEY, DM_LIST_FORMAT.
    """
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
    """Upload a packet to a mobile user through the push endpoint's presigned upload.

    The file is validated first, with the readers and limits inbound packets get
    (MAX_PACKET_BYTES, MAX_FIELD_BYTES); an invalid one is refused with its errors and
    nothing is uploaded.

    Example: packetworker push rep-plovdiv-07 samples/outbound/complete-push.xml

    Settings: DM_API_URL, DM_APP_AREA, DM_API_KEY.
    """
    s = settings()
    limits = Limits(max_body_bytes=s.max_packet_bytes, max_field_bytes=s.max_field_bytes)
    s.spool_dir.mkdir(parents=True, exist_ok=True)
    # Validate and upload one private copy, so the bytes sent are the bytes checked.
    with tempfile.NamedTemporaryFile(dir=s.spool_dir, prefix="push-", suffix=file.suffix) as copy:
        with file.open("rb") as source:
            shutil.copyfileobj(source, copy)
        copy.flush()
        issues = validate_packet(Path(copy.name), limits=limits, name=str(file))
        if issues:
            for issue in issues:
                errors.print(str(issue), highlight=False, soft_wrap=True)
            raise fail(f"{file} is not a valid sync packet; nothing was pushed to {user}")
        with open(copy.name, "rb") as head:
            fmt = detect_format(head.read(64))
        try:
            with _client() as client:
                result = client.push(
                    user,
                    Path(copy.name),
                    packet_unique_id=packet_id or str(uuid.uuid4()),
                    packet_type=fmt,
                )
        except PortalError as exc:
            raise fail(str(exc)) from None
    console.print(
        f"pushed {result.size} bytes to {user} as {result.packet_unique_id}"
        f" (sync log {result.sync_log_id})",
        highlight=False,
    )


sandbox_app = typer.Typer(
    invoke_without_command=True,
    no_args_is_help=False,
)
app.add_typer(sandbox_app, name="sandbox")

# Where `packetworker sandbox` listens unless told otherwise.
SANDBOX_PORT = 8765
SANDBOX_URL = f"http://127.0.0.1:{SANDBOX_PORT}"


@sandbox_app.callback()
def sandbox(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="0 picks a free port.")] = SANDBOX_PORT,
    app_area: Annotated[str, typer.Option("--app-area")] = "DEMO",
    api_key: Annotated[str, typer.Option("--api-key")] = "demo-key",
    link_ttl: Annotated[float, typer.Option("--link-ttl", help="Seconds.")] = 900.0,
    samples: Annotated[
        list[Path] | None, typer.Option("--enqueue", help="Packets to enqueue at start.")
    ] = None,
    user: Annotated[
        str | None,
        typer.Option("--user", help="User of --enqueue packets (default: their salesmancode)."),
    ] = None,
) -> None:
    """Run the local ERP API emulator (portal + S3) until interrupted, or feed packets to a
    running one (`enqueue`). It prints the variables a worker needs (DM_API_URL,
    DM_APP_AREA, DM_API_KEY, DM_STORAGE_HTTP_HOSTS) and its admin API (/_sandbox/).

    Example: packetworker sandbox --enqueue samples/sales-order.xml

    Then, from another terminal: packetworker sandbox enqueue samples/payment.xml

    Settings: none (it needs the 'sandbox' extra).
    """
    if ctx.invoked_subcommand is not None:
        return
    try:
        from packetworker.sandbox import serve_forever
    except ImportError as exc:
        raise fail(
            f"the sandbox needs the 'sandbox' extra: pip install 'packetworker[sandbox]' ({exc})"
        ) from None
    try:
        serve_forever(
            host=host,
            port=port,
            app_area=app_area,
            api_key=api_key,
            link_ttl=link_ttl,
            samples=list(expand(list(samples or []))),
            user=user,
        )
    except ValueError as exc:
        raise fail(f"{exc}; give --user USER", code=2) from None


@sandbox_app.command("enqueue")
def sandbox_enqueue(
    files: Annotated[list[Path], typer.Argument(help="Packet files or folders.", exists=True)],
    user: Annotated[
        str | None, typer.Option("--user", help="Mobile user (default: the salesmancode).")
    ] = None,
    url: Annotated[
        str, typer.Option("--url", help="The running sandbox (its URL or its DM_API_URL).")
    ] = SANDBOX_URL,
    app_area: Annotated[
        str | None, typer.Option("--app-area", help="Default: the sandbox's first.")
    ] = None,
) -> None:
    """List packets as pending in a running sandbox, as if mobile users had sent them.

    Invalid packets are enqueued as they are (the worker quarantines them), so the sandbox
    can play a buggy device too.

    Example: packetworker sandbox enqueue samples/sales-order.xml samples/payment.xml

    Settings: none; --url names the sandbox (default http://127.0.0.1:8765).
    """
    import httpx

    base = url.rstrip("/").removesuffix("/mobile")
    params = {k: v for k, v in (("user", user), ("app_area", app_area)) if v}
    paths = list(expand(files))
    if not paths:
        raise fail("no packet files (*.xml, *.json) among the paths given", code=2)
    with httpx.Client(base_url=base, timeout=30) as client:
        for path in paths:
            fmt = "json" if path.suffix.lower() == ".json" else "xml"
            try:
                answer = client.post(
                    "/_sandbox/enqueue",
                    params={**params, "format": fmt},
                    content=path.read_bytes(),
                )
            except httpx.HTTPError as exc:
                raise fail(
                    f"no sandbox answers at {base} ({exc}); start one with "
                    "`packetworker sandbox` or give --url"
                ) from None
            body = _json(answer)
            if answer.status_code != 200:
                why = body.get("message") or answer.reason_phrase
                hint = "give --user USER" if "no user" in why else f"is {base} the sandbox?"
                raise fail(f"{path}: the sandbox refused it ({why}); {hint}")
            console.print(
                f"enqueued {path} as {body['id']} (user {body['user']})",
                highlight=False,
                soft_wrap=True,
            )


def _json(response) -> dict:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
