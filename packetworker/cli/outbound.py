"""Commands of the outbound side: the `web` process, one-off pushes, webhook subscriptions."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table as RichTable

from packetworker.cli.app import app, console, fail, settings


@app.command()
def web() -> None:
    """The web process: BC webhook receiver, /healthz and /metrics, on $PORT (waitress).

    Example: packetworker web  (on $PORT; Heroku sets it)

    Settings: REDIS_URL, PORT (or WEB_PORT), WEB_HOST; WEBHOOK_URL and
    WEBHOOK_CLIENT_STATE to receive BC webhooks (without them it serves /healthz and
    /metrics only).
    """
    from packetworker.web import run_web

    try:
        run_web(settings())
    except ValueError as exc:
        raise fail(str(exc)) from None


@app.command("push-outbound")
def push_outbound(
    user: Annotated[str, typer.Argument(help="Mobile user to push to.")],
    complete: Annotated[
        bool,
        typer.Option(
            "--complete/--incremental",
            help="Every record, or only records changed since the user's last push.",
        ),
    ] = False,
) -> None:
    """Build USER's master-data packet from Business Central and push it now (in process).

    Example: packetworker push-outbound rep-plovdiv-07 --complete

    Settings: BC_TENANT, BC_CLIENT_ID, BC_CLIENT_SECRET (or BC_REFRESH_TOKEN), BC_COMPANY
    (or OUTBOUND_USERS=user@COMPANY with BC_COMPANY_MAP); DM_API_URL, DM_APP_AREA (or
    OUTBOUND_APP_AREA), DM_API_KEY; REDIS_URL.
    """
    from packetworker.outbound import push_user
    from packetworker.pipeline.context import outbound_context

    ctx = outbound_context(settings())
    try:
        outcome = push_user(ctx, user, mode="complete" if complete else "incremental")
    except Exception as exc:
        raise fail(f"push to {user!r} failed: {exc}") from None
    finally:
        ctx.close()
    if outcome.packet_unique_id is None:
        console.print(f"Nothing changed for {user}; nothing pushed.")
        return
    title = f"{outcome.mode} push to {user} (company {outcome.company})"
    table = RichTable("table", "records", title=title)
    for name, count in outcome.counts.items():
        table.add_row(name, str(count))
    console.print(table)
    console.print(f"packet {outcome.packet_unique_id}, {outcome.size} bytes")


@app.command()
def subscriptions() -> None:
    """Create, renew or recreate BC webhook subscriptions now (what the clock does hourly).

    Example: packetworker subscriptions

    Settings: WEBHOOK_URL, WEBHOOK_CLIENT_STATE, WEBHOOK_RESOURCES, the BC_* settings,
    REDIS_URL.
    """
    from packetworker.outbound import ensure_subscriptions
    from packetworker.pipeline.context import outbound_context

    ctx = outbound_context(settings())
    try:
        outcomes = ensure_subscriptions(ctx)
    except ValueError as exc:
        raise fail(str(exc)) from None
    finally:
        ctx.close()
    table = RichTable("resource", "action", "subscription", "expires", "detail")
    for o in outcomes:
        table.add_row(o.resource, o.action, o.subscription_id, o.expires, o.detail)
    console.print(table)
