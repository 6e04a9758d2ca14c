"""Crashes and restarts lose nothing: a killed worker's jobs are adopted, ingested, re-queued or marked lost; a
process killed inside a submission leaves all of its batch or none of it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from support import host_pid, wait_for_jobs, wait_until, write_method

from dshpc_jupyter.domain.retries import SubmitOptions
from dshpc_jupyter.schedulers.local import worker_pid
from dshpc_jupyter.schedulers.runner import RESULT_FILE
from dshpc_jupyter.service.engine import Engine
from dshpc_jupyter.service.factory import open_engine

CHILD = str(Path(__file__).with_name("child_programs.py"))

# Runs until the test drops a "release" file in its workspace (or at once with "hold": false).
HELD = """\
import json, os, sys, time
workspace = os.environ["JOB_WORKSPACE"]
open(os.path.join(workspace, "method.pid"), "a").write(str(os.getpid()))  # appended: a second run shows
params = json.load(open(sys.argv[2]))
deadline = time.time() + 60
while params["hold"] and not os.path.exists(os.path.join(workspace, "release")) and time.time() < deadline:
    time.sleep(0.02)
print(json.dumps(params))
"""


def test_killed_worker_is_replaced_and_loses_nothing(home: Path, tmp_path: Path) -> None:
    engine = open_engine(home, slots=3)
    try:
        parameters = [{"name": "tag", "type": "string", "required": True}, {"name": "hold", "type": "boolean"}]
        engine.register_method(write_method(tmp_path, "Held", HELD, parameters=parameters))
        file_hash = engine.upload_file(b"input").file_hash
        # A ends while no worker runs, B outlives the worker, C's runner is killed with it; D and E wait.
        hold = {"A": True, "B": True, "C": True, "D": False, "E": False}
        response = engine.simulate_jobs(
            [
                {"file_hash": file_hash, "method_name": "Held", "parameters": {"tag": t, "hold": h}}
                for t, h in hold.items()
            ],
            options=SubmitOptions.of(retry=0),  # C's lost runner stays NF: retries are tests/test_retries.py's
        )
        ids = dict(zip(hold, [r.job_id or "" for r in response.results], strict=True))
        workspaces = {name: engine.home.workspace(job_id) for name, job_id in ids.items()}
        pid_files = {name: workspaces[name] / "method.pid" for name in "ABC"}
        wait_until(lambda: all(p.is_file() and p.read_text() for p in pid_files.values()), 30, "A, B and C to run")

        old_worker = worker_pid(engine.home)
        assert old_worker is not None
        os.kill(old_worker, signal.SIGKILL)
        wait_until(lambda: worker_pid(engine.home) is None, 10, "the worker to die")
        [c_record] = engine.store.get_jobs([ids["C"]])
        c_pid = host_pid(int(pid_files["C"].read_text()), workspaces["C"])
        assert c_pid is not None
        os.kill(int((c_record.scheduler_id or "").split(":")[0]), signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):  # in the sandbox, the method dies with its runner
            os.kill(c_pid, signal.SIGKILL)
        [claimed] = engine.store.claim_pending("local", 1)  # as if the dead worker had claimed D, not started it
        assert claimed.job_id == ids["D"]
        (workspaces["A"] / "release").touch()
        wait_until(lambda: (workspaces["A"] / RESULT_FILE).is_file(), 30, "A to end")
        states = {name: r.status for name, r in zip(ids, engine.store.get_jobs(list(ids.values())), strict=True)}
        assert states == {"A": "R", "B": "R", "C": "R", "D": "CF", "E": "PD"}, "nobody has looked yet"

        others = [ids[name] for name in "ACDE"]
        records = dict(zip("ACDE", wait_for_jobs(engine, others, timeout=30), strict=True))
        assert engine.job_statuses([ids["B"]])[0].status == "R", "B's runner lives on under the new worker"
        (workspaces["B"] / "release").touch()
        [records["B"]] = wait_for_jobs(engine, [ids["B"]], timeout=30)
        new_worker = worker_pid(engine.home)
    finally:
        engine.close()
    assert {name: r.status for name, r in records.items()} == {"A": "CD", "C": "NF", "D": "CD", "E": "CD", "B": "CD"}
    assert json.loads(records["A"].output or "") == {"tag": "A", "hold": True}, "A's result file was ingested"
    assert json.loads(records["B"].output or "") == {"tag": "B", "hold": True}, "B's runner was adopted"
    assert "runner lost" in (records["C"].error or "")
    assert new_worker not in (None, old_worker), "a new worker took over"


def _count(engine: Engine) -> tuple[int, int]:
    return len(engine.list_jobs(limit=1_000_000)), len(engine.batches(limit=1_000_000))


def _configs(engine: Engine, size: int, offset: float) -> list[dict[str, object]]:
    files = sorted(f.file_hash for f in engine.list_files())
    return [
        {"file_hash": files[i % len(files)], "method_name": "Simulated Workload",
         "parameters": {"seconds": offset + i / 10_000, "exit_code": 0}}
        for i in range(size)
    ]  # fmt: skip


def _integrity(engine: Engine) -> str:
    with sqlite3.connect(engine.home.db_path) as conn:
        result: str = conn.execute("PRAGMA integrity_check").fetchone()[0]
    return result


def test_process_killed_inside_the_submission_leaves_none_of_it(queued_engine: Engine, tmp_path: Path) -> None:
    configs = _configs(queued_engine, 5000, 1.0)
    (tmp_path / "configs.json").write_text(json.dumps(configs))
    marker = tmp_path / "inserted"
    before = _count(queued_engine)
    child = subprocess.Popen(
        [sys.executable, CHILD, "stall", str(queued_engine.home.root), str(tmp_path / "configs.json"), str(marker)]
    )
    try:
        wait_until(marker.exists, 60, "the child to insert its jobs")
        assert _count(queued_engine) == before, "uncommitted rows are invisible to others"
    finally:
        child.kill()
        child.wait()
    assert _count(queued_engine) == before, "the killed transaction left nothing"
    assert _integrity(queued_engine) == "ok"

    started = time.monotonic()
    response = queued_engine.simulate_jobs(configs)
    assert time.monotonic() - started < 30, "the dead process's write lock was released"
    assert response.successful_submissions == 5000 and {r.outcome for r in response.results} == {"new"}
    assert _count(queued_engine) == (before[0] + 5000, before[1] + 1)


def test_process_killed_at_any_moment_of_a_submission_leaves_all_or_nothing(
    queued_engine: Engine, tmp_path: Path
) -> None:
    size = 3000
    for round_, delay in enumerate((0.0, 0.08, 0.2, 0.4)):
        configs = _configs(queued_engine, size, 2.0 + round_)
        (tmp_path / "configs.json").write_text(json.dumps(configs))
        marker = tmp_path / f"started-{round_}"
        jobs_before, batches_before = _count(queued_engine)
        child = subprocess.Popen(
            [sys.executable, CHILD, "now", str(queued_engine.home.root), str(tmp_path / "configs.json"), str(marker)],
            stdout=subprocess.DEVNULL,
        )
        try:
            wait_until(marker.exists, 60, "the child to start submitting")
            time.sleep(delay)
        finally:
            child.kill()
            child.wait()
        jobs_after, batches_after = _count(queued_engine)
        committed = jobs_after == jobs_before + size
        assert jobs_after in (jobs_before, jobs_before + size), "all of the batch or none of it"
        assert batches_after == batches_before + committed, "the batch is recorded with its jobs"
        assert _integrity(queued_engine) == "ok"

        again = queued_engine.simulate_jobs(configs)
        assert {r.outcome for r in again.results} == ({"in_progress"} if committed else {"new"})
        assert _count(queued_engine) == (jobs_before + size, batches_after + 1), "re-submitting completes it"


def test_runner_started_but_never_recorded_is_adopted_not_run_twice(home: Path, tmp_path: Path) -> None:
    """A worker killed between starting a runner and recording it leaves the job claimed (CF) without a runner
    id in the store; the runner's own record in the workspace lets the next worker adopt it."""
    engine = open_engine(home)
    try:
        parameters = [{"name": "tag", "type": "string", "required": True}, {"name": "hold", "type": "boolean"}]
        engine.register_method(write_method(tmp_path, "Held", HELD, parameters=parameters))
        file_hash = engine.upload_file(b"input").file_hash
        config = {"file_hash": file_hash, "method_name": "Held", "parameters": {"tag": "once", "hold": True}}
        job_id = engine.simulate_jobs([config]).results[0].job_id or ""
        workspace = engine.home.workspace(job_id)
        pid_file = workspace / "method.pid"
        wait_until(lambda: pid_file.is_file() and bool(pid_file.read_text()), 30, "the job to run")
        first_pid = pid_file.read_text()

        old_worker = worker_pid(engine.home)
        assert old_worker is not None
        os.kill(old_worker, signal.SIGKILL)
        wait_until(lambda: worker_pid(engine.home) is None, 10, "the worker to die")
        with sqlite3.connect(engine.home.db_path) as db:
            db.execute("UPDATE jobs SET status = 'CF', scheduler_id = NULL WHERE job_id = ?", (job_id,))

        wait_until(lambda: engine.job_statuses([job_id])[0].status == "R", 30, "a new worker to adopt the runner")
        (workspace / "release").touch()
        [record] = wait_for_jobs(engine, [job_id], timeout=30)
    finally:
        engine.close()
    assert record.status == "CD"
    assert json.loads(record.output or "") == {"tag": "once", "hold": True}
    assert pid_file.read_text() == first_pid, "the method ran once: no second runner was started"
