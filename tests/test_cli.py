"""The command line's ``submit``: it waits through ``Batch`` (one poller, one ``wait``), prints what the service
answered when not waiting, and where each job is when the wait times out."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from dshpc_jupyter import cli
from dshpc_jupyter.examples import data_files, methods_dir
from dshpc_jupyter.front.batch import Batch


@pytest.fixture
def run(home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Any:
    """``dshpc-jupyter --home HOME ARGS...`` in this process: its exit code and what it printed (wide lines)."""
    monkeypatch.setattr(cli.console, "width", 200)

    def run(*args: str) -> tuple[int, str]:
        capsys.readouterr()
        code = cli.main(["--home", str(home), *args])
        return code, capsys.readouterr().out

    assert run("methods", "register", str(methods_dir()))[0] == 0
    return run


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float | None]:
    """The timeouts ``Batch.wait`` was called with (it still waits)."""
    calls: list[float | None] = []
    original = Batch.wait

    def wait(self: Batch, timeout: float | None = None) -> Batch:
        calls.append(timeout)
        return original(self, timeout)

    monkeypatch.setattr(Batch, "wait", wait)
    return calls


def write_request(path: Path, configs: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps({"jobs": configs}), encoding="utf-8")
    return path


def test_submit_waits_through_batch_and_shows_outputs_then_answers(
    run: Any, waits: list[float | None], tmp_path: Path
) -> None:
    readings = str(data_files("readings_a.csv")[0])
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(f"method: Threshold Filter\nfiles: [{readings}]\ngrid:\n  threshold: [0.5, -1]\n", "utf-8")
    code, out = run("submit", str(sweep), "--wait", "--timeout", "60")
    assert code == 0 and waits == [60.0]
    assert '{"rows": 48, "above": 28' in out and "CD new" in out
    assert "F new" in out and "threshold must be non-negative" in out  # a failed job shows its error
    code, out = run("submit", str(sweep))
    assert code == 0 and waits == [60.0], "without --wait nothing waits"
    assert "CD cached" in out and "Completed job found" in out and '"rows": 48' not in out  # the service's answer
    code, out = run("submit", str(sweep), "--wait")
    assert code == 0 and waits == [60.0, None]
    assert "CD cached" in out and '{"rows": 48, "above": 28' in out  # a cached job's output, once followed


def test_submit_wait_that_times_out_prints_the_jobs_still_in_progress(
    run: Any, waits: list[float | None], tmp_path: Path
) -> None:
    [hello] = data_files("hello.txt")
    code, out = run("files", "upload", str(hello))
    file_hash = out.split()[0]
    configs = [{"method_name": "Simulated Workload", "file_hash": file_hash, "parameters": {"seconds": 30}}]
    code, out = run("submit", str(write_request(tmp_path / "slow.json", configs)), "--wait", "--timeout", "0.5")
    assert code == 0 and waits == [0.5]
    row = next(line for line in out.splitlines() if "Simulated Workload" in line)
    assert ("PD new" in row or "R new" in row) and "Statistics" in out


def test_jobs_outputs_and_files_download(run: Any, home: Path, tmp_path: Path) -> None:
    method = tmp_path / "writer"
    method.mkdir()
    (method / "method.json").write_text(json.dumps({"name": "Writer", "command": "python3", "script_path": "w.py"}))
    (method / "w.py").write_text(
        "import os\nout = os.path.join(os.environ['JOB_WORKSPACE'], 'outputs')\n"
        "open(os.path.join(out, 'table.csv'), 'w').write('a,b\\n1,2\\n')\n"
    )
    assert run("methods", "register", str(method))[0] == 0
    request = write_request(tmp_path / "jobs.json", [{"method_name": "Writer"}])
    assert run("submit", str(request), "--wait")[0] == 0
    code, listing = run("jobs", "list")
    job_id = next(re.findall(r"\b[0-9a-f]{32}\b", line)[0] for line in listing.splitlines() if "Writer" in line)
    code, shown = run("jobs", "outputs", job_id)
    wanted = hashlib.sha256(b"a,b\n1,2\n").hexdigest()
    assert code == 0 and "table.csv" in shown and wanted in shown and " 8" in shown
    code, written = run("files", "download", wanted, str(tmp_path))
    assert code == 0 and (tmp_path / "table.csv").read_bytes() == b"a,b\n1,2\n" and "table.csv" in written
    code, _ = run("files", "download", "0" * 64, str(tmp_path))
    assert code != 0
