"""Polling by change on the real single-node Slurm: ``job_changes`` (the scheduler's ``poll_active``, which
reads four columns per job) reports the outcomes ``job_statuses`` does, and a retried job keeps its priority,
seen as its new array's ``--nice`` in ``squeue`` (docs/design.md sections 13.2 and 14.1)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from support import wait_until, write_method
from test_slurm import EngineFactory, sleeper, slurm_engine, submit

from dshpc_jupyter.domain import status as st
from dshpc_jupyter.domain.models import JobRecord
from dshpc_jupyter.domain.retries import SubmitOptions
from dshpc_jupyter.schedulers.slurm import SlurmScheduler, is_task_id
from dshpc_jupyter.schedulers.slurm_queue import HISTORY, QueueSnapshot
from dshpc_jupyter.service.engine import Engine

__all__ = ["slurm_engine"]  # the fixture, used by name

#: Fails its first attempt (leaving a marker), then sleeps: the retry is in the queue long enough to be seen.
FLAKY = """\
import json, sys, time
from pathlib import Path
p = json.load(open(sys.argv[-1]))
marker = Path(p["marker"])
if not marker.exists():
    marker.write_text("failed once")
    sys.exit(1)
time.sleep(p["seconds"])
print("second attempt")
"""


def followed_by_change(engine: Engine, job_ids: list[str], timeout: float = 90) -> dict[str, JobRecord]:
    """The jobs' records as ``job_changes`` reports them, until all ended: never ``job_statuses``."""
    cursor = engine.job_changes().cursor
    latest = {r.job_id: r for r in engine.store.get_jobs(job_ids)}
    deadline = time.monotonic() + timeout
    while not all(st.is_final(r.status) for r in latest.values()):
        assert time.monotonic() < deadline, {j: r.status for j, r in latest.items()}
        answer = engine.job_changes(cursor)
        cursor = answer.cursor
        latest.update({r.job_id: r for r in answer.jobs if r.job_id in latest})
        time.sleep(0.2)
    return latest


def squeue_nice(task: str) -> set[int]:
    array = task.partition("_")[0]
    out = subprocess.run(["squeue", "-h", "-j", array, "-o", "%y"], capture_output=True, text=True, check=True)
    return {int(line) for line in out.stdout.split()}


def test_job_changes_follows_slurm_jobs_to_the_outcomes_job_statuses_gives(slurm_engine: EngineFactory) -> None:
    engine = slurm_engine(pack=2, poll_interval=0)
    hello = sleeper(engine, 0)["file_hash"]
    configs = [sleeper(engine, i / 10) for i in range(5)] + [{"file_hash": hello, "method_name": "Fails"}]
    ids = submit(engine, configs)
    records = followed_by_change(engine, ids)
    assert [records[i].status for i in ids] == [st.COMPLETED] * 5 + [st.FAILED]
    assert [records[i].output for i in ids[:5]] == [f'{{"seconds": {i / 10}}}\n' for i in range(5)]
    assert records[ids[5]].exit_code == 3 and "bad input" in (records[ids[5]].error or "")
    assert len({records[i].scheduler_id for i in ids}) == 3, "packed two by two"
    again = {r.job_id: r for r in engine.job_statuses(ids)}
    assert {i: (r.status, r.output, r.exit_code) for i, r in again.items()} == {
        i: (r.status, r.output, r.exit_code) for i, r in records.items()
    }
    assert engine.job_changes(engine.job_changes().cursor).jobs == [], "nothing left to report"


def submit_flaky(engine: Engine, tmp_path: Path, seconds: float, priority: int) -> str:
    """One job of a method that fails its first attempt and succeeds on its second after ``seconds``, submitted
    with a retry on ``F`` at ``priority``: its id."""
    params = [{"name": "marker", "type": "string"}, {"name": "seconds", "type": "number"}]
    engine.register_method(write_method(tmp_path / "flaky", "Flaky", FLAKY, parameters=params))
    config = {"method_name": "Flaky", "parameters": {"marker": str(tmp_path / "marker"), "seconds": seconds}}
    options = SubmitOptions.of(retry={"attempts": 2, "on": ["F"]})
    (job_id,) = [r.job_id for r in engine.simulate_jobs([config], options=options, priority=priority).results]
    assert job_id is not None
    return job_id


def test_a_retried_slurm_job_keeps_its_priority_as_nice(slurm_engine: EngineFactory, tmp_path: Path) -> None:
    engine = slurm_engine()
    job_id = submit_flaky(engine, tmp_path, seconds=30, priority=7)
    (first,) = engine.job_statuses([job_id])
    assert first.priority == 7 and first.scheduler_id and squeue_nice(first.scheduler_id) == {-7}

    def retried_in_slurm() -> bool:
        (record,) = engine.job_statuses([job_id])
        return record.attempt == 2 and is_task_id(record.scheduler_id) and record.scheduler_id != first.scheduler_id

    try:
        wait_until(retried_in_slurm, timeout=60, what="the retry's array task")
        (retry,) = engine.job_statuses([job_id])
        assert retry.priority == 7 and [a.status for a in retry.attempts] == [st.FAILED]
        assert squeue_nice(retry.scheduler_id or "") == {-7}, "the retry went to Slurm at the job's priority"
    finally:
        engine.cancel([job_id])


def test_the_queue_snapshot_parses_only_changed_lines_and_never_alters_an_answer_given() -> None:
    snapshot = QueueSnapshot()
    first = snapshot.update("1_0|PENDING|a\n1_1|PENDING|a\n2_0|RUNNING|b\n")
    assert {t: e.state for t, e in first.items()} == {"1_0": "PENDING", "1_1": "PENDING", "2_0": "RUNNING"}
    assert snapshot.update("2_0|RUNNING|b\n1_1|PENDING|a\n1_0|PENDING|a\n") is first, "same lines: same answer"
    second = snapshot.update("1_0|RUNNING|a\n1_1|PENDING|a\n3_0|PENDING|c\n\nnot a line\n")
    assert {t: (e.state, e.comment) for t, e in second.items()} == {
        "1_0": ("RUNNING", "a"), "1_1": ("PENDING", "a"), "3_0": ("PENDING", "c"),
    }  # fmt: skip
    assert first["1_0"].state == "PENDING" and "2_0" in first, "the earlier answer is left as it was"
    assert snapshot.changed_since(1) == {"1_0", "2_0", "3_0"} and snapshot.changed_since(2) == set()
    assert snapshot.changed_since(0) == {"1_0", "1_1", "2_0", "3_0"}, "from before the first answer: all"
    assert snapshot.update("") == {}
    steady = QueueSnapshot()
    steady.update("5_0|PENDING|a\n5_1|PENDING|a\n")
    before = steady.generation
    moved = steady.update("5_1|PENDING|a\n5_0|RUNNING|a\n")
    assert {t: e.state for t, e in moved.items()} == {"5_0": "RUNNING", "5_1": "PENDING"}
    assert steady.changed_since(before) == {"5_0"}, "a task whose line changed, and no other"
    assert steady.update("5_0|RUNNING|a\n5_1|PENDING|a\n") is moved, "the same lines in another order"
    assert steady.update("5_0|RUNNING|a\n") == {"5_0": moved["5_0"]} and steady.changed_since(before + 1) == {"5_1"}
    for n in range(HISTORY):
        snapshot.update(f"9_{n}|PENDING|z\n")
    assert snapshot.changed_since(1) is None, "too far back: the caller compares every task"


def test_a_poll_by_change_watches_running_jobs_and_passes_over_unchanged_pending_ones(
    slurm_engine: EngineFactory,
) -> None:
    engine = slurm_engine(poll_interval=0)
    scheduler = engine.scheduler
    assert isinstance(scheduler, SlurmScheduler)
    cpus = int(
        subprocess.run(["sinfo", "-h", "-o", "%c"], capture_output=True, text=True, check=True).stdout.split()[0]
    )
    ids = submit(engine, [sleeper(engine, 30 + i) for i in range(cpus + 2)])
    try:
        wait_until(lambda: sum(r.status == st.RUNNING for r in engine.job_statuses(ids)) == cpus, timeout=60,
                   what="the node's CPUs busy")  # fmt: skip
        cursor = engine.job_changes().cursor
        engine.job_changes(cursor)
        statuses = {r.job_id: r.status for r in engine.store.get_jobs(ids)}
        running = {j for j, status in statuses.items() if status == st.RUNNING}
        assert len(running) == cpus and len(statuses) - cpus == 2, statuses
        assert scheduler._view.watch == running, "pending jobs whose task is pending are not looked at again"
        engine.job_changes(cursor)
        assert scheduler._view.watch == running
    finally:
        engine.cancel(ids)
