"""``%%dshpc_method``: a notebook cell registered as a method version, so an idea becomes a cached sweep without
leaving the notebook.

The cell is a YAML header between two ``---`` lines holding the fields of ``method.json`` (``name``,
``description``, ``parameters``, ``version``, ``resources``; ``command`` defaults to ``python3`` and
``script_path`` to ``method.py``), then the script. The two are written as a method directory in a temporary
folder and registered like any other directory (:meth:`Connection.register_method`: copied into the store by the
embedded engine, sent as an archive to a server), so the version is content-hashed the same way, and the script
runs exactly as a method's script file does (same arguments and environment).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from ..domain.errors import InvalidInputError
from ..domain.methods import SPEC_FILE, parse_spec
from ..domain.models import MethodInfo, MethodSpec
from ..front.connection import Connection
from ..front.sweep import did_you_mean

HEADER_FIELDS: Final = ("name", "description", "command", "script_path", "parameters", "version", "resources")
DEFAULTS: Final = {"command": "python3", "script_path": "method.py"}
FENCE: Final = "---"


class MethodCellError(InvalidInputError):
    """A ``%%dshpc_method`` cell that is not a method; the message is one line naming the problem."""


@dataclass(frozen=True)
class MethodCell:
    """The spec and the script of a ``%%dshpc_method`` cell."""

    spec: MethodSpec
    script: str

    def write(self, folder: Path) -> Path:
        """The method directory, under ``folder``."""
        directory = folder / "method"
        directory.mkdir()
        spec = self.spec.model_dump(mode="json")
        (directory / SPEC_FILE).write_text(json.dumps(spec, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        (directory / self.spec.script_path).write_text(self.script, encoding="utf-8")
        return directory


def parse_cell(cell: str, *, first_line: int = 2) -> MethodCell:
    """The header and script of a cell (``first_line``: the editor's number of the cell's first line, for errors)."""
    lines = cell.splitlines(keepends=True)
    opening = next((i for i, line in enumerate(lines) if line.strip()), None)
    if opening is None or lines[opening].strip() != FENCE:
        raise MethodCellError(
            "%%dshpc_method: the cell starts with a YAML header between two '---' lines (name, parameters, ...), "
            "then the Python script"
        )
    closing = next((i for i in range(opening + 1, len(lines)) if lines[i].strip() == FENCE), None)
    if closing is None:
        raise MethodCellError(f"%%dshpc_method: the header opened at line {opening + first_line} has no closing '---'")
    header = _header("".join(lines[opening + 1 : closing]), opening + 1 + first_line)
    script = "".join(lines[closing + 1 :])
    if not script.strip():
        raise MethodCellError("%%dshpc_method: no script after the header")
    raw = {**DEFAULTS, **header}
    script_path = raw["script_path"]
    if not isinstance(script_path, str) or Path(script_path).name != script_path or script_path in ("", SPEC_FILE):
        raise MethodCellError(f"script_path: must be a plain file name other than {SPEC_FILE}, got {script_path!r}")
    return MethodCell(parse_spec(raw, origin="%%dshpc_method header"), script)


def _header(text: str, first_line: int) -> dict[str, Any]:
    try:
        header = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + first_line}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise MethodCellError(f"%%dshpc_method: invalid YAML header{where}: {problem}") from None
    if not isinstance(header, dict):
        raise MethodCellError("%%dshpc_method: the header must be a mapping of method.json fields (name: ...)")
    unknown = [str(k) for k in header if k not in HEADER_FIELDS]
    if unknown:
        hint = did_you_mean(unknown[0], HEADER_FIELDS)
        raise MethodCellError(f"header: unknown field {unknown[0]!r} (fields: {', '.join(HEADER_FIELDS)}){hint}")
    return header


def register_cell(connection: Connection, method: MethodCell) -> MethodInfo:
    """Register a cell's method on the connection's service; the registered version."""
    with tempfile.TemporaryDirectory(prefix="dshpc-method-") as folder:
        registered = connection.register_method(method.write(Path(folder)))
    return registered[0]


__all__ = ["MethodCell", "MethodCellError", "parse_cell", "register_cell"]
