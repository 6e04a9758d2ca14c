"""README.md cannot rot: every command and code block in it runs here, in document order, the way a newcomer
following it top to bottom would run them (one working folder, one home directory, the repository's
``scripts/`` beside them, but not the package's folder: every example works from any folder).

Block kinds, by their fence and an optional marker comment on the line before:

- ``bash``: run by bash (``set -euo pipefail``); with ``<!-- readme-test: background -->`` started in the
  background (a server) and stopped at the end; with ``<!-- readme-test: slurm -->`` run where Slurm is
  installed (CI installs it); ``<!-- readme-test: fresh-venv -->`` runs in a fresh copy of the repository
  (its own test below) and ``<!-- readme-test: ci -->`` is the test command, which must be what ``.ci/run`` runs;
- ``python``: a script, in a fresh interpreter;
- ``ipython``: a cell, in one real Jupyter kernel shared by all such blocks;
- ``json`` / ``yaml``: with ``<!-- file: PATH -->`` written to PATH before later blocks use it; otherwise parsed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml
from kernels import Kernel
from support import SLURM_TEST_ENV

from dshpc_jupyter.domain.home import Home
from dshpc_jupyter.schedulers.local import stop_worker

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
FENCE = re.compile(
    r"(?:<!-- (?P<kind>readme-test|file): (?P<arg>[^>]+?) -->\n)?^```(?P<lang>[a-z]*)\n(?P<code>.*?)^```$",
    re.S | re.M,
)
LANGUAGES = {"bash", "python", "ipython", "json", "yaml"}
MARKERS = {"background", "slurm", "fresh-venv", "ci"}
README_PORT = "8001"
SLURM_SCRIPT = ROOT / "scripts" / "local-slurm.sh"


@dataclass
class Block:
    lang: str
    code: str
    kind: str | None
    arg: str | None
    line: int

    def __str__(self) -> str:
        return f"README.md line {self.line} ({self.lang}{', ' + self.arg if self.arg else ''})"


def blocks() -> list[Block]:
    text = README.read_text(encoding="utf-8")
    return [
        Block(m["lang"], m["code"], m["kind"], m["arg"], text.count("\n", 0, m.start("code")) + 1)
        for m in FENCE.finditer(text)
    ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def slurm_usable() -> bool:
    return shutil.which("slurmctld") is not None and os.geteuid() == 0 and SLURM_SCRIPT.exists()


def test_every_block_is_of_a_kind_this_test_runs() -> None:
    found = blocks()
    assert len(found) > 10
    for block in found:
        assert block.lang in LANGUAGES, f"{block}: a code block without a language this test runs"
        if block.kind == "readme-test":
            assert block.arg in MARKERS, f"{block}: unknown marker {block.arg!r}"
        if block.lang in ("json", "yaml") and block.kind != "file":
            (json.loads if block.lang == "json" else yaml.safe_load)(block.code)


def test_the_readme_test_command_is_what_ci_runs() -> None:
    [ci] = [b for b in blocks() if b.arg == "ci"]
    command = ci.code.strip()
    assert "\n" not in command
    assert command in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """A folder as a newcomer's clone looks from the README's point of view, and their environment."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "scripts").symlink_to(ROOT / "scripts")
    env = {
        **os.environ,
        "DSHPC_HOME": str(tmp_path / "home"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(ROOT),
        **SLURM_TEST_ENV,  # the README's `local-slurm.sh start` then leaves the session's cluster as it is
    }
    yield work, env
    for lock in [*tmp_path.glob("home/run/worker.lock"), *work.glob("*/run/worker.lock")]:
        stop_worker(Home.open(lock.parent.parent))


def _run(argv: list[str], block: Block, work: Path, env: dict[str, str], timeout: float = 600) -> str:
    result = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, (
        f"{block} failed:\n{block.code}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )
    return result.stdout


def _wait_for_health(url: str, server: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, "the README's server exited"
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"the README's server did not answer on {url} within {timeout} s")


def test_readme_blocks_run_in_order(workdir: tuple[Path, dict[str, str]]) -> None:
    work, env = workdir
    port = str(free_port())
    kernel: Kernel | None = None
    servers: list[subprocess.Popen[bytes]] = []
    slurm_was_running = (
        slurm_usable() and subprocess.run([str(SLURM_SCRIPT), "status"], capture_output=True).returncode == 0
    )
    ran: list[str] = []
    try:
        for block in blocks():
            code = block.code.replace(README_PORT, port)
            if block.arg in ("fresh-venv", "ci"):
                continue
            if block.kind == "file":
                target = work / (block.arg or "")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(code, encoding="utf-8")
            elif block.lang == "bash" and block.arg == "background":
                servers.append(subprocess.Popen(["bash", "-c", code], cwd=work, env=env, start_new_session=True))
                _wait_for_health(f"http://127.0.0.1:{port}", servers[-1])
            elif block.lang == "bash":
                if block.arg == "slurm" and not slurm_usable():
                    continue
                _run(["bash", "-c", f"set -euo pipefail\n{code}"], block, work, env)
            elif block.lang == "python":
                _run([sys.executable, "-c", code], block, work, env)
            elif block.lang == "ipython":
                kernel = kernel or Kernel(work, env)
                cell = kernel.run(code, timeout=600)
                assert cell.status == "ok", f"{block} failed:\n{code}\n{cell.error}\n{cell.stderr}"
                assert "Error" not in cell.stderr, f"{block} printed an error:\n{cell.stderr}"
            else:
                continue
            ran.append(str(block))
    finally:
        if kernel is not None:
            kernel.shutdown()
        for server in servers:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=60)
        if slurm_usable() and not slurm_was_running:
            subprocess.run([str(SLURM_SCRIPT), "stop"], capture_output=True, timeout=120)
    assert len(ran) >= 15, ran
    slurm_blocks = [b for b in blocks() if b.arg == "slurm"]
    assert all(str(b) in ran for b in slurm_blocks) == slurm_usable(), "Slurm blocks run wherever Slurm can"


def test_first_command_installs_and_runs_the_demo_in_a_fresh_copy(tmp_path: Path) -> None:
    """The README's first command, verbatim, in a copy of the repository's files with no environment yet."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs the git checkout to know which files the repository holds")
    [fresh] = [b for b in blocks() if b.arg == "fresh-venv"]
    copy = tmp_path / "clone"
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, tracked.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env.update(DSHPC_HOME=str(tmp_path / "home"), PIP_DISABLE_PIP_VERSION_CHECK="1")
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if ".venv" not in p)
    try:
        output = _run(["bash", "-c", f"set -euo pipefail\n{fresh.code}"], fresh, copy, env, timeout=900)
    finally:
        stop_worker(Home.open(tmp_path / "home"))
    assert "Statistics" in output and "total_jobs" in output
    assert "Spectral An" in output, "the unknown method's row is in the table"
