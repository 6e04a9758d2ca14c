"""binder/: a fresh virtual environment built the way mybinder.org builds one (binder/requirements.txt, then
binder/postBuild) holds exactly the pinned packages, has the examples registered, and runs the notebooks under
nbval. It downloads from the package index (pip's cache makes later runs quick), so it has a generous time limit.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from dshpc_jupyter import examples

ROOT = Path(__file__).resolve().parent.parent
BINDER = ROOT / "binder"
# The notebooks that need nothing beyond the binder image (05 needs a Slurm cluster).
NOTEBOOKS = ("01-quickstart.ipynb", "03-sweeps-and-analysis.ipynb", "04-shared-server.ipynb")
# What the test needs on top of the binder environment: binder's base image brings its own Jupyter kernel.
TOOLS = ("pytest", "nbval", "ipykernel")
STEP_TIMEOUT = 600


def pins(path: Path) -> dict[str, str]:
    """name -> version of every ``name==version`` line."""
    found: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, pinned = line.partition("==")
            assert sep and pinned, f"{path.name}: {line!r} is not pinned with =="
            found[canonicalize_name(name)] = pinned
    return found


def run(args: list[str | Path], env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run(
        [str(a) for a in args], env=env, cwd=cwd, capture_output=True, text=True, timeout=STEP_TIMEOUT
    )
    assert done.returncode == 0, f"{' '.join(map(str, args))} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.mark.timeout(3 * STEP_TIMEOUT)
def test_binder_environment_runs_the_notebooks(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "DSHPC_URL", "DSHPC_API_KEY")}
    env |= {
        "PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        "VIRTUAL_ENV": str(venv),
        "DSHPC_HOME": str(tmp_path / "binder-home"),  # postBuild's default home, not the user's
        "TMPDIR": str(tmp_path),  # the notebooks' working folders, and the clean-up that looks for them, stay here
    }
    requirements = BINDER / "requirements.txt"
    pinned = pins(requirements)

    # What repo2docker does: install the requirements, then run postBuild from the repository's root.
    run([python, "-m", "pip", "install", "--only-binary=:all:", "-r", requirements], env, tmp_path)
    run(["bash", BINDER / "postBuild"], env, ROOT)
    run([python, "-m", "pip", "check"], env, tmp_path)
    frozen = pins_from_freeze(run([python, "-m", "pip", "freeze", "--exclude", "dshpc-jupyter"], env, tmp_path))
    assert frozen == pinned, f"the binder environment differs from {requirements.name}: {_difference(frozen, pinned)}"

    # The package came from postBuild's install (not this checkout), with the examples registered in its home.
    report = run([python, "-c", _REPORT], env, tmp_path)
    installed = json.loads(report)
    assert Path(installed["package"]).is_relative_to(venv)
    assert installed["methods"] == sorted(_method_names())
    assert installed["files"] == sum(1 for p in examples.data_dir().rglob("*") if p.is_file())

    # The notebooks, under nbval, with the test tools added: any of their versions that keeps the pins.
    run([python, "-m", "pip", "install", "--only-binary=:all:", "-c", requirements, *TOOLS], env, tmp_path)
    work = tmp_path / "notebooks"
    work.mkdir()
    for name in (*NOTEBOOKS, "conftest.py", "sanitize.cfg"):
        shutil.copy(ROOT / "notebooks" / name, work / name)
    (work / "pytest.ini").write_text(
        "[pytest]\naddopts = -p no:cacheprovider --nbval --nbval-current-env --nbval-sanitize-with=sanitize.cfg\n"
    )
    output = run([venv / "bin" / "pytest", "-q", *NOTEBOOKS], env, work)
    cells = sum(_code_cells(work / name) for name in NOTEBOOKS)
    assert f"{cells} passed" in output, output  # one nbval test per code cell: every cell ran, none failed


def pins_from_freeze(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, pinned = line.partition("==")
        assert sep, f"pip freeze: {line!r} is not a released version"
        found[canonicalize_name(name)] = pinned
    return found


def _difference(frozen: dict[str, str], pinned: dict[str, str]) -> str:
    extra = {n: v for n, v in frozen.items() if pinned.get(n) != v}
    missing = {n: v for n, v in pinned.items() if frozen.get(n) != v}
    return f"installed but not pinned (or at another version): {extra}; pinned but not installed: {missing}"


def _code_cells(notebook: Path) -> int:
    return sum(1 for cell in json.loads(notebook.read_text())["cells"] if cell["cell_type"] == "code")


def _method_names() -> list[str]:
    return [json.loads((p / "method.json").read_text())["name"] for p in examples.methods_dir().iterdir() if p.is_dir()]


_REPORT = """
import json
import dshpc_jupyter
connection = dshpc_jupyter.connect()
print(json.dumps({
    "package": dshpc_jupyter.__file__,
    "methods": sorted(m.name for m in connection.list_methods()),
    "files": len(connection.list_files()),
}))
connection.close()
"""
