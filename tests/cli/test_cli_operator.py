"""The operator's view of the command line: one-line errors instead of tracebacks, pushes
that refuse bad packets, the sandbox fed from another terminal, and help that says how.

Commands whose errors escape Typer run as real processes (`python -m packetworker`), as an
operator would run them; the others through Typer's runner.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
import redis
import typer
from support import free_port, wait_for
from support.cli import run_packetworker as run
from support.portal import DEMO_API_KEY, DEMO_APP_AREA
from typer.testing import CliRunner

from packetworker.cli import app
from packetworker.pipeline import replay as replaying
from packetworker.settings import get_settings

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
runner = CliRunner()

# Settings a deployment may have in the environment running the tests; these tests start
# from none of them.
TARGET_SETTINGS = ("TARGET", "BC_", "DATAVERSE_", "CRMAAS_", "DYNAMICS_PORTAL_", "OUTBOUND_")
WEBHOOK_SETTINGS = ("WEBHOOK_",)


def bare_env(tmp_path: Path, **values: str) -> dict[str, str]:
    """The test's environment without target or webhook settings, plus `values`."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(TARGET_SETTINGS + WEBHOOK_SETTINGS)
    }
    env.update(
        ARCHIVE_URL=f"file://{tmp_path / 'archive'}",
        SPOOL_DIR=str(tmp_path / "spool"),
        DM_APP_AREA="OPS",
        **values,
    )
    return env


@pytest.fixture
def namespace(redis_url):
    name = f"cli-operator-{uuid.uuid4().hex[:8]}"
    yield name
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(f"*{name}*"):
        client.delete(key)


@pytest.fixture(autouse=True)
def fresh_settings(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    for name in ("DM_API_URL", "DM_APP_AREA", "DM_API_KEY", "REDIS_URL", "TARGET"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


# --- §4: one line, not a traceback -----------------------------------------------------------


@pytest.mark.parametrize("command", [["status"], ["dlq", "list"]])
def test_a_redis_that_does_not_answer_is_one_line_without_the_password(command, tmp_path):
    env = bare_env(
        tmp_path, TARGET="plan", REDIS_URL=f"redis://:hunter22@127.0.0.1:{free_port()}/3"
    )

    done = run(*command, env=env, cwd=tmp_path)

    assert done.returncode == 1
    [line] = done.stderr.splitlines()
    assert line.startswith("packetworker: Redis at redis://127.0.0.1:")
    assert line.endswith("start Redis or point REDIS_URL at it")
    assert "hunter22" not in done.stderr + done.stdout


@pytest.mark.parametrize("command", [["status", "--json"], ["dlq", "list"]])
def test_status_and_dlq_list_need_no_target_settings(command, redis_url, namespace, tmp_path):
    env = bare_env(tmp_path, REDIS_URL=redis_url, LEDGER_NAMESPACE=namespace)

    done = run(*command, env=env, cwd=tmp_path)

    assert done.returncode == 0, done.stderr
    assert "TARGET=bc needs" not in done.stderr


@pytest.mark.parametrize("process", ["worker", "clock"])
def test_worker_and_clock_still_refuse_without_target_settings(process, tmp_path):
    done = run(process, env=bare_env(tmp_path, REDIS_URL="redis://127.0.0.1:1/0"), cwd=tmp_path)

    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "packetworker: TARGET=bc needs BC_TENANT, BC_CLIENT_ID, BC_CLIENT_SECRET "
        "(or BC_REFRESH_TOKEN)"
    ]


def test_replay_of_an_unknown_target_is_one_line(tmp_path):
    done = run(
        "replay",
        "--target",
        "bogus",
        str(SAMPLES / "visit-start.xml"),
        env=bare_env(tmp_path),
        cwd=tmp_path,
    )

    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert line.startswith("packetworker: unknown target 'bogus' (known: bc, bc-emulator")


def test_sandbox_start_with_a_packet_without_a_user_is_one_line(tmp_path):
    done = run(
        "sandbox",
        "--port",
        "0",
        "--enqueue",
        str(SAMPLES / "invalid" / "junk.xml"),
        env=bare_env(tmp_path),
        cwd=tmp_path,
    )

    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "error: junk.xml: no user given and no salesmancode in the packet; give --user USER"
    ]
    assert done.stdout == ""


# --- §5: nothing bad is pushed --------------------------------------------------------------


@pytest.fixture
def portal_env(monkeypatch, portal_sandbox, tmp_path):
    monkeypatch.setenv("DM_API_URL", portal_sandbox.url)
    monkeypatch.setenv("DM_APP_AREA", DEMO_APP_AREA)
    monkeypatch.setenv("DM_API_KEY", DEMO_API_KEY)
    monkeypatch.setenv("DM_STORAGE_HTTP_HOSTS", portal_sandbox.storage_hosts)
    monkeypatch.setenv("SPOOL_DIR", str(tmp_path / "spool"))
    get_settings.cache_clear()
    return portal_sandbox


@pytest.mark.parametrize("name", ["truncated.xml", "billion-laughs.xml", "junk.xml"])
def test_push_refuses_an_invalid_packet_with_its_error_and_uploads_nothing(name, portal_env):
    bad = SAMPLES / "invalid" / name
    expected = (bad.parent / f"{name}.expected").read_text(encoding="utf-8").strip()

    result = runner.invoke(app, ["push", "salesman7", str(bad)])

    assert result.exit_code == 1
    assert expected in result.output
    assert "nothing was pushed to salesman7" in result.output
    assert portal_env.uploads(DEMO_APP_AREA) == []
    assert [r for r in portal_env.requests() if "/push/" in r.path] == []


def test_push_refuses_a_packet_over_the_field_limit(portal_env, monkeypatch):
    monkeypatch.setenv("MAX_FIELD_BYTES", "4")
    get_settings.cache_clear()

    result = runner.invoke(app, ["push", "salesman7", str(SAMPLES / "sales-order.xml")])

    assert result.exit_code == 1
    assert "nothing was pushed" in result.output
    assert portal_env.uploads(DEMO_APP_AREA) == []


# --- §6: the sandbox from another terminal --------------------------------------------------


def test_sandbox_enqueue_lists_packets_as_their_salesman_or_the_given_user(portal_sandbox):
    order, visit = SAMPLES / "sales-order.xml", SAMPLES / "visit-start.json"

    first = runner.invoke(app, ["sandbox", "enqueue", str(order), "--url", portal_sandbox.url])
    second = runner.invoke(
        app, ["sandbox", "enqueue", str(visit), "--user", "u9", "--url", portal_sandbox.url]
    )

    assert (first.exit_code, second.exit_code) == (0, 0), first.output + second.output
    listed = portal_sandbox.queue(DEMO_APP_AREA).receive("packet")
    assert sorted(e["userName"] for e in listed) == ["rep-plovdiv-07", "u9"]
    assert {e["id"] for e in listed} <= set((first.output + second.output).split())


def test_sandbox_enqueue_of_a_packet_naming_no_user_says_to_give_one(portal_sandbox):
    result = runner.invoke(
        app,
        ["sandbox", "enqueue", str(SAMPLES / "invalid" / "junk.xml"), "--url", portal_sandbox.url],
    )

    assert result.exit_code == 1
    assert "no user given and the packet names no salesmancode" in result.output
    assert "give --user USER" in result.output
    assert portal_sandbox.pending(DEMO_APP_AREA) == []


def test_sandbox_enqueue_without_a_sandbox_says_how_to_start_one(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    result = runner.invoke(app, ["sandbox", "enqueue", str(SAMPLES / "payment.xml"), "--url", url])

    assert result.exit_code == 1
    assert f"no sandbox answers at {url}" in result.output
    assert "packetworker sandbox" in result.output


@pytest.mark.parametrize(
    ("params", "body", "message"),
    [
        ({}, b"", "the request has no body"),
        ({}, b"not a packet", "no user given and the packet names no salesmancode"),
        ({"user": "u1", "format": "csv"}, b"<x/>", "format must be xml or json"),
        ({"user": "u1", "app_area": "NOPE"}, b"<x/>", "unknown app area 'NOPE'"),
    ],
    ids=["no-body", "no-user", "bad-format", "unknown-app-area"],
)
def test_a_bad_admin_enqueue_answers_400_with_what_is_wrong_and_how_to_ask(
    portal_sandbox, params, body, message
):
    answer = httpx.post(f"{portal_sandbox.admin_url}/enqueue", params=params, content=body)

    assert answer.status_code == 400
    assert message in answer.json()["message"]
    assert answer.json()["usage"].startswith("POST /_sandbox/enqueue?user=USER")
    assert portal_sandbox.pending(DEMO_APP_AREA) == []


def test_admin_enqueue_takes_the_user_and_format_from_the_packet(portal_sandbox):
    body = (SAMPLES / "payment.json").read_bytes()

    answer = httpx.post(f"{portal_sandbox.admin_url}/enqueue", content=body)

    assert answer.status_code == 200, answer.text
    assert answer.json()["user"] == "rep-plovdiv-07"
    assert portal_sandbox.pending(DEMO_APP_AREA) == [answer.json()["id"]]


# --- §7: output that fits, help that says how -----------------------------------------------


def every_command() -> list[str]:
    """The words (`packetworker …`) of every command, groups' commands included; a group
    counts when it runs by itself too (`sandbox`)."""
    found: list[str] = []

    def walk(command, words: str) -> None:
        # Typer's groups have `commands` (typer vendors its own click, so no isinstance).
        subcommands = getattr(command, "commands", None)
        for name, sub in (subcommands or {}).items():
            walk(sub, f"{words} {name}".strip())
        if words and (subcommands is None or command.invoke_without_command):
            found.append(words)

    walk(typer.main.get_command(app), "")
    return found


# `check` belongs to the preflight's owner; its help is checked there.
@pytest.mark.parametrize("words", every_command(), ids=lambda w: w.replace(" ", "-"))
def test_help_of_every_command_shows_an_example_and_the_settings_it_needs(words):
    result = runner.invoke(app, [*words.split(), "--help"], env={"COLUMNS": "80"})

    assert result.exit_code == 0, result.output
    assert f"Example: packetworker {words}" in " ".join(result.output.split())
    assert "Settings:" in result.output
    assert "<bool>" not in result.output


def test_boolean_options_render_as_flags():
    result = runner.invoke(app, ["replay", "--help"], env={"COLUMNS": "80"})

    options = [line.split()[0] for line in result.output.splitlines() if line.startswith("  --")]
    assert {"--queue", "--accept-quarantined", "--help"} <= set(options)
    assert "--queue <" not in result.output


def test_replay_lists_reasons_below_a_compact_summary_with_whole_ids_and_a_legend():
    visit, junk = SAMPLES / "visit-start.xml", SAMPLES / "invalid" / "junk.xml"

    result = runner.invoke(
        app, ["replay", str(visit), str(junk)], env={"COLUMNS": "80", "TARGET": "plan"}
    )

    lines = result.output.splitlines()
    junk_id = replaying.packet_id_for(junk)
    assert lines[2:5] == [
        "2 packets replayed into plan: 1 applied, 1 quarantined",
        "records: 1 applied",
        "",
    ]
    # One line per packet, the path last; the reason is not in it but below, with the id.
    assert lines[5].split() == ["applied", "1", "applied", str(visit)]
    assert lines[6].split() == ["quarantined", "-", str(junk)]
    why = lines.index("why:")
    assert lines[why + 1 : why + 3] == [
        f"  quarantined {junk} (id {junk_id})",
        "    invalid packet: junk.xml: the packet is neither XML nor JSON",
    ]
    assert "  applied: written to the target" in lines[lines.index("records:") :]
    assert any(line.startswith("  quarantined: not applied") for line in lines)


def test_replay_exits_1_when_a_packet_is_quarantined_unless_that_is_accepted():
    junk = str(SAMPLES / "invalid" / "junk.xml")

    refused = runner.invoke(app, ["replay", junk], env={"TARGET": "plan"})
    accepted = runner.invoke(app, ["replay", junk, "--accept-quarantined"], env={"TARGET": "plan"})
    clean = runner.invoke(app, ["replay", str(SAMPLES / "visit-start.xml")], env={"TARGET": "plan"})

    assert (refused.exit_code, accepted.exit_code, clean.exit_code) == (1, 0, 0)


def test_the_readme_first_command_replays_the_samples_and_exits_0():
    """The README's first command, as a new user pastes it (after the install), on a clone."""
    first = re.findall(r"```sh\n(.+?)\n```", (ROOT / "README.md").read_text(encoding="utf-8"))[0]
    command = first.split("&&")[-1].split()
    assert command[:3] == ["packetworker", "replay", "samples/"]
    shutil.copytree(SAMPLES, Path.cwd() / "samples")  # the clone's samples, in a scratch folder

    result = runner.invoke(app, command[1:], env={"COLUMNS": "80"}, catch_exceptions=False)

    assert result.exit_code == 0, result.output
    assert "quarantined" in result.output  # the invalid samples are, and that is accepted


# --- the clock's and web's start-up ---------------------------------------------------------


def start(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "packetworker", *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    return err


def test_the_clock_does_not_log_scheduler_lines_every_tick(redis_url, namespace, tmp_path):
    env = bare_env(
        tmp_path,
        TARGET="plan",
        REDIS_URL=redis_url,
        BROKER_NAMESPACE=namespace,
        LEDGER_NAMESPACE=namespace,
        DM_POLL_INTERVAL="0.2",
        DM_POLL_JITTER="0",
        LOG_LEVEL="INFO",
    )
    client = redis.Redis.from_url(redis_url)
    proc = start(["clock"], env, tmp_path)
    try:
        # Several ticks have run: their polls are queued (coalesced ones count once).
        wait_for(
            lambda: client.llen(f"{namespace}:pw-poll") >= 3 or proc.poll() is not None,
            timeout=30,
            what="three polls queued by the clock",
        )
    finally:
        err = stop(proc)
    assert client.llen(f"{namespace}:pw-poll") >= 3, err
    assert "Clock polling OPS every 0.2s." in err
    assert "apscheduler" not in err


def test_web_starts_without_webhook_settings_and_serves_no_webhook(redis_url, namespace, tmp_path):
    port = free_port()
    env = bare_env(tmp_path, REDIS_URL=redis_url, LEDGER_NAMESPACE=namespace, WEB_PORT=str(port))
    env.pop("PORT", None)
    proc = start(["web"], env, tmp_path)
    base = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if proc.poll() is not None:
            raise AssertionError(proc.communicate()[1])
        try:
            return httpx.get(f"{base}/healthz").status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_for(healthy, timeout=30, what="the web process to answer /healthz")
        webhook = httpx.post(f"{base}/bc/webhook", json={"value": [{"clientState": ""}]})
    finally:
        stop(proc)
    assert webhook.status_code == 404


def test_web_with_a_webhook_url_but_no_client_state_refuses_to_start(tmp_path):
    env = bare_env(tmp_path, WEBHOOK_URL="https://example.invalid/bc/webhook")

    done = run("web", env=env, cwd=tmp_path)

    assert done.returncode == 1
    assert "WEBHOOK_CLIENT_STATE must be set" in done.stderr
    assert "Traceback" not in done.stderr
