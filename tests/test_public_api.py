"""The public names of ``dshpc_jupyter``: exactly these, each importable, the errors one family, and the
type checker's mirror of the lazy imports in step with the list they come from."""

from __future__ import annotations

import ast
import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import dshpc_jupyter
from dshpc_jupyter.domain import errors

PUBLIC = {
    "__version__", "connect", "connect_async", "current", "Connection", "Backend", "JobConfig", "Batch",
    "BatchStats", "batches", "BatchView", "JobForm", "load_ipython_extension",
    "DshpcError", "InvalidInputError", "NotFoundError", "ConflictError", "AuthenticationError",
    "LimitExceededError", "SchedulerError", "BackendError", "MethodSpecError", "StoreVersionError",
}  # fmt: skip
ERRORS = {name for name in PUBLIC if name.endswith("Error")}
#: Exceptions the server raises and catches itself, never seen by a user: outside the family on purpose.
SERVER_SIGNALS = {"dshpc_jupyter.server.guard._ClientGoneError", "dshpc_jupyter.server.wire.BodyError"}


def test_the_public_names_are_exactly_these() -> None:
    assert set(dshpc_jupyter.__all__) == PUBLIC
    assert len(dshpc_jupyter.__all__) == len(PUBLIC), "a name listed twice"
    assert set(dir(dshpc_jupyter)) >= PUBLIC


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_every_public_name_imports(name: str) -> None:
    assert getattr(dshpc_jupyter, name) is not None
    namespace: dict[str, object] = {}
    exec(f"from dshpc_jupyter import {name}", namespace)
    assert namespace[name] is getattr(dshpc_jupyter, name)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Engine'"):
        _ = dshpc_jupyter.Engine
    with pytest.raises(ImportError):
        exec("from dshpc_jupyter import Engine", {})


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_the_exported_errors_are_one_family(name: str) -> None:
    error = getattr(dshpc_jupyter, name)
    assert issubclass(error, dshpc_jupyter.DshpcError)
    assert isinstance(error.status_code, int)


def test_every_error_of_the_package_is_a_dshpc_error() -> None:
    """Every exception class the package defines, wherever it lives, belongs to the family (but the server's
    internal signals)."""
    root = Path(dshpc_jupyter.__file__).parent
    outside = []
    for path in sorted(root.rglob("*.py")):
        if "examples" in path.parts or path.name == "__main__.py":
            continue
        module = ".".join(path.relative_to(root.parent).with_suffix("").parts).removesuffix(".__init__")
        for name, value in vars(importlib.import_module(module)).items():
            defined_here = inspect.isclass(value) and value.__module__ == module
            if defined_here and issubclass(value, BaseException) and not issubclass(value, errors.DshpcError):
                outside.append(f"{module}.{name}")
    outside = [name for name in outside if name not in SERVER_SIGNALS]
    assert outside == []


def test_the_errors_that_moved_keep_their_old_homes() -> None:
    from dshpc_jupyter.backends.http import BackendError
    from dshpc_jupyter.domain.methods import InvalidParametersError

    assert BackendError is errors.BackendError
    assert issubclass(InvalidParametersError, errors.InvalidInputError)
    assert issubclass(InvalidParametersError, ValueError), "code catching ValueError still catches it"
    assert errors.BackendError("down").status_code == 503
    assert errors.BackendError("refused", 502).status_code == 502


def test_the_type_checkers_imports_mirror_the_list() -> None:
    """mypy cannot follow ``__getattr__``: the TYPE_CHECKING block must name every export, from its module."""
    tree = ast.parse(Path(dshpc_jupyter.__file__).read_text(encoding="utf-8"))
    block = next(n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING")
    mirrored = {}
    for node in block.body:
        assert isinstance(node, ast.ImportFrom) and node.module is not None
        for alias in node.names:
            assert alias.asname == alias.name, f"{alias.name}: 'import X as X' is what re-exports it"
            mirrored[alias.name] = node.module
    assert mirrored == dshpc_jupyter._EXPORTS


def test_importing_the_package_loads_only_the_standard_library() -> None:
    """The runner's boundary starts at the package top: importing it must import nothing of its own."""
    code = "import sys, dshpc_jupyter; print(sorted(m for m in sys.modules if m.startswith('dshpc_jupyter')))"
    root = Path(dshpc_jupyter.__file__).parents[1]
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, check=True)
    assert result.stdout.strip() == "['dshpc_jupyter']"
