"""The package's architecture, checked from its source (docs/design.md section 5): no import cycle, imports that
only flow down the layers, small modules, and a runner that needs nothing beyond the standard library.

Imports are read with ``ast``, not by importing: module-level, function-level and relative imports all count,
as do ``TYPE_CHECKING`` imports (a type-only dependency is still a dependency), except those of the package top
``dshpc_jupyter/__init__.py``, which names the public API lazily. Every check lists all its offenders at once.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIR = ROOT / "dshpc_jupyter"

#: The layer order, written once: a module may import its own layer and the layers below it. Two folders on one
#: level (the server and the front) must not import each other.
LAYERS: Mapping[str, int] = {
    "domain": 0,
    "store": 1,
    "schedulers": 2,
    "service": 3,
    "backends": 4,
    "server": 5,
    "front": 5,
    "jupyter": 6,
    "cli": 7,
}
#: Outside the layers: the package top (``__version__`` and the lazily imported public names) and the examples.
EXEMPT_FOLDERS = frozenset({"examples"})
MAX_LINES = 500
RUNNER = "schedulers.runner"
#: Every entry point that runs jobs: the runner, and the local worker's runner per slot (docs/design.md 7.6).
RUNNERS = (RUNNER, "schedulers.slot_runner")


@dataclass(frozen=True, slots=True)
class Import:
    """One import of a package module by another, where it is written."""

    source: str
    target: str
    line: int
    type_checking: bool

    def __str__(self) -> str:
        kind = " (TYPE_CHECKING)" if self.type_checking else ""
        return f"{self.source} -> {self.target} (line {self.line}){kind}"


@dataclass(frozen=True, slots=True)
class Module:
    name: str
    path: Path
    #: The path as shown in messages: ``dshpc_jupyter/store/sqlite.py``.
    shown: str
    is_package: bool
    tree: ast.Module


def modules(package_dir: Path) -> dict[str, Module]:
    """Every module of the package by dotted name (``pkg.domain.status``; a package is its ``__init__``)."""
    found: dict[str, Module] = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = path.relative_to(package_dir.parent).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_package else parts)
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        found[name] = Module(name, path, "/".join(parts) + ".py", is_package, tree)
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(
    nodes: Iterable[ast.AST], type_checking: bool = False
) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement under ``nodes`` (in functions too), and whether it sits under ``if TYPE_CHECKING``."""
    for node in nodes:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node, type_checking
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _import_nodes(node.body, True)
            yield from _import_nodes(node.orelse, type_checking)
        else:
            yield from _import_nodes(ast.iter_child_nodes(node), type_checking)


def _named(node: ast.Import | ast.ImportFrom, module: Module) -> list[str]:
    """The dotted names an import statement asks for (``from .x import y`` asks for ``pkg.x.y``)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level == 0:
        base = node.module or ""
    else:
        parts = module.name.split(".") if module.is_package else module.name.split(".")[:-1]
        parts = parts[: len(parts) - (node.level - 1)]
        base = ".".join([*parts, *([node.module] if node.module else [])])
    return [f"{base}.{alias.name}" for alias in node.names]


def _known_prefix(name: str, known: Mapping[str, Module]) -> str | None:
    """The longest prefix of ``name`` that is a package module (``pkg.domain.models.JobConfig`` -> its module)."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in known:
            return candidate
    return None


def imports(known: Mapping[str, Module]) -> list[Import]:
    """Every import of one package module by another (once per statement), the package top's ``TYPE_CHECKING``
    ones left out."""
    top = min(known, key=len)
    edges: list[Import] = []
    for module in known.values():
        for node, type_checking in _import_nodes(module.tree.body):
            if type_checking and module.name == top:
                continue
            for name in _named(node, module):
                target = _known_prefix(name, known)
                if target is not None and target != module.name:
                    edges.append(Import(module.name, target, node.lineno, type_checking))
    return list(dict.fromkeys(edges))


def external_imports(module: Module) -> list[tuple[str, int]]:
    """The top-level names of the non-package modules a module imports at run time, with their lines."""
    found: list[tuple[str, int]] = []
    for node, type_checking in _import_nodes(module.tree.body):
        if type_checking or (isinstance(node, ast.ImportFrom) and node.level > 0):
            continue
        names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module or ""]
        found += [(name.split(".")[0], node.lineno) for name in names]
    return found


# --- the checks, as functions returning every offender ------------------------------------------------------


def cycles(edges: Sequence[Import]) -> list[list[Import]]:
    """The imports inside each strongly connected component of the import graph (Tarjan): one list per cycle."""
    graph: dict[str, list[str]] = {}
    for edge in edges:
        graph.setdefault(edge.source, []).append(edge.target)
        graph.setdefault(edge.target, [])
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in graph[node]:
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component: set[str] = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [[e for e in edges if e.source in c and e.target in c] for c in components]


def folder(name: str) -> str | None:
    """The layer folder of a module (``pkg.store.sqlite`` -> ``store``, ``pkg.cli`` -> ``cli``); None for the top."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else None


def layer_violations(known: Iterable[str], edges: Sequence[Import]) -> list[str]:
    """Modules outside every layer, and imports from a lower layer to a higher one or across one level."""
    problems = [
        f"{name}: in no layer (add its folder to LAYERS, or to EXEMPT_FOLDERS)"
        for name in sorted(known)
        if (where := folder(name)) is not None and where not in LAYERS and where not in EXEMPT_FOLDERS
    ]
    for edge in edges:
        source, target = folder(edge.source) or "", folder(edge.target) or ""
        if source not in LAYERS or target not in LAYERS or source == target:
            continue
        low, high = LAYERS[source], LAYERS[target]
        if high > low:
            problems.append(f"{edge}: {source} (layer {low}) imports up, from {target} (layer {high})")
        elif high == low:
            problems.append(f"{edge}: {source} and {target} share layer {low} and must not import each other")
    return problems


def long_modules(known: Mapping[str, Module], limit: int = MAX_LINES) -> list[str]:
    return [
        f"{module.shown}: {lines} lines (limit {limit})"
        for module in sorted(known.values(), key=lambda m: m.shown)
        if (lines := len(module.path.read_text(encoding="utf-8").splitlines())) > limit
    ]


def runner_closure(known: Mapping[str, Module], edges: Sequence[Import], runner: str) -> list[str]:
    """Every module a ``python -m ...runner`` process loads (its imports and their parent packages, transitively)."""
    runtime: dict[str, set[str]] = {}
    for edge in edges:
        if not edge.type_checking:
            runtime.setdefault(edge.source, set()).add(edge.target)
    loaded: set[str] = set()
    todo = [runner]
    while todo:
        name = todo.pop()
        if name in loaded:
            continue
        loaded.add(name)
        parents = [".".join(name.split(".")[:end]) for end in range(1, name.count(".") + 1)]
        todo += [*runtime.get(name, ()), *(p for p in parents if p in known)]
    return sorted(loaded)


def non_stdlib_imports(known: Mapping[str, Module], loaded: Iterable[str]) -> list[str]:
    top = min(known, key=len)
    return [
        f"{name} (line {line}) imports {imported}, which is not in the standard library"
        for name in loaded
        for imported, line in external_imports(known[name])
        if imported != top and imported not in sys.stdlib_module_names
    ]


# --- the package ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def package() -> dict[str, Module]:
    return modules(PACKAGE_DIR)


def test_no_import_cycle(package: dict[str, Module]) -> None:
    found = cycles(imports(package))
    assert not found, "import cycles:\n" + "\n\n".join("\n".join(map(str, cycle)) for cycle in found)


def test_imports_only_flow_down_the_layers(package: dict[str, Module]) -> None:
    problems = layer_violations(package, imports(package))
    assert not problems, "imports against the layer order:\n" + "\n".join(problems)


def test_no_module_over_500_lines(package: dict[str, Module]) -> None:
    problems = long_modules(package)
    assert not problems, "modules over the limit:\n" + "\n".join(problems)


@pytest.mark.parametrize("runner", RUNNERS)
def test_the_runner_loads_only_the_standard_library(package: dict[str, Module], runner: str) -> None:
    """The compute-node boundary: what the runner loads, the package's ``__init__`` files included."""
    loaded = runner_closure(package, imports(package), f"dshpc_jupyter.{runner}")
    assert "dshpc_jupyter.domain.status" in loaded, loaded  # the graph follows relative imports
    problems = non_stdlib_imports(package, loaded)
    assert not problems, "the runner would need more than the standard library:\n" + "\n".join(problems)


# --- the checks catch what they are for -------------------------------------------------------------------------


def _write(root: Path, files: Mapping[str, str]) -> Path:
    for name, text in files.items():
        path = root / "pkg" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root / "pkg"


def test_the_checks_find_cycles_upward_imports_and_long_modules(tmp_path: Path) -> None:
    """Function-level, relative and TYPE_CHECKING imports are all seen, and every offender is reported."""
    package_dir = _write(
        tmp_path,
        {
            "__init__.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .front.view import View\n",
            "domain/__init__.py": "",
            "domain/status.py": "def later():\n    from ..store import sqlite\n",
            "store/__init__.py": "",
            "store/sqlite.py": "from ..domain.status import later\n" + "x = 1\n" * MAX_LINES,
            "server/__init__.py": "",
            "server/app.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..front import view\n",
            "front/__init__.py": "",
            "front/view.py": "from .. import store\nimport pkg.server.app\n",
            "misc.py": "",
        },
    )
    known = modules(package_dir)
    edges = imports(known)
    assert "pkg.front.view" not in {e.target for e in edges if e.source == "pkg"}, "the top's TYPE_CHECKING names"
    found = {frozenset((e.source, e.target) for e in cycle) for cycle in cycles(edges)}
    assert found == {
        frozenset({("pkg.domain.status", "pkg.store.sqlite"), ("pkg.store.sqlite", "pkg.domain.status")}),
        frozenset({("pkg.server.app", "pkg.front.view"), ("pkg.front.view", "pkg.server.app")}),
    }
    problems = layer_violations(known, edges)
    assert len(problems) == 4, problems
    assert problems[0].startswith("pkg.misc: in no layer")
    assert any("pkg.domain.status -> pkg.store.sqlite (line 2)" in p and "imports up" in p for p in problems)
    assert any("pkg.server.app -> pkg.front.view" in p and "TYPE_CHECKING" in p for p in problems)
    assert any("pkg.front.view -> pkg.server.app (line 2)" in p and "share layer 5" in p for p in problems)
    assert long_modules(known) == [f"pkg/store/sqlite.py: {MAX_LINES + 1} lines (limit {MAX_LINES})"]


def test_the_runner_check_follows_imports_and_parent_packages(tmp_path: Path) -> None:
    package_dir = _write(
        tmp_path,
        {
            "__init__.py": "import json\n",
            "domain/__init__.py": "",
            "domain/status.py": "import enum\n",
            "domain/models.py": "import pydantic\n",
            "schedulers/__init__.py": "def lazy():\n    import yaml\n",
            "schedulers/runner.py": "from ..domain.status import X\n",
        },
    )
    known = modules(package_dir)
    loaded = runner_closure(known, imports(known), "pkg.schedulers.runner")
    assert loaded == ["pkg", "pkg.domain", "pkg.domain.status", "pkg.schedulers", "pkg.schedulers.runner"]
    assert non_stdlib_imports(known, loaded) == [
        "pkg.schedulers (line 2) imports yaml, which is not in the standard library"
    ]
