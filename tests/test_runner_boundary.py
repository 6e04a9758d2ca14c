"""The compute-node boundary: the runner, and all it imports, loads and runs with the standard library alone.

The subprocess runs Python isolated (``-I``: no PYTHONPATH, no user site) and without ``site`` (``-S``: no
site-packages, no ``.pth`` files), with only the repository root added to its path: the package's third-party
dependencies cannot be found there, as on a compute node that has only Python.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROBE = r"""
import importlib.util, json, sys
sys.path.insert(0, sys.argv[1])
workspace = sys.argv[2]
found = {name: importlib.util.find_spec(name) is not None for name in ("pydantic", "httpx", "orjson", "fastapi")}
from dshpc_jupyter.schedulers import runner
task = runner.Task(
    job_id="j1", workspace=workspace, command="python3", script=sys.argv[3], input_file=sys.argv[4],
    method_dir=workspace, method_name="Echo", parameters={"n": 3},
)
manifest = workspace + "/task.json"
runner.write_manifest(runner.Path(manifest), [[task]])
runner.main([manifest])
result = runner.read_result(runner.Path(workspace))
outside = sorted(
    name for name in sys.modules
    if name.partition(".")[0] not in {*sys.stdlib_module_names, "__main__", "dshpc_jupyter"}
)
package = sorted(name for name in sys.modules if name.startswith("dshpc_jupyter"))
print(json.dumps({"found": found, "outside": outside, "package": package, "result": result.__dict__}))
"""

ECHO = (
    "import json, sys\nparams = json.load(open(sys.argv[2]))\nprint(open(sys.argv[1]).read().strip() * params['n'])\n"
)


def test_the_runner_imports_and_runs_with_the_standard_library_only(tmp_path: Path) -> None:
    script, data, workspace = tmp_path / "echo.py", tmp_path / "input.txt", tmp_path / "workspace"
    script.write_text(ECHO, encoding="utf-8")
    data.write_text("ab\n", encoding="utf-8")
    workspace.mkdir()
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", PROBE, str(ROOT), str(workspace), str(script), str(data)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["found"] == {"pydantic": False, "httpx": False, "orjson": False, "fastapi": False}
    assert report["outside"] == []
    assert report["package"] == [
        "dshpc_jupyter",
        "dshpc_jupyter.domain",
        "dshpc_jupyter.domain.errors",
        "dshpc_jupyter.domain.status",
        "dshpc_jupyter.schedulers",
        "dshpc_jupyter.schedulers.job_files",
        "dshpc_jupyter.schedulers.runner",
        "dshpc_jupyter.schedulers.sandbox",
    ]
    result = report["result"]
    assert (result["status"], result["exit_code"], result["output"]) == ("CD", 0, "ababab\n")


def test_the_probe_would_see_a_third_party_import(tmp_path: Path) -> None:
    """The same interpreter with site-packages finds pydantic: the isolation above is what hides it."""
    code = "import importlib.util; print(importlib.util.find_spec('pydantic') is not None)"
    done = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "True", done.stderr


SLOT_PROBE = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from dshpc_jupyter.schedulers import slot_runner
slot_runner.serve()
outside = sorted(
    name for name in sys.modules
    if name.partition(".")[0] not in {*sys.stdlib_module_names, "__main__", "dshpc_jupyter"}
)
print(json.dumps(outside), file=sys.stderr)
"""


def test_the_slot_runner_runs_task_after_task_with_the_standard_library_only(tmp_path: Path) -> None:
    """The local worker's runner per slot: tasks in on stdin, one answer per task once its result is written."""
    script, data = tmp_path / "echo.py", tmp_path / "input.txt"
    script.write_text(ECHO, encoding="utf-8")
    data.write_text("ab\n", encoding="utf-8")
    tasks = []
    for n in (1, 2):
        workspace = tmp_path / f"w{n}"
        workspace.mkdir()
        tasks.append({
            "job_id": f"j{n}", "workspace": str(workspace), "command": "python3", "script": str(script),
            "input_file": str(data), "method_dir": str(tmp_path), "method_name": "Echo", "parameters": {"n": n},
        })  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", SLOT_PROBE, str(ROOT)], capture_output=True, text=True, timeout=120,
        cwd=tmp_path, input="".join(json.dumps(task) + "\n" for task in tasks),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ready", ">j1", "j1", ">j2", "j2"]  # each job's start, then its end
    assert json.loads(done.stderr.splitlines()[-1]) == []
    for n in (1, 2):
        result = json.loads((tmp_path / f"w{n}" / "result.json").read_text())
        assert (result["status"], result["output"]) == ("CD", "ab" * n + "\n")
