"""Commands of the pipeline: replay, status, dead-letter queue, and the clock process."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table as RichTable

from packetworker.cli.app import app, console, fail, settings
from packetworker.pipeline.context import PipelineContext, check_configured
from packetworker.pipeline.replay import ReplaySummary
from packetworker.pipeline.results import ProcessResult
from packetworker.settings import Settings
from packetworker.targets import target_info

dlq = typer.Typer(
    help="Inspect and re-drive quarantined packets (and see held ones).", no_args_is_help=True
)
app.add_typer(dlq, name="dlq")


# What `replay` applies to when neither --target nor TARGET names a target: it runs on a
# laptop with nothing configured, and says so on its first line. Long-running processes have
# no such default (see `check_configured`).
REPLAY_TARGET = "bc-emulator"


def _replay_settings(target: str | None) -> Settings:
    """Settings with the target replay uses: --target, else TARGET if set, else the emulator."""
    s = settings()
    chosen = target or (s.target if "target" in s.model_fields_set else REPLAY_TARGET)
    return s.model_copy(update={"target": chosen})


@app.command()
def replay(
    paths: Annotated[
        list[str], typer.Argument(metavar="PATH", help="Files, folders, globs or archived ids.")
    ],
    queue: Annotated[bool, typer.Option("--queue", help="Enqueue to the workers.")] = False,
    target: Annotated[str | None, typer.Option(help="Override TARGET.")] = None,
    app_area: Annotated[str | None, typer.Option("--app-area")] = None,
    accept_quarantined: Annotated[
        bool,
        typer.Option(
            "--accept-quarantined",
            help="Exit 0 although packets were quarantined (they are expected, e.g. samples/).",
        ),
    ] = False,
) -> None:
    """Run local packets through the pipeline: in process, or queued to the workers.

    Prints one line per packet, then why each quarantined packet was refused, then what
    the outcome words mean. Exit status 1 when a packet was quarantined (unless
    --accept-quarantined) or could not be processed.

    Example: packetworker replay samples/ --accept-quarantined

    Settings: TARGET (default here: bc-emulator) and the target's own; REDIS_URL when set
    (else an in-memory ledger); ARCHIVE_URL. With --queue: REDIS_URL, DM_APP_AREA.
    """
    from packetworker.pipeline import replay as replaying

    if queue:
        s = settings().model_copy(update={"target": target}) if target else settings()
        _enqueue(paths, s, app_area or s.dm_app_area or replaying.DEFAULT_APP_AREA)
        return
    s = _replay_settings(target)
    summary = target_info(s.target).summary
    line = f"target: {s.target}{f' ({summary})' if summary else ''}"
    console.print(line, highlight=False, soft_wrap=True)
    ctx = PipelineContext.for_replay(s)
    total = sum(1 for p in paths for _ in replaying.expand(p)) or None
    rows: list[tuple[str, ProcessResult]] = []
    columns = (
        TextColumn("replay"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
    )

    def progress(item: str, result: ProcessResult) -> None:
        rows.append((item, result))
        bar.update(task, advance=1, description=item)

    try:
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task("", total=total)
            summary = replaying.replay(paths, ctx=ctx, app_area=app_area, progress=progress)
        for text in replay_report(rows, summary, s):
            console.print(text, highlight=False, soft_wrap=True)
        for line in ctx.target.describe():
            console.print(line, highlight=False, soft_wrap=True)
    finally:
        ctx.close()
    if summary.errors or (summary.quarantined and not accept_quarantined):
        raise typer.Exit(1)


def _enqueue(paths: list[str], s: Settings, app_area: str) -> None:
    from packetworker.pipeline import replay as replaying
    from packetworker.pipeline.actors import enqueue_packet

    ctx = PipelineContext.from_settings(s)
    queued: list[str] = []
    try:
        for item in paths:
            files = list(replaying.expand(item))
            ids = [replaying.stage_file(ctx, f, app_area=app_area) for f in files] or [item]
            for packet_id in ids:
                enqueue_packet(app_area, packet_id)
                queued.append(packet_id)
                console.print(f"queued {packet_id}", highlight=False, soft_wrap=True)
    finally:
        ctx.close()
    console.print(f"queued {len(queued)} packets for app area {app_area}", highlight=False)
    if queued:
        console.print(f"follow one with: packetworker trace {queued[0]}", highlight=False)


# What the outcome words of a replay report mean; only the words a report uses are explained.
PACKET_WORDS = {
    "applied": "every record reached the target (or was already there); the packet is done",
    "duplicate": "same bytes as a packet processed before; not applied again",
    "quarantined": "not applied; kept with its bytes and reason until re-driven (dlq retry)",
    "waiting": "held: the target refused it for a reason time fixes (its customer is blocked "
    "or not there yet); retried, not acknowledged",
    "failed": "could not be processed (a transient error, or a bug); try again",
}
RECORD_WORDS = {
    "applied": "written to the target",
    "unchanged": "already in the target (its idempotency key matched); nothing written",
    "skipped": "nothing to do in this target: a table its mapping leaves out, a read-only "
    "record, or one the mapping filters out",
    "failed": "refused by the target; its packet is quarantined",
}
_STYLES = {"quarantined": "yellow", "waiting": "yellow", "failed": "red", "error": "red"}


def _counts(counts: dict[str, int], order: dict[str, str]) -> str:
    ranked = sorted(
        counts.items(),
        key=lambda kv: (list(order).index(kv[0]) if kv[0] in order else len(order), kv[0]),
    )
    return ", ".join(f"{n} {word}" for word, n in ranked) or "none"


def replay_report(
    rows: list[tuple[str, ProcessResult]], summary: ReplaySummary, s: Settings
) -> list[str]:
    """The lines `replay` prints (rich markup), each meant to be printed unwrapped.

    Totals first; then one line per packet with its path last (so a narrow terminal wraps
    the path, not a table); then the reason of each packet not applied, with its whole id;
    then the legend of the outcome words used.
    """
    lines = [
        f"{summary.packets} packets replayed into {s.target}: "
        f"{_counts(summary.states, PACKET_WORDS)}",
        f"records: {_counts(summary.records, RECORD_WORDS)}",
        "",
    ]
    width = max((len(_records(r)) for _, r in rows), default=0)
    for item, result in rows:
        state = result.state
        styled = f"[{_STYLES[state]}]{state:<11}[/]" if state in _STYLES else f"{state:<11}"
        same = f"  (same content as {result.duplicate_of})" if result.duplicate_of else ""
        lines.append(f"{styled} {_records(result):<{width}}  {item}{same}")
    reasons = [(item, r.packet_id, r.state, r.error) for item, r in rows if r.error]
    shown = {item for item, *_ in reasons}
    reasons += [(item, None, "error", e) for item, e in summary.errors.items() if item not in shown]
    if reasons:
        lines += ["", "why:"]
        for item, packet_id, state, error in reasons:
            named = f"{item} (id {packet_id})" if packet_id and packet_id != item else item
            # An invalid packet's message repeats its path; its file name says as much.
            error = error.replace(item, Path(item).name) if Path(item).name else error
            lines += [f"  [{_STYLES.get(state, 'yellow')}]{state}[/] {named}", f"    {error}"]
    if summary.quarantined:
        lines.append(
            "  (with REDIS_URL set, `packetworker dlq show ID` shows one again and "
            "`packetworker dlq retry ID` re-drives it)"
        )
    used_states = set(summary.states)
    used_records = set(summary.records)
    legend = [f"  {w}: {m}" for w, m in PACKET_WORDS.items() if w in used_states]
    record_legend = [f"  {w}: {m}" for w, m in RECORD_WORDS.items() if w in used_records]
    if legend or record_legend:
        lines += ["", "packets:", *legend] if legend else [""]
        lines += ["records:", *record_legend] if record_legend else []
    if s.target == "plan":
        lines.append(f"plan written to {s.plan_output}")
    return [*lines, ""]


def _records(result: ProcessResult) -> str:
    return _counts(result.outcomes, RECORD_WORDS) if result.outcomes else "-"


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Packets per outcome (and how many acknowledged), oldest pending age, acks waiting,
    the last poll and the held packets (with why), per app area.

    Example: packetworker status --json

    Settings: REDIS_URL, LEDGER_NAMESPACE.
    """
    from packetworker.pipeline.operations import status as pipeline_status

    ctx = PipelineContext.from_settings(settings())
    try:
        report = pipeline_status(ctx)
    finally:
        ctx.close()
    if as_json:
        console.print_json(orjson.dumps(report).decode())
        return
    if not report:
        console.print("the ledger holds no packets")
    for area, info in report.items():
        table = RichTable(title=f"app area {area}")
        table.add_column("outcome")
        table.add_column("packets", justify="right")
        table.add_column("acknowledged", justify="right")
        for outcome, count in info["counts"].items():
            acked = info["acknowledged"].get(outcome)
            table.add_row(outcome, str(count), "-" if acked is None else str(acked))
        console.print(table)
        age = info["oldest_pending_age"]
        acks = ", ".join(f"{n} {t}" for t, n in info["pending_acks"].items())
        poll = info["last_poll"]
        console.print(
            f"oldest pending: {'none' if age is None else f'{age:.0f}s'}; "
            f"stuck: {info['stuck']}; acks waiting: {acks}; "
            f"last poll: {_when(poll['at']) + ' ' + poll['result'] if poll else 'none'}",
            highlight=False,
        )
        if info["held_packets"]:
            _print_held(info["held_packets"])


def _print_held(held: list[dict]) -> None:
    """Held packets: not acknowledged, retried until what they wait for changes."""
    table = RichTable(title=f"{len(held)} held packets (waiting, not acknowledged)")
    for column in ("packet id", "user", "company", "held for", "why"):
        table.add_column(column, overflow="fold")
    for item in held:
        hours = item["held_for"] / 3600
        table.add_row(
            item["packet_id"],
            item.get("user") or "",
            item.get("company") or "",
            f"{hours:.1f} h" if hours >= 1 else f"{item['held_for'] / 60:.0f} min",
            item.get("reason") or "",
        )
    console.print(table)


def _when(at: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@dlq.command("list")
def dlq_list_command(app_area: Annotated[str | None, typer.Option("--app-area")] = None) -> None:
    """Quarantined (and stuck) packets with their errors, then held ones with why they wait.

    Example: packetworker dlq list --app-area DEMO

    Settings: REDIS_URL, LEDGER_NAMESPACE.
    """
    from packetworker.pipeline.operations import dlq_list

    ctx = PipelineContext.from_settings(settings())
    try:
        items = dlq_list(ctx, app_area)
    finally:
        ctx.close()
    table = RichTable(title=f"{len(items)} quarantined, stuck or held packets")
    for column in ("packet id", "app area", "user", "outcome", "acked", "attempts", "error"):
        table.add_column(column, no_wrap=column == "packet id")
    for e in items:
        table.add_row(
            e["packet_id"],
            e["app_area"],
            e.get("user") or "",
            e["outcome"],
            "yes" if e["acknowledged"] else "no",
            str(e["attempts"]),
            e.get("last_error") or "",
        )
    console.print(table)


@app.command()
def trace(
    packet_id: str,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """A packet's whole story, as the web console's packet page shows it: outcome and
    acknowledgement, timeline, tables and record counts, target references, errors.

    Example: packetworker trace 4500f9fd-5deb-4657-82d3-4a14f2766b90

    Settings: REDIS_URL, LEDGER_NAMESPACE, ARCHIVE_URL.
    """
    from packetworker.pipeline.operations import story

    ctx = PipelineContext.from_settings(settings())
    try:
        told = story(ctx, packet_id)
    finally:
        ctx.close()
    if told is None:
        raise fail(f"packet {packet_id} is not in the ledger")
    if as_json:
        console.print_json(orjson.dumps(told, default=str).decode())
        return
    for line in story_lines(told):
        console.print(line, highlight=False, markup=False, soft_wrap=True)


def story_lines(told: dict) -> list[str]:
    """`trace`'s text: the same sections, in the same order, as the console's packet page."""
    entry = told["entry"]
    acked = "acknowledged" if entry["acknowledged"] else "not acknowledged"
    lines = [
        f"packet {entry['packet_id']}",
        f"  app area {entry['app_area']}, user {entry.get('user') or '-'}, "
        f"source {entry['source']}, list {entry['list_type']}",
        f"  outcome: {entry['outcome']}, {acked}; attempts {entry['attempts']}",
    ]
    if entry.get("documents"):
        lines.append(f"  documents: {entry['documents'].replace(',', ', ')}")
    if entry.get("duplicate_of"):
        lines.append(f"  same content as {entry['duplicate_of']}")
    lines.append("timeline")
    for step in told["timeline"]:
        detail = f"  {step['detail']}" if step.get("detail") else ""
        when, attempt = _when(step["at"]), step["attempt"]
        lines.append(f"  {when}  {step['event']:<13} attempt {attempt}{detail}")
    lines.append("tables")
    if told["tables_error"]:
        lines.append(f"  ({told['tables_error']})")
    for table, by_status in told["tables"].items():
        counts = ", ".join(f"{n} {status}" for status, n in by_status.items()) or "no records"
        lines.append(f"  {table}: {counts}")
    lines.append("records in the target")
    if not told["records"]:
        lines.append("  (none linked)")
    for row in told["records"]:
        lines.append(f"  {row['table']}/{row['row'] or '-'}  ->  {row['target_ref'] or '(no ref)'}")
    lines.append("errors")
    lines += [f"  {error}" for error in told["errors"]] or ["  (none)"]
    archive = told["archive"]
    if archive is not None:
        lines.append(f"archive: {entry['archive_key']} ({entry.get('size')} bytes)")
    return lines


@dlq.command("show")
def dlq_show_command(packet_id: str) -> None:
    """One packet's ledger entry and archive metadata, as JSON.

    Example: packetworker dlq show 4500f9fd-5deb-4657-82d3-4a14f2766b90

    Settings: REDIS_URL, LEDGER_NAMESPACE, ARCHIVE_URL.
    """
    from packetworker.pipeline.operations import dlq_show

    ctx = PipelineContext.from_settings(settings())
    try:
        shown = dlq_show(ctx, packet_id)
    finally:
        ctx.close()
    if shown is None:
        raise fail(f"packet {packet_id} is not in the ledger")
    console.print_json(orjson.dumps(shown, default=str).decode())


@dlq.command("retry")
def dlq_retry_command(
    packet_id: Annotated[str | None, typer.Argument()] = None,
    retry_all: Annotated[bool, typer.Option("--all", help="Every quarantined packet.")] = False,
    here: Annotated[bool, typer.Option("--here", help="Process in this process.")] = False,
) -> None:
    """Re-drive quarantined packets once the cause is fixed (queued to the workers); a held
    packet is tried again at once.

    Example: packetworker dlq retry --all

    Settings: REDIS_URL, LEDGER_NAMESPACE, ARCHIVE_URL; with --here also TARGET and the
    target's own.
    """
    from packetworker.pipeline.operations import dlq_retry, dlq_retry_all

    if bool(packet_id) == retry_all:
        raise fail("name one packet id, or --all", code=2)
    enqueue = None
    if not here:
        from packetworker.pipeline.actors import enqueue_packet as enqueue
    ctx = PipelineContext.from_settings(settings())
    try:
        if retry_all:
            results = dlq_retry_all(ctx, enqueue=enqueue)
        else:
            results = {packet_id: dlq_retry(ctx, packet_id, enqueue=enqueue)}
    except LookupError as exc:
        raise fail(str(exc)) from None
    finally:
        ctx.close()
    for pid, result in results.items():
        done = "queued" if result is None else f"{result.state} {result.error or ''}".strip()
        console.print(f"{pid}: {done}", highlight=False)


@app.command()
def clock() -> None:
    """The scheduler process: enqueue a poll per app area every DM_POLL_INTERVAL seconds.

    Example: packetworker clock

    Settings: REDIS_URL, DM_APP_AREA, DM_POLL_INTERVAL, TARGET and the target's own;
    OUTBOUND_USERS and WEBHOOK_URL (with the BC_* settings) add outbound jobs.
    """
    from packetworker.pipeline.clock import run_clock

    s = settings()
    check_configured(s)
    try:
        run_clock(s)
    except ValueError as exc:
        raise fail(str(exc), code=2) from None


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def worker(ctx: typer.Context) -> None:
    """The worker process: check the settings, then become `dramatiq
    packetworker.pipeline.worker` with the WORKER_* options (extra options are passed on).

    Example: packetworker worker --processes 2 --threads 4

    Settings: REDIS_URL, DM_API_URL, DM_APP_AREA, DM_API_KEY, ARCHIVE_URL, TARGET and the
    target's own (DM_STORAGE_HTTP_HOSTS=127.0.0.1 against the sandbox).
    """
    # The check runs here, once, because dramatiq's main process imports none of our code: it
    # forks children that do, so a refusal there would come once per child, after the fork.
    from packetworker.pipeline.broker import worker_argv

    s = settings()
    check_configured(s)
    argv = [*worker_argv(s), *ctx.args]
    sys.stdout.flush()
    os.execv(argv[0], argv)  # noqa: S606 - our own interpreter, running dramatiq's CLI
