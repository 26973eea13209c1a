"""The package layout: no import cycles between modules (not even through imports for type annotations
only), old import paths still work."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "bayesmmm"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def runtime_nodes(tree: ast.AST):
    """Every node except those under ``if TYPE_CHECKING:`` (annotations only, never imported at run time)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and getattr(child.test, "id", None) == "TYPE_CHECKING":
                stack.extend(child.orelse)
                continue
            stack.append(child)


def import_graph(type_only: bool = True) -> dict[str, set[str]]:
    """Every bayesmmm module → the bayesmmm modules it imports, at module level or inside functions,
    and (``type_only``) under ``if TYPE_CHECKING:``: an import for annotations only is still a
    dependency a reader follows, and a circle through one means two modules that are one.

    Package ``__init__`` files (re-exports, ``bayesmmm/__init__.py``'s public API) and the
    compatibility aliases are left out: they are entry points, not layers.
    """
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    skip = {m for m, p in modules.items() if p.name == "__init__.py"} | {"bayesmmm.priors"}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        if name in skip:
            continue
        deps: set[str] = set()
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree) if type_only else runtime_nodes(tree):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("bayesmmm"):
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.startswith("bayesmmm")]
            deps |= {t for t in targets if t in modules and t not in skip and t != name}
        graph[name] = deps
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return [*stack[stack.index(dep) :], dep]
            if dep not in state and (found := visit(dep)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycles():
    graph = import_graph()
    assert len(graph) > 20
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_type_only_imports_are_edges_of_the_graph(tmp_path, monkeypatch):
    """A circle closed only by an ``if TYPE_CHECKING:`` import is found; run-time-only graphs skip it."""
    pkg = tmp_path / "bayesmmm"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from bayesmmm.b import thing\n")
    (pkg / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from bayesmmm.a import A\n")
    monkeypatch.setitem(globals(), "PACKAGE", pkg)
    assert find_cycle(import_graph()) == ["bayesmmm.a", "bayesmmm.b", "bayesmmm.a"]
    assert find_cycle(import_graph(type_only=False)) is None


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize(
    ("old", "name"),
    [
        ("bayesmmm.transforms", "SATURATIONS"),
        ("bayesmmm.transforms", "Adstock"),
        ("bayesmmm.priors", "Prior"),
        ("bayesmmm.config", "load_plugins"),
        ("bayesmmm.config", "ExperimentConfig"),
        ("bayesmmm.model", "MMM"),
        ("bayesmmm.decisions", "optimize_budget"),
        ("bayesmmm.cli", "app"),
    ],
)
def test_import_paths_plugins_and_users_rely_on(old, name):
    assert getattr(importlib.import_module(old), name) is not None


def test_no_module_imports_another_modules_private_names():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("bayesmmm"):
                offenders += [f"{path.relative_to(PACKAGE.parent)}: {a.name}" for a in node.names if a.name[0] == "_"]
    allowed = {"__version__", "__all__"}
    assert [o for o in offenders if o.split(": ")[1] not in allowed] == []
