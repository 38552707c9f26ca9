"""The Procfile's lines, run verbatim as a platform would, move a packet all the way through.

worker + clock + web against the portal sandbox and real Redis: the clock's poll lists the
packet, a worker applies it, the next poll acknowledges it; the web process answers health
checks; SIGTERM stops each process cleanly within the platform's 30-second kill window.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
import redis
from support import free_port, wait_for
from support.portal import DEMO_API_KEY, DEMO_APP_AREA

ROOT = Path(__file__).resolve().parents[1]


def procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text(encoding="utf-8").splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip())


@pytest.fixture
def namespace(redis_url):
    name = f"procfile-{uuid.uuid4().hex[:8]}"
    yield name
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(f"*{name}*"):
        client.delete(key)


def start(command: str, env: dict[str, str], log: Path) -> subprocess.Popen:
    # Each process in its own session, so SIGTERM reaches it as the platform would send it.
    return subprocess.Popen(
        shlex.split(command),
        env=env,
        cwd=log.parent,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def test_procfile_processes_sync_a_packet_and_stop_on_sigterm(
    portal_sandbox, redis_url, namespace, tmp_path, broker
):
    packet_id = portal_sandbox.enqueue(
        DEMO_APP_AREA, (ROOT / "samples" / "sales-order.xml").read_bytes(), user="rep-1"
    )
    web_port = free_port()
    env = {
        **os.environ,
        # The platform runs the commands with the app's bin directory on PATH.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "REDIS_URL": redis_url,
        "BROKER_URL": broker,
        "BROKER_NAMESPACE": namespace,
        "LEDGER_NAMESPACE": namespace,
        "DM_API_URL": portal_sandbox.url,
        "DM_APP_AREA": DEMO_APP_AREA,
        "DM_API_KEY": DEMO_API_KEY,
        "DM_STORAGE_HTTP_HOSTS": portal_sandbox.storage_hosts,
        "DM_POLL_INTERVAL": "0.5",
        "DM_POLL_JITTER": "0",
        "TARGET": "recording",
        "RECORDING_PATH": str(tmp_path / "applied.jsonl"),
        "ARCHIVE_URL": f"file://{tmp_path / 'archive'}",
        "SPOOL_DIR": str(tmp_path / "spool"),
        "PORT": str(web_port),
        "WEBHOOK_CLIENT_STATE": "procfile-test-state",
    }
    processes = {
        name: start(command, env, tmp_path / f"{name}.log") for name, command in procfile().items()
    }
    try:
        wait_for(
            lambda: packet_id in portal_sandbox.done_ids(DEMO_APP_AREA),
            timeout=90,
            what="the packet applied and acknowledged",
        )
        health = httpx.get(f"http://127.0.0.1:{web_port}/healthz", timeout=5)
        assert health.status_code == 200
        applied = (tmp_path / "applied.jsonl").read_text(encoding="utf-8").splitlines()
        assert len(applied) == 8  # header, 3 lines, 3 line inventories, 1 visit
    finally:
        for proc in processes.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes = {name: proc.wait(timeout=30) for name, proc in processes.items()}
    assert codes == {name: 0 for name in processes}, {
        name: (tmp_path / f"{name}.log").read_text(errors="replace")[-2000:] for name in processes
    }


# --- start-up refusals ------------------------------------------------------------------------

# Settings a deployment may have in the environment running the tests; the refusal tests
# start from none of them.
TARGET_SETTINGS = ("TARGET", "BC_", "DATAVERSE_", "CRMAAS_", "DYNAMICS_PORTAL_", "OUTBOUND_")


def bare_env(tmp_path: Path, **values: str) -> dict[str, str]:
    """The test's environment without any target setting, plus `values`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(TARGET_SETTINGS)}
    env.update(
        {
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "DM_APP_AREA": DEMO_APP_AREA,
            "ARCHIVE_URL": f"file://{tmp_path / 'archive'}",
            "SPOOL_DIR": str(tmp_path / "spool"),
            **values,
        }
    )
    return env


def run_to_exit(command: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        shlex.split(command),
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("process", ["worker", "clock"])
@pytest.mark.parametrize(
    ("values", "line"),
    [
        (
            {},
            "packetworker: TARGET=bc needs BC_TENANT, BC_CLIENT_ID, BC_CLIENT_SECRET "
            "(or BC_REFRESH_TOKEN)",
        ),
        (
            {"TARGET": "dataverse", "DATAVERSE_CLIENT_ID": "app"},
            "packetworker: TARGET=dataverse needs DATAVERSE_URL, DATAVERSE_TENANT, "
            "DATAVERSE_CLIENT_SECRET",
        ),
        (
            {"TARGET": "auto"},
            "packetworker: TARGET=auto is gone (it fell back to an in-memory emulator): set "
            "TARGET=bc for Business Central, or TARGET=bc-emulator to use the embedded emulator "
            "on purpose",
        ),
    ],
    ids=["default-bc", "dataverse", "auto"],
)
def test_procfile_process_refuses_to_start_without_its_target_settings(
    process, values, line, tmp_path
):
    done = run_to_exit(procfile()[process], bare_env(tmp_path, **values), tmp_path)

    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert done.stderr.splitlines() == [line]


def test_a_bare_dramatiq_worker_without_target_settings_stops_before_taking_work(tmp_path):
    """Run as `dramatiq packetworker.pipeline.worker` (not through the Procfile's check), each
    worker process still refuses at import, and dramatiq's main process stops."""
    command = f"{sys.executable} -m dramatiq packetworker.pipeline.worker --processes 1"

    done = run_to_exit(command, bare_env(tmp_path, REDIS_URL="redis://127.0.0.1:1/0"), tmp_path)

    assert done.returncode != 0
    assert "packetworker: TARGET=bc needs BC_TENANT" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("process", "ready"),
    [("worker", "Worker process is ready for action"), ("clock", "Clock polling")],
)
def test_procfile_process_starts_with_an_explicit_emulator_target(
    process, ready, redis_url, namespace, tmp_path
):
    env = bare_env(
        tmp_path,
        TARGET="bc-emulator",
        REDIS_URL=redis_url,
        BROKER_NAMESPACE=namespace,
        LEDGER_NAMESPACE=namespace,
        DM_API_URL="http://127.0.0.1:9/mobile",  # nothing answers; no poll runs here
        DM_API_KEY="unused",
        DM_POLL_INTERVAL="3600",
    )
    log = tmp_path / f"{process}.log"
    proc = start(procfile()[process], env, log)
    try:
        wait_for(
            lambda: ready in log.read_text(errors="replace") or proc.poll() is not None,
            timeout=60,
            what=f"the {process} to start",
        )
        assert proc.poll() is None, log.read_text(errors="replace")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    assert code == 0, log.read_text(errors="replace")[-2000:]
