"""Imports only go down: no circle among srkit's own modules, counting function-level imports too
(an import inside a function that closes a circle hides it, it does not break it)."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT
from helpers import run_python

PACKAGES = ("srdata", "sr_train")


def module_files() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def imported_modules(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Our modules that `name` imports anywhere in its file (module or function level)."""
    is_package = path.name == "__init__.py"
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = name.split(".")
                parent = parts if is_package else parts[:-1]
                parent = parent[: len(parent) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_circles():
    modules = module_files()
    graph = {name: imported_modules(name, path, modules) for name, path in modules.items()}
    assert len(modules) > 40 and any(graph.values())  # the scan really found our modules and their imports
    assert circles(graph) == []


def test_the_circle_finder_finds_a_circle():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_srdata_never_imports_sr_train():
    modules = module_files()
    for name, path in modules.items():
        if name.startswith("srdata"):
            assert not any(m.startswith("sr_train") for m in imported_modules(name, path, modules)), name


def test_sr_train_help_does_not_import_paddle():
    """`sr-train --help` and option errors answer without paying for Paddle's import (seconds cold):
    the commands import their Paddle-backed libraries when they run."""
    code = (
        "import sys\n"
        "from sr_train.cli import main\n"
        "assert main(['--help']) == 0 and main(['fit', '--help']) == 0 and main(['convert', '--help']) == 0\n"
        "assert main(['export', '--help']) == 0 and main(['runs', '--help']) == 0\n"
        "sys.exit(1 if 'paddle' in sys.modules else 0)\n"
    )
    run = run_python(code)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
