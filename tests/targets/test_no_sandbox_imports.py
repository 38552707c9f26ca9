"""Production code never reaches the sandbox: not by import, not by a module name in a string
(`importlib.import_module("packetworker.sandbox...")`). Emulators come in through the
`packetworker.targets` entry points that `pyproject.toml` declares."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "packetworker"
# User-facing entry points may start the sandbox on request (`packetworker sandbox`).
NOT_PRODUCTION = ("sandbox", "cli")


def production_modules() -> list[Path]:
    return [
        path
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.relative_to(PACKAGE).parts[0] not in NOT_PRODUCTION
    ]


def sandbox_references(path: Path, root: Path = PACKAGE) -> list[str]:
    """Each import of, or string naming, `packetworker.sandbox` in `path`, as 'file:line'
    (file relative to `root`)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names = [node.value]
        else:
            continue
        if any(name.startswith("packetworker.sandbox") for name in names):
            found.append(f"{path.relative_to(root)}:{node.lineno}")
    return found


def test_no_production_module_imports_or_names_the_sandbox() -> None:
    modules = production_modules()
    assert any(path.parts[-2:] == ("targets", "__init__.py") for path in modules)

    found = [ref for path in modules for ref in sandbox_references(path)]

    assert found == []


def test_the_scan_finds_a_deferred_import_by_string(tmp_path) -> None:
    module = tmp_path / "lazy.py"
    module.write_text(
        "import importlib\n"
        "def build():\n"
        "    return importlib.import_module('packetworker.sandbox.targets.bc')\n"
    )

    assert sandbox_references(module, root=tmp_path) == ["lazy.py:3"]
