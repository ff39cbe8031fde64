"""localcloud's modules import in any order: each alone in a fresh interpreter, and no import circle.

A circle of imports works in one order and breaks in another (the first module is half-made when
the last one asks it for a name), and lazy imports inside functions only hide it. So the graph read
from the source (AST) counts every import, at module level and in functions, except those under
`if TYPE_CHECKING:`, and it must have no cycle.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "localcloud"


def _name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


FILES = {_name(path): path for path in sorted(SOURCE.rglob("*.py"))}
Graph = dict[str, set[str]]


def _imports(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement under `node`, but not those under `if TYPE_CHECKING:`."""
    for child in ast.iter_child_nodes(node):
        typing_only = isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test)
        for statement in child.orelse if typing_only else [child]:
            if isinstance(statement, ast.Import | ast.ImportFrom):
                yield statement
            yield from _imports(statement)


def _imported(module: str, node: ast.Import | ast.ImportFrom, files: dict[str, Path]) -> set[str]:
    """The localcloud modules that `node` in `module` loads, with the packages Python loads first."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            package = module if files[module].name == "__init__.py" else module.rpartition(".")[0]
            parts = package.split(".")[:len(package.split(".")) - node.level + 1]
            base = ".".join([*parts, *([node.module] if node.module else [])])
        names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in files else base for alias in node.names]
    found = set()
    for name in names:
        while name and name not in files:
            name = name.rpartition(".")[0]
        parts = name.split(".") if name else []
        for depth in range(1, len(parts) + 1):
            target = ".".join(parts[:depth])
            # A module's own packages are loaded before it, not by it.
            if target in files and target != module and not module.startswith(target + "."):
                found.add(target)
    return found


def _loads_its_modules(tree: ast.Module) -> bool:
    """Whether a package's __init__ imports all its modules by listing them (`pkgutil.iter_modules`)."""
    return any(isinstance(n, ast.Attribute) and n.attr == "iter_modules" for n in ast.walk(tree))


def import_graph(files: dict[str, Path]) -> Graph:
    graph: Graph = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(), str(path))
        edges = set()
        for node in _imports(tree):
            edges |= _imported(module, node, files)
        if path.name == "__init__.py" and _loads_its_modules(tree):
            edges |= {m for m in files if m.rpartition(".")[0] == module}
        graph[module] = edges
    return graph


def find_cycle(graph: Graph) -> list[str] | None:
    """One cycle of the graph (its modules in import order, the first repeated at the end), or None."""
    done: set[str] = set()
    for start in sorted(graph):
        if start in done:
            continue
        path, todo = [start], [iter(sorted(graph[start]))]
        while todo:
            step = next(todo[-1], None)
            if step is None:
                todo.pop()
                done.add(path.pop())
            elif step in path:
                return [*path[path.index(step):], step]
            elif step not in done:
                path.append(step)
                todo.append(iter(sorted(graph[step])))
    return None


def reachable(graph: Graph, start: str) -> set[str]:
    """Every module that importing `start` loads."""
    seen, todo = set(), [start]
    while todo:
        for nxt in graph[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    return seen


GRAPH = import_graph(FILES)


@pytest.mark.parametrize("module", sorted(FILES))
def test_each_module_imports_alone(module: str) -> None:
    proc = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, f"import {module} in a fresh interpreter failed:\n{proc.stderr[-3000:]}"


def test_no_import_cycle_among_localcloud_modules() -> None:
    cycle = find_cycle(GRAPH)
    assert cycle is None, "localcloud modules import each other in a circle: " + " -> ".join(cycle or [])


def test_the_registry_imports_neither_the_products_nor_the_cloud() -> None:
    loaded = reachable(GRAPH, "localcloud.registry")
    wrong = sorted(m for m in loaded if m == "localcloud.cloud" or m.startswith("localcloud.products"))
    assert not wrong, f"localcloud.registry imports {wrong}; products register into it, the cloud reads it"


@pytest.mark.parametrize("module", ["localcloud.backends.containers", "localcloud.metadata", "localcloud.images",
                                    "localcloud.credentials", "localcloud.identities"])
def test_lower_layers_import_no_api_module_nor_the_daemon(module: str) -> None:
    above = ("localcloud.products", "localcloud.cloud", "localcloud.server", "localcloud.frontdoor",
             "localcloud.daemon", "localcloud.cli")
    wrong = sorted(m for m in reachable(GRAPH, module) if m.startswith(above))
    assert not wrong, f"{module} imports {wrong}: what it needs is passed in by the daemon or lives below it"


def test_the_rule_sees_a_circle_through_a_lazy_import(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from . import b\n")
    (package / "b.py").write_text("def f():\n    from .a import g\n")
    (package / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import a\n")
    files = {".".join(p.relative_to(tmp_path).with_suffix("").parts).removesuffix(".__init__"): p
             for p in package.glob("*.py")}
    graph = import_graph(files)
    assert graph["pkg.c"] == set()
    assert find_cycle(graph) == ["pkg.a", "pkg.b", "pkg.a"]
