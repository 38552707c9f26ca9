"""The README is the operator's contract: its settings table and commands must stay true."""

from __future__ import annotations

import re
from pathlib import Path

from packetworker.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _commands() -> list[str]:
    return re.findall(r"```sh\n(.+?)\n```", README)


def test_readme_lists_every_setting_with_its_default():
    for name, field in Settings.model_fields.items():
        row = next(
            (line for line in README.splitlines() if line.startswith(f"| `{name.upper()}` |")),
            None,
        )
        assert row is not None, f"README settings table lacks {name.upper()}"
        default = (
            field.default.get_secret_value()
            if hasattr(field.default, "get_secret_value")
            else field.default
        )
        if default not in (None, ""):
            assert str(default) in row, f"README row for {name.upper()} should show {default!r}"


def test_ci_runs_exactly_the_readme_test_command():
    first, second = _commands()[:2]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert second in ci.splitlines()
    assert "pytest" in second
    assert "packetworker replay" in first


def test_procfile_processes_are_documented():
    for line in (ROOT / "Procfile").read_text(encoding="utf-8").splitlines():
        if line.strip():
            process, command = line.split(":", 1)
            assert f"| `{process}` | `{command.strip()}` |" in README
