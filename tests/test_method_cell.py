"""``%%dshpc_method``: a notebook cell registered as a method version (content-hashed like a directory), then swept,
in a real kernel on the embedded engine and against a real server (sent as an archive); Slurm is in
tests/test_slurm.py. The cell's mistakes are one line naming the problem."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from http_support import thread_server
from kernels import Kernel, dshpc_kernel

from dshpc_jupyter.domain.errors import InvalidInputError
from dshpc_jupyter.examples import data_dir
from dshpc_jupyter.jupyter.method_cell import MethodCellError, parse_cell

LINE_LENGTHS = """---
name: Line Lengths
description: Counts the lines at least `minimum` characters long.
parameters:
  - {name: minimum, type: integer, default: 0}
resources: {time: "00:01:00"}
---
import json, os, sys
params = json.load(open(sys.argv[2]))
lengths = [len(line.rstrip("\\n")) for line in open(sys.argv[1], encoding="utf-8")]
kept = [n for n in lengths if n >= params["minimum"]]
print(json.dumps({"lines": len(kept), "longest": max(kept, default=0), "named": os.environ["METHOD_NAME"]}))
"""
SWEEP = f"""%%dshpc_batch --out b --wait --timeout 120 --base {data_dir()}
method: Line Lengths
files: [poem.txt]
grid: {{minimum: [0, 20, 1000]}}"""


def sweep_on_a_method_cell(kernel: Kernel) -> None:
    """Register the cell, sweep on it, check the outputs; the same cell again is no new version, so the same
    sweep again comes from the cache."""
    registered = kernel.ok("%%dshpc_method\n" + LINE_LENGTHS).stdout
    assert "method 'Line Lengths' version 1: registered; function_hash" in registered
    kernel.ok(SWEEP)
    outputs = kernel.value("b.outputs()[['minimum', 'lines', 'longest', 'named']].values.tolist()")
    poem = (data_dir() / "poem.txt").read_text(encoding="utf-8").splitlines()
    assert outputs == [[m, sum(len(x) >= m for x in poem), max((len(x) for x in poem if len(x) >= m), default=0),
                        "Line Lengths"] for m in (0, 20, 1000)]  # fmt: skip
    assert "unchanged (already registered)" in kernel.ok("%%dshpc_method\n" + LINE_LENGTHS).stdout
    kernel.ok(SWEEP.replace("--out b", "--out again"))
    assert kernel.value("again.df.cached.tolist()") == [True, True, True]
    changed = kernel.ok("%%dshpc_method\n" + LINE_LENGTHS.replace('"named"', '"method"'))
    assert "registered; function_hash" in changed.stdout, "edited script: a new version"
    assert kernel.value("len(dshpc_jupyter.current().method_versions('Line Lengths'))") == 2


@pytest.fixture
def kernel(tmp_path: Path, home: Path) -> Iterator[Kernel]:
    with dshpc_kernel(tmp_path, home) as kernel:
        yield kernel


def test_a_method_cell_on_the_embedded_engine(kernel: Kernel) -> None:
    sweep_on_a_method_cell(kernel)


def test_a_method_cell_against_a_server(kernel: Kernel, tmp_path: Path) -> None:
    with thread_server(tmp_path / "server-home") as url:
        kernel.ok(f"%dshpc_connect --url {url}")
        sweep_on_a_method_cell(kernel)
    assert not (tmp_path / "home").exists(), "nothing was stored on the kernel's side"


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("print(1)\n", "the cell starts with a YAML header between two '---' lines"),
        ("---\nname: A\nprint(1)\n", "the header opened at line 2 has no closing '---'"),
        ("---\nname: A\n---\n\n", "no script after the header"),
        ("---\nname: A\nparamters: []\n---\nprint(1)\n", "unknown field 'paramters'"),
        ("---\nname: A\nparamters: []\n---\nprint(1)\n", "(did you mean 'parameters'?)"),
        ("---\nname: A\nparameters: [unclosed\n---\nprint(1)\n", "invalid YAML header at line 5"),
        ("---\n- a\n---\nprint(1)\n", "the header must be a mapping"),
        ("---\nname: A\nscript_path: ../x.py\n---\nprint(1)\n", "script_path: must be a plain file name"),
        (
            "---\nname: A\nparameters: [{name: n, type: integer, default: x}]\n---\nprint(1)\n",
            "parameters[0] ('n'): default 'x' does not fit the type",
        ),
        ("---\nname: ''\n---\nprint(1)\n", "name: must not be empty"),
    ],
)
def test_a_cell_that_is_no_method_is_refused_with_the_problem_named(cell: str, message: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_cell(cell)
    assert message in str(caught.value), str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_cell_parses_to_the_spec_with_python_by_default() -> None:
    cell = parse_cell(LINE_LENGTHS)
    assert (cell.spec.name, cell.spec.command, cell.spec.script_path) == ("Line Lengths", "python3", "method.py")
    assert cell.spec.parameters[0].default == 0 and cell.script.startswith("import json, os, sys")
    with pytest.raises(MethodCellError):
        parse_cell("")
