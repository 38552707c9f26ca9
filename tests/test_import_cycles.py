"""No import circles among `packetworker` modules.

The graph counts every import wherever it stands (module top, inside a function, under
`TYPE_CHECKING`) and every string that names a module (`importlib.import_module(...)`, a
`"module:attribute"` entry point): a lazy import still ties the two modules together. Logger
names are not imports, nor is a command line that runs a module in a new process
(`NOT_IMPORTS`). A package's `__init__` is an edge only where it is named itself (`from pkg
import name` with `name` not a submodule), not because a submodule of it was imported.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Strings that name a module without importing it, each with why.
NOT_IMPORTS = {
    ("packetworker.pipeline.broker", "packetworker.pipeline.worker"): "dramatiq's command line",
}


def module_names(root: Path, package: str) -> dict[str, Path]:
    """Every module of `package` below `root`, by dotted name (`pkg.sub` for `sub/__init__`)."""
    names = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base[: len(base) - node.level + (1 if is_package else 0)]
    return ".".join([*base, node.module] if node.module else base)


def imports_of(module: str, path: Path, known: set[str]) -> set[str]:
    """The modules of `known` that `module` (at `path`) imports or names in a string."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    targets: set[str] = set()
    loggers = {
        id(call.args[0])
        for call in ast.walk(tree)
        if isinstance(call, ast.Call) and call.args and _called(call) == "getLogger"
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(node, module, path.name == "__init__.py")
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                targets.add(submodule if submodule in known else source)
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in loggers
        ):
            targets.add(node.value.partition(":")[0])
    return {
        name
        for name in targets
        if name in known and name != module and (module, name) not in NOT_IMPORTS
    }


def _called(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    modules = module_names(root, package)
    known = set(modules)
    return {name: imports_of(name, path, known) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def test_no_packetworker_modules_import_each_other_in_a_circle() -> None:
    graph = import_graph(ROOT, "packetworker")
    assert "packetworker.pipeline.archive" in graph["packetworker.preflight"]  # in a function

    assert cycles(graph) == []


def test_a_circle_through_a_function_level_import_is_found(tmp_path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg.sub import b\n")
    (package / "sub" / "b.py").write_text("def later():\n    from ..c import thing\n")
    (package / "c.py").write_text(
        "import typing\nif typing.TYPE_CHECKING:\n    from pkg import a\n"
    )
    (package / "d.py").write_text("from pkg import c\n")

    assert cycles(import_graph(tmp_path, "pkg")) == [["pkg.a", "pkg.c", "pkg.sub.b"]]


def test_a_circle_through_a_module_named_in_a_string_is_found(tmp_path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "registry.py").write_text("CHECKS = {'x': 'pkg.checks:run'}\n")
    (package / "checks.py").write_text("from pkg.registry import CHECKS\n")

    assert cycles(import_graph(tmp_path, "pkg")) == [["pkg.checks", "pkg.registry"]]
