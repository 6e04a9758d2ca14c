"""The local worker's slot runners for real: one long-lived runner per slot runs job after job, and what can go
wrong with one (killed mid-job, stopped by a signal, a cancel racing the end of a job) ends each job exactly
once and never leaves the queue stuck."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from support import wait_for_jobs, wait_until, write_method

from dshpc_jupyter.domain import status as st
from dshpc_jupyter.domain.retries import SubmitOptions
from dshpc_jupyter.service.engine import Engine
from dshpc_jupyter.service.factory import open_engine

# Appends its tag to a log shared by the test (one line per run), then holds until released (or at once).
LOGGED = """\
import json, os, sys, time
params = json.load(open(sys.argv[2]))
with open(params["log"], "a") as log:
    log.write(params["tag"] + "\\n")
deadline = time.time() + 60
release = os.path.join(os.environ["JOB_WORKSPACE"], "release")
while params["hold"] and not os.path.exists(release) and time.time() < deadline:
    time.sleep(0.02)
print(json.dumps({"tag": params["tag"]}))
"""

PARAMETERS = [
    {"name": "tag", "type": "string", "required": True},
    {"name": "hold", "type": "boolean", "default": False},
    {"name": "log", "type": "string", "required": True},
]


def _lab(home: Path, tmp_path: Path, slots: int) -> tuple[Engine, str]:
    engine = open_engine(home, slots=slots)
    engine.register_method(write_method(tmp_path / "m", "Logged", LOGGED, parameters=PARAMETERS))
    return engine, engine.upload_file(b"input\n").file_hash


def _submit(engine: Engine, file_hash: str, log: Path, tags: list[str], hold: bool = False) -> list[str]:
    """The jobs of ``tags``, never retried: a lost runner's job stays NF (retries are tests/test_retries.py's)."""
    configs = [
        {"file_hash": file_hash, "method_name": "Logged", "parameters": {"tag": t, "hold": hold, "log": str(log)}}
        for t in tags
    ]
    return [r.job_id or "" for r in engine.simulate_jobs(configs, options=SubmitOptions.of(retry=0)).results]


def _runs(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


def _running(engine: Engine, job_id: str) -> int:
    """The pid of the runner of a running job, from its ``scheduler_id`` (``pid:start time``)."""
    wait_until(lambda: engine.job_statuses([job_id])[0].status == st.RUNNING, 30, "the job to run")
    return int((engine.job_statuses([job_id])[0].scheduler_id or "").partition(":")[0])


def _hold(engine: Engine, file_hash: str, log: Path) -> tuple[str, int]:
    """A job that holds its slot, once its method has started; and its runner's pid."""
    [held] = _submit(engine, file_hash, log, ["held"], hold=True)
    runner = _running(engine, held)
    wait_until(lambda: _runs(log) == ["held"], 30, "the held method to start")
    return held, runner


def test_one_runner_per_slot_runs_job_after_job(home: Path, tmp_path: Path) -> None:
    engine, file_hash = _lab(home, tmp_path, slots=2)
    try:
        log = tmp_path / "runs.log"
        ids = _submit(engine, file_hash, log, [f"t{i}" for i in range(30)])
        records = wait_for_jobs(engine, ids)
    finally:
        engine.close()
    assert {r.status for r in records} == {"CD"}
    assert sorted(_runs(log)) == sorted(f"t{i}" for i in range(30)), "every job ran once"
    runners = {r.scheduler_id for r in records}
    assert 1 <= len(runners) <= 2, f"at most one runner per slot, not one per job: {runners}"


def test_a_slot_runner_killed_mid_job_loses_that_job_only(home: Path, tmp_path: Path) -> None:
    """kill -9 of the runner: its job ends once as NF (its method stopped), the queue behind it runs on a new
    runner, and nothing runs twice."""
    engine, file_hash = _lab(home, tmp_path, slots=1)
    try:
        log = tmp_path / "runs.log"
        [held] = _submit(engine, file_hash, log, ["held"], hold=True)
        first_runner = _running(engine, held)
        behind = _submit(engine, file_hash, log, ["b1", "b2", "b3"])
        wait_until(lambda: _runs(log) == ["held"], 30, "the held method to start")
        os.kill(first_runner, signal.SIGKILL)
        [lost] = wait_for_jobs(engine, [held], timeout=30)
        records = wait_for_jobs(engine, behind, timeout=60)
    finally:
        engine.close()
    assert lost.status == "NF" and "runner lost" in (lost.error or "")
    assert [r.status for r in records] == ["CD", "CD", "CD"]
    assert sorted(_runs(log)) == ["b1", "b2", "b3", "held"], "no job ran twice"
    assert {r.scheduler_id for r in records} != {lost.scheduler_id}, "a new runner took the slot"


def test_a_slot_runner_stopped_by_sigterm_cancels_its_job_and_is_replaced(home: Path, tmp_path: Path) -> None:
    engine, file_hash = _lab(home, tmp_path, slots=1)
    try:
        log = tmp_path / "runs.log"
        held, runner = _hold(engine, file_hash, log)
        os.kill(runner, signal.SIGTERM)
        [stopped] = wait_for_jobs(engine, [held], timeout=30)
        [after] = wait_for_jobs(engine, _submit(engine, file_hash, log, ["after"]), timeout=60)
    finally:
        engine.close()
    assert stopped.status == "CA" and "cancelled: process group stopped" in (stopped.error or "")
    assert after.status == "CD" and after.scheduler_id != stopped.scheduler_id


def test_a_cancel_stops_only_its_job_and_the_runner_serves_the_next(home: Path, tmp_path: Path) -> None:
    """A cancel is addressed to a job (its cancel file), not to the runner: the runner's next job is not
    touched, even when the cancel arrives as the job it was meant for ends."""
    engine, file_hash = _lab(home, tmp_path, slots=1)
    try:
        log = tmp_path / "runs.log"
        held, runner = _hold(engine, file_hash, log)
        assert engine.cancel([held]).cancelled == [held]
        [cancelled] = wait_for_jobs(engine, [held], timeout=30)
        [quick] = _submit(engine, file_hash, log, ["quick"])
        assert engine.cancel([quick]).cancelled in ([quick], [])  # races its end: either way, it ends once
        nexts = wait_for_jobs(engine, [quick, *_submit(engine, file_hash, log, ["n1", "n2"])], timeout=60)
    finally:
        engine.close()
    assert cancelled.status == "CA"
    assert nexts[0].status in ("CA", "CD")
    assert [r.status for r in nexts[1:]] == ["CD", "CD"], "the cancel never reached the jobs after it"
    assert {int((r.scheduler_id or "0:").partition(":")[0]) for r in nexts[1:]} == {runner}, "one runner served all"
