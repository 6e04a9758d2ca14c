"""Helpers shared by the tests: waiting for jobs with a bounded loop, and writing method directories."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from dshpc_jupyter.domain import status as st
from dshpc_jupyter.domain.home import Home
from dshpc_jupyter.domain.models import JobRecord
from dshpc_jupyter.schedulers.local import stop_worker
from dshpc_jupyter.service.engine import Engine
from dshpc_jupyter.service.factory import open_engine

#: The test Slurm cluster's MaxArraySize, low so that a modest batch must be split into several arrays.
SLURM_MAX_ARRAY_SIZE = 10
#: How the test session configures its local Slurm (scripts/local-slurm.sh). Whoever starts it in a session (the
#: ``local_slurm`` fixture, the README's Slurm block, the Slurm notebook) passes these, so a later ``start`` finds
#: the same slurm.conf and leaves the running cluster alone, rather than restarting it with the defaults.
SLURM_TEST_ENV = {"DSHPC_SLURM_MAX_ARRAY_SIZE": str(SLURM_MAX_ARRAY_SIZE), "DSHPC_SLURM_KILL_WAIT": "2"}


def wait_for_jobs(engine: Engine, job_ids: Sequence[str], timeout: float = 60.0) -> list[JobRecord]:
    """Poll until every job has ended; fail the test (not hang) after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        records = engine.job_statuses(list(job_ids))
        if {r.job_id for r in records} == set(job_ids) and all(st.is_final(r.status) for r in records):
            return records
        if time.monotonic() > deadline:
            raise AssertionError(f"jobs still running after {timeout}s: {[(r.job_id, r.status) for r in records]}")
        time.sleep(0.05)


def wait_until(condition: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def write_method(
    root: Path,
    name: str,
    script: str,
    *,
    parameters: list[dict[str, Any]] | None = None,
    resources: dict[str, Any] | None = None,
    command: str = "python3",
    script_path: str = "main.py",
    extra_files: dict[str, str] | None = None,
) -> Path:
    """A method directory under ``root`` with the given script and spec."""
    directory = root / name.lower().replace(" ", "_")
    directory.mkdir(parents=True, exist_ok=True)
    spec = {
        "name": name,
        "description": f"test method {name}",
        "command": command,
        "script_path": script_path,
        "version": "1",
        "parameters": parameters or [],
        "resources": resources or {},
    }
    (directory / "method.json").write_text(json.dumps(spec), encoding="utf-8")
    (directory / script_path).write_text(script, encoding="utf-8")
    for rel, text in (extra_files or {}).items():
        (directory / rel).parent.mkdir(parents=True, exist_ok=True)
        (directory / rel).write_text(text, encoding="utf-8")
    return directory


HOLD_SECONDS = 110.0
"""How long the job of :func:`hold_the_slot` runs (under the 2-minute limit of the Simulated Workload)."""


def hold_the_slot(engine: Engine) -> str:
    """Start a long job on an engine whose worker has one slot and wait until it runs: every job submitted
    afterwards stays pending. The example methods and data must be in the store. Returns the job's id."""
    hello = next(f.file_hash for f in engine.list_files() if f.filename == "hello.txt")
    config = {"file_hash": hello, "method_name": "Simulated Workload", "parameters": {"seconds": HOLD_SECONDS}}
    job_id = engine.simulate_jobs([config]).results[0].job_id
    assert job_id is not None
    wait_until(lambda: engine.job_statuses([job_id])[0].status == st.RUNNING, 30, "the slot to be held")
    return job_id


def file_hashes(engine: Engine) -> dict[str, str]:
    """file name -> file_hash of the files in an engine's store."""
    return {f.filename or "": f.file_hash for f in engine.list_files()}


class CountingBackend:
    """A real backend whose calls are counted by method name (the ids each ``job_statuses`` asked for, and the
    time of each poll: ``job_statuses`` or ``job_changes``),
    optionally failing the first ``fail_first`` calls of ``fail_method`` the way a service that does not
    answer would (a fault that cannot be produced on demand with the embedded backend)."""

    def __init__(self, inner: Any, *, fail_method: str = "", fail_first: int = 0) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()
        self.status_requests: list[list[str]] = []
        self.call_times: list[float] = []
        self._fail_method, self._failures_left = fail_method, fail_first

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if name.startswith("_") or not callable(attribute):
            return attribute

        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            if name == "job_statuses":
                self.status_requests.append(list(args[0]))
            if name in ("job_statuses", "job_changes"):
                self.call_times.append(time.monotonic())
            if name == self._fail_method and self._failures_left > 0:
                self._failures_left -= 1
                raise ConnectionError("service unavailable (injected)")
            return await attribute(*args, **kwargs)

        return counted


def shutdown_home(home: Path) -> None:
    """Cancel what still runs in a home and stop its worker, so no process outlives the test."""
    engine = open_engine(home)
    try:
        active = [job.job_id for job in engine.store.active_jobs("local")]
        if active:
            engine.cancel(active)
            wait_until(
                lambda: not any(st.is_in_progress(j.status) for j in engine.store.get_jobs(active)),
                timeout=10,
                what="cancelled jobs to end",
            )
    finally:
        engine.close()
        stop_worker(Home.open(home))


def run_cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``dshpc-jupyter --home HOME ARGS`` in its own process, as a user types it; its output as text."""
    return subprocess.run(
        [sys.executable, "-m", "dshpc_jupyter.cli", "--home", str(home), *args],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def stop_gracefully(process: subprocess.Popen[bytes], patience: float = 30.0) -> None:
    """SIGTERM (a server finishes what is in flight), then SIGKILL if it has not ended after ``patience`` s."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=patience)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def host_pid(inner: int, workspace: Path) -> int | None:
    """The pid, as this process sees it, of the method that wrote ``inner`` (its own ``os.getpid()``) in its
    ``workspace``: in a sandbox with its own PID namespace the two differ (``NSpid`` in ``/proc/PID/status``).
    None once that process has ended."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            nspid = next(line for line in (entry / "status").read_text().splitlines() if line.startswith("NSpid:"))
            cwd = (entry / "cwd").resolve()
        except (OSError, StopIteration):
            continue
        if int(nspid.split()[-1]) == inner and cwd == workspace.resolve():
            return int(entry.name)
    return None
