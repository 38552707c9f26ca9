"""The deploy files match the Procfile and the settings model (no Docker engine here: checked
as files). `.env.example` is generated from `Settings`; the others are written by hand."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

from packetworker.settings import Settings, env_example

ROOT = Path(__file__).resolve().parents[1]


def procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text(encoding="utf-8").splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip())


def test_env_example_is_what_the_generator_writes():
    generated = subprocess.run(
        [sys.executable, "-m", "packetworker.settings", "--env-example"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    assert (ROOT / ".env.example").read_text(encoding="utf-8") == generated == env_example()


def test_env_example_names_every_setting_with_its_default_and_sets_none():
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    assigned = dict(re.findall(r"^# ([A-Z0-9_]+)=(.*)$", text, flags=re.MULTILINE))
    for name, field in Settings.model_fields.items():
        default = field.default
        value = default.get_secret_value() if hasattr(default, "get_secret_value") else default
        assert assigned[name.upper()] == ("" if value is None else str(value)), name
    # Commented out: a copy used as .env changes nothing until a line is uncommented.
    assert not [line for line in text.splitlines() if line and not line.startswith("#")]


def test_a_copied_env_example_leaves_every_setting_at_its_default(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text(env_example(), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.delenv("PORT", raising=False)
    assert Settings().model_fields_set == set()


def test_dot_env_is_ignored_by_git():
    ignored = (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert ".env" in ignored
    assert ".env" in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()


def test_app_json_runs_the_procfile_processes_with_heroku_redis():
    app = json.loads((ROOT / "app.json").read_text(encoding="utf-8"))
    assert set(app["formation"]) == set(procfile())
    assert all(p["quantity"] >= 1 for p in app["formation"].values())
    assert [a["plan"].split(":")[0] for a in app["addons"]] == ["heroku-redis"]
    settings = {name.upper() for name in Settings.model_fields}
    assert set(app["env"]) <= settings, set(app["env"]) - settings


def test_compose_runs_redis_and_the_procfile_processes():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    services = compose["services"]
    assert set(services) == {"redis", *procfile()}
    assert services["redis"]["image"].startswith("redis:")
    for name, command in procfile().items():
        service = services[name]
        assert shlex.split(service["command"]) == shlex.split(command), name
        assert service["environment"]["REDIS_URL"] == "redis://redis:6379/0"
        assert "redis" in service["depends_on"]
        assert "build" in service
    assert services["web"]["ports"] == ["8000:8000"]


def test_compose_gives_the_worker_its_shutdown_grace_before_a_kill():
    worker = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))["services"][
        "worker"
    ]
    grace_ms = int(worker["stop_grace_period"].removesuffix("s")) * 1000
    assert grace_ms > Settings.model_fields["worker_shutdown_timeout_ms"].default


def test_dockerfile_is_slim_and_runs_as_a_non_root_user():
    lines = [
        line.strip()
        for line in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    [base] = [line.split()[1] for line in lines if line.upper().startswith("FROM ")]
    assert base.startswith("python:")
    assert base.endswith("-slim")
    users = [line.split()[1] for line in lines if line.upper().startswith("USER ")]
    assert users
    assert users[-1] not in ("root", "0", "0:0")
    # The USER comes before the command runs, and after everything that needs root.
    last_user = max(i for i, line in enumerate(lines) if line.upper().startswith("USER "))
    assert not [line for line in lines[last_user:] if line.upper().startswith("RUN ")]
    cmd = next(line for line in lines if line.upper().startswith("CMD "))
    assert json.loads(cmd[4:]) == shlex.split(procfile()["web"])
