"""Automatic retries on the local scheduler, each from its real condition: a method that really runs out of its
memory limit, one that really overruns its time, a runner really killed with SIGKILL. The job keeps its id, each
attempt that ended is recorded, and the next one gets more memory or time (docs/design.md section 12.1)."""

from __future__ import annotations

import json
import os
import re
import signal
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from support import wait_for_jobs, wait_until, write_method

from dshpc_jupyter.domain import status as st
from dshpc_jupyter.domain.errors import InvalidInputError, MethodSpecError
from dshpc_jupyter.domain.retries import DEFAULT_POLICY, RetryPolicy, SubmitOptions
from dshpc_jupyter.schedulers.base import Refusal, Submission
from dshpc_jupyter.schedulers.local import LocalScheduler
from dshpc_jupyter.service.engine import Engine
from dshpc_jupyter.service.factory import open_engine
from dshpc_jupyter.store.retries import next_resources, slurm_time

# Holds ``mb`` MiB for a moment (past its limit, the runner stops it), or sleeps ``seconds``, or fails.
WORK = """\
import json, os, sys, time
p = json.load(open(sys.argv[2]))
open(os.path.join(os.environ["JOB_WORKSPACE"], "method.pid"), "w").write(str(os.getpid()))
if p["mode"] == "fail":
    print("Traceback (most recent call last):", file=sys.stderr)
    print("ValueError: failing on purpose", file=sys.stderr)
    sys.exit(2)
hoard = [b"x" * (1 << 20) for _ in range(p["mb"])]
time.sleep(p["seconds"])
print(json.dumps({"held": len(hoard)}))
"""
PARAMETERS = [
    {"name": "mode", "type": "string", "default": "work", "choices": ["work", "fail"]},
    {"name": "mb", "type": "integer", "default": 0},
    {"name": "seconds", "type": "number", "default": 0},
]


@pytest.fixture
def lab(home: Path, tmp_path: Path) -> Iterator[tuple[Engine, str]]:
    engine = open_engine(home)
    engine.register_method(write_method(tmp_path / "m", "Work", WORK, parameters=PARAMETERS,
                                        resources={"time": "0:02", "mem": "96M"}))  # fmt: skip
    file_hash = engine.upload_file(b"input").file_hash
    yield engine, file_hash
    engine.close()


def _config(file_hash: str, **parameters: Any) -> dict[str, Any]:
    return {"file_hash": file_hash, "method_name": "Work", "parameters": parameters}


def _run(engine: Engine, config: dict[str, Any], retry: object, timeout: float = 60) -> tuple[str, Any]:
    response = engine.simulate_jobs([config], options=SubmitOptions.of(retry=retry))
    job_id = response.results[0].job_id
    assert job_id is not None
    [record] = wait_for_jobs(engine, [job_id], timeout=timeout)
    return job_id, record


def test_a_real_out_of_memory_is_retried_with_more_memory_and_completes(lab: tuple[Engine, str]) -> None:
    engine, file_hash = lab
    retry = {"attempts": 3, "on": ["OOM"], "mem_factor": 2}
    job_id, record = _run(engine, _config(file_hash, mb=120, seconds=0.5), retry)
    assert (record.job_id, record.status, record.attempt) == (job_id, st.COMPLETED, 2), record.error
    assert json.loads(record.output or "") == {"held": 120}
    [first] = record.attempts
    assert (first.attempt, first.status, first.resources) == (1, st.OUT_OF_MEMORY, {"time": "0:02", "mem": "96M"})
    assert "memory limit of 96 MiB exceeded" in (first.reason or "")
    assert first.started_at is not None and first.finished_at is not None
    assert record.started_at is not None and first.finished_at <= record.started_at
    assert record.resources == {"time": "0:02", "mem": "192M"}, "the memory doubled, the time kept"
    kept = engine.home.workspace(job_id) / "attempts" / "1"
    assert (kept / "result.json").is_file(), "the first attempt's files stay in its workspace"
    assert json.loads((kept / "result.json").read_text())["status"] == st.OUT_OF_MEMORY
    again = engine.simulate_jobs([_config(file_hash, mb=120, seconds=0.5)]).results[0]
    assert (again.outcome, again.job_id) == ("cached", job_id), "the retried job is the cached one"


def test_a_real_timeout_is_retried_with_more_time(lab: tuple[Engine, str]) -> None:
    engine, file_hash = lab
    retry = {"attempts": 2, "on": ["TO"], "time_factor": 3}
    _, record = _run(engine, _config(file_hash, seconds=3.5), retry)
    assert (record.status, record.attempt) == (st.COMPLETED, 2), record.error
    assert [(a.status, a.resources["time"]) for a in record.attempts] == [(st.TIMEOUT, "0:02")]
    assert "time limit of 2 s reached" in (record.attempts[0].reason or "")
    assert record.resources["time"] == "0:06"


def test_the_last_attempt_s_failure_is_the_job_s_and_every_attempt_is_kept(lab: tuple[Engine, str]) -> None:
    engine, file_hash = lab
    retry = {"attempts": 3, "on": ["F"], "backoff": 0.5}
    _, record = _run(engine, _config(file_hash, mode="fail"), retry)
    assert (record.status, record.exit_code, record.attempt) == (st.FAILED, 2, 3)
    assert [(a.attempt, a.status, a.exit_code) for a in record.attempts] == [(1, "F", 2), (2, "F", 2)]
    assert {a.reason for a in record.attempts} == {"ValueError: failing on purpose"}, "the exception line"
    for before, after in zip(record.attempts, [*record.attempts[1:], record], strict=True):
        assert before.finished_at is not None and after.started_at is not None
        assert (after.started_at - before.finished_at).total_seconds() >= 0.45, "the backoff was waited"


def test_a_method_s_own_failure_is_not_retried_by_default(lab: tuple[Engine, str]) -> None:
    engine, file_hash = lab
    _, record = _run(engine, _config(file_hash, mode="fail"), None)
    assert (record.status, record.attempt, record.attempts) == (st.FAILED, 1, [])
    _, record = _run(engine, _config(file_hash, seconds=3), None)
    assert (record.status, record.attempt) == (st.TIMEOUT, 1), "a time limit is reported, not retried, by default"


def test_a_runner_killed_with_sigkill_is_retried_once_by_default(lab: tuple[Engine, str]) -> None:
    engine, file_hash = lab
    config = _config(file_hash, seconds=1.5)
    job_id = engine.simulate_jobs([config]).results[0].job_id or ""
    wait_until(lambda: (engine.home.workspace(job_id) / "method.pid").is_file(), 20, "the method to start")
    [running] = engine.job_statuses([job_id])
    os.kill(int((running.scheduler_id or "").split(":")[0]), signal.SIGKILL)
    [record] = wait_for_jobs(engine, [job_id], timeout=30)
    assert (record.status, record.attempt) == (st.COMPLETED, 2), record.error
    [lost] = record.attempts
    assert lost.status == st.NODE_FAIL and "runner lost" in (lost.reason or "")


def test_a_method_json_sets_its_jobs_policy_and_a_call_overrides_it(lab: tuple[Engine, str], tmp_path: Path) -> None:
    engine, file_hash = lab
    directory = write_method(tmp_path / "r", "Work", WORK, parameters=PARAMETERS, resources={"time": "0:02"})
    spec = json.loads((directory / "method.json").read_text())
    (directory / "method.json").write_text(json.dumps({**spec, "retry": {"attempts": 2, "on": ["F"]}}))
    engine.register_method(directory)
    _, record = _run(engine, _config(file_hash, mode="fail"), None)
    assert (record.status, record.attempt) == (st.FAILED, 2), "the method's policy retried its failure"
    _, record = _run(engine, _config(file_hash, mode="fail", mb=1), 0)
    assert (record.status, record.attempt) == (st.FAILED, 1), "the call's policy (no retries) wins"


def test_a_cancelled_job_is_never_retried(lab: tuple[Engine, str]) -> None:
    engine, file_hash = lab
    config = _config(file_hash, seconds=20)
    everything = {"attempts": 5, "on": ["TO", "OOM", "NF", "PR", "BF", "F"]}
    job_id = engine.simulate_jobs([config], options=SubmitOptions.of(retry=everything)).results[0].job_id or ""
    wait_until(lambda: (engine.home.workspace(job_id) / "method.pid").is_file(), 20, "the method to start")
    engine.cancel([job_id])
    [record] = wait_for_jobs(engine, [job_id], timeout=30)
    assert (record.status, record.attempt) == (st.CANCELLED, 1)


@pytest.mark.parametrize(
    ("retry", "message"),
    [
        ({"attempts": 0}, "retry.attempts: Input should be greater than or equal to 1"),
        ({"on": ["CA"]}, "'CA' is not a code a retry can cure"),
        ({"tries": 2}, "retry.tries: Extra inputs are not permitted"),
        (True, "must be a number of retries or an object, got boolean"),
        (-1, "must be between 0 and 19 retries, got -1"),
        ({"max_mem": "lots"}, "retry.max_mem: 'lots' is not a memory size"),
    ],
)
def test_a_bad_policy_is_refused_naming_the_field(lab: tuple[Engine, str], retry: object, message: str) -> None:
    engine, file_hash = lab
    with pytest.raises(InvalidInputError, match=re.escape(message)):
        engine.simulate_jobs([_config(file_hash)], options=SubmitOptions.of(retry=retry))
    assert engine.list_jobs() == [], "nothing was submitted"


def test_a_bad_policy_in_method_json_is_refused_naming_the_field(lab: tuple[Engine, str], tmp_path: Path) -> None:
    engine, _ = lab
    directory = write_method(tmp_path / "bad", "Bad Retry", WORK)
    spec = json.loads((directory / "method.json").read_text())
    (directory / "method.json").write_text(json.dumps({**spec, "retry": {"mem_factor": 0.5}}))
    with pytest.raises(MethodSpecError, match=r"retry\.mem_factor: Input should be greater than or equal to 1"):
        engine.register_method(directory)


def test_raised_resources_are_capped() -> None:
    policy = RetryPolicy(attempts=4, mem_factor=4, time_factor=10, max_mem="1G", max_time="0:30")
    assert next_resources({"mem": "512M", "time": "0:10"}, st.OUT_OF_MEMORY, policy, local=False) == {
        "mem": "1024M", "time": "0:10"}  # fmt: skip
    assert next_resources({"mem": "512M", "time": "0:10"}, st.TIMEOUT, policy, local=False)["time"] == "0:30"
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    machine = next_resources({"mem": f"{total >> 20}M"}, st.OUT_OF_MEMORY, RetryPolicy(), local=True)
    assert machine == {"mem": f"{total >> 20}M"}, "a local job never asks for more than the machine has"
    assert next_resources({}, st.OUT_OF_MEMORY, policy, local=False) == {}, "no limit stays no limit"
    assert [slurm_time(s) for s in (0.2, 59, 61, 3600, 90061)] == ["0:01", "0:59", "1:01", "1:00:00", "25:01:01"]


def test_the_default_policy_retries_only_what_is_not_the_method_s_fault() -> None:
    assert (DEFAULT_POLICY.attempts, set(DEFAULT_POLICY.on)) == (2, {st.NODE_FAIL, st.PREEMPTED})
    assert RetryPolicy.parse(2) == RetryPolicy(attempts=3)
    assert st.FAILED not in RetryPolicy.parse(2).on, "an explicit number retries conditions, not the method's error"


class Refusing(LocalScheduler):
    """A local scheduler that refuses every job (as a full cluster queue would)."""

    def submit(self, submissions: Sequence[Submission]) -> list[Refusal]:
        return [Refusal(s.job_id, "queue is full") for s in submissions]


def test_a_job_the_scheduler_refused_is_never_retried(lab: tuple[Engine, str]) -> None:
    engine, file_hash = lab
    refusing = Engine(engine.home, engine.store, Refusing(engine.home, engine.store))
    retry = {"attempts": 3, "on": ["F"]}
    [result] = refusing.simulate_jobs([_config(file_hash)], options=SubmitOptions.of(retry=retry)).results
    assert (result.outcome, result.new_status) == ("refused", st.FAILED)
    [record] = engine.store.get_jobs([result.job_id or ""])
    assert (record.status, record.attempt) == (st.FAILED, 1) and "queue is full" in (record.error or "")
