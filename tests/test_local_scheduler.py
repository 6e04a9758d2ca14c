"""The local scheduler for real: argv and environment of a job, output capture, every failure code produced by
its real condition (and resubmitted), the slot limit."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import host_pid, wait_for_jobs, wait_until, write_method

from dshpc_jupyter.domain import status as st
from dshpc_jupyter.domain.retries import SubmitOptions
from dshpc_jupyter.examples import data_files
from dshpc_jupyter.service.engine import Engine
from dshpc_jupyter.service.factory import open_engine

REPORT_ENV = """\
import json, os, sys
print("to stderr", file=sys.stderr)
names = ["JOB_WORKSPACE", "INPUT_FILE", "METHOD_DIR", "PARAMS_FILE", "METHOD_NAME"]
print(json.dumps({
    "argv": sys.argv, "cwd": os.getcwd(), "env": {n: os.environ.get(n) for n in names},
    "params": json.load(open(sys.argv[2])), "input": open(sys.argv[1]).read(),
}))
"""

BASH_ARGV = """\
#!/usr/bin/env bash
tr '\\0' '\\n' < /proc/$$/cmdline
echo "count=$#"
"""

# Behaves as its ``mode`` parameter says; records its pid so a test can find (and clean up) the process.
FAULTY = """\
import json, os, sys, time
open(os.path.join(os.environ["JOB_WORKSPACE"], "method.pid"), "w").write(str(os.getpid()))
mode = json.load(open(sys.argv[2]))["mode"]
if mode == "exit":
    print("partial output")
    print("failing on purpose", file=sys.stderr)
    sys.exit(3)
if mode == "memory":
    hoard = []
    for _ in range(25):
        hoard.append(b"x" * (16 << 20))
        time.sleep(0.02)
time.sleep(30)
"""


@pytest.fixture
def lab(home: Path, tmp_path: Path) -> Iterator[tuple[Engine, str]]:
    """An engine with test methods registered and one data file uploaded: (engine, file_hash)."""
    engine = open_engine(home)
    engine.register_method(write_method(tmp_path / "m", "Report Env", REPORT_ENV,
                                        parameters=[{"name": "n", "type": "integer", "default": 1}]))  # fmt: skip
    engine.register_method(write_method(tmp_path / "m", "Bash Argv", BASH_ARGV, command="bash", script_path="a.sh"))
    mode = {"name": "mode", "type": "string", "required": True, "choices": ["exit", "sleep", "memory"]}
    engine.register_method(
        write_method(tmp_path / "m", "Limited", FAULTY, parameters=[mode], resources={"time": "0:02", "mem": "64M"})
    )
    engine.register_method(write_method(tmp_path / "m", "Unlimited", FAULTY, parameters=[mode]))
    engine.register_method(write_method(tmp_path / "m", "No Interpreter", "", command="no-such-interpreter-xyz"))
    file_hash = engine.upload_file(data_files("hello.txt")[0]).file_hash
    yield engine, file_hash
    engine.close()


def test_job_argv_environment_and_output_capture(lab: tuple[Engine, str]) -> None:
    engine, file_hash = lab
    result = engine.simulate_jobs([{"file_hash": file_hash, "method_name": "Report Env"}]).results[0]
    [record] = wait_for_jobs(engine, [result.job_id or ""])
    assert record.status == "CD" and record.exit_code == 0
    assert record.error == "to stderr\n", "stderr becomes error"
    report = json.loads(record.output or "")
    home = engine.home
    workspace, method_dir = home.workspace(record.job_id), home.method_dir(record.function_hash)
    input_file, params_file = str(home.file_path(file_hash)), str(workspace / "params.json")
    assert report["argv"] == [str(method_dir / "main.py"), input_file, params_file]
    assert report["env"] == {
        "JOB_WORKSPACE": str(workspace), "INPUT_FILE": input_file, "METHOD_DIR": str(method_dir),
        "PARAMS_FILE": params_file, "METHOD_NAME": "Report Env",
    }  # fmt: skip
    assert report["cwd"] == str(workspace)
    assert report["params"] == {"n": 1}, "the canonical parameters, defaults filled"
    assert report["input"] == data_files("hello.txt")[0].read_text()
    assert record.started_at is not None and record.finished_at is not None
    assert record.created_at <= record.started_at <= record.finished_at


def test_command_script_input_params_argv_for_a_shell_method(lab: tuple[Engine, str]) -> None:
    engine, file_hash = lab
    result = engine.simulate_jobs([{"file_hash": file_hash, "method_name": "Bash Argv"}]).results[0]
    [record] = wait_for_jobs(engine, [result.job_id or ""])
    lines = (record.output or "").splitlines()
    workspace, method_dir = engine.home.workspace(record.job_id), engine.home.method_dir(record.function_hash)
    assert Path(lines[0]).name == "bash"
    assert lines[1:] == [str(method_dir / "a.sh"), str(engine.home.file_path(file_hash)),
                         str(workspace / "params.json"), "count=2"]  # fmt: skip


def test_missing_interpreter_fails_the_job_with_a_reason(lab: tuple[Engine, str]) -> None:
    engine, file_hash = lab
    result = engine.simulate_jobs([{"file_hash": file_hash, "method_name": "No Interpreter"}]).results[0]
    [record] = wait_for_jobs(engine, [result.job_id or ""])
    assert (record.status, record.exit_code) == ("F", 127)
    assert "command 'no-such-interpreter-xyz' of method 'No Interpreter' not found on PATH" in (record.error or "")


def _method_pid(engine: Engine, job_id: str) -> int | None:
    pid_file = engine.home.workspace(job_id) / "method.pid"
    wait_until(lambda: pid_file.is_file() and pid_file.read_text().isdigit(), 20, "the method to start")
    return host_pid(int(pid_file.read_text()), engine.home.workspace(job_id))


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X")
    except OSError:
        return False


@pytest.mark.parametrize(
    ("code", "method", "mode", "reason"),
    [
        ("F", "Limited", "exit", "failing on purpose"),
        ("TO", "Limited", "sleep", "time limit of 2 s reached: process group stopped"),
        ("OOM", "Limited", "memory", "memory limit of 64 MiB exceeded ("),
        ("CA", "Unlimited", "sleep", "cancelled: process group stopped"),
        ("NF", "Unlimited", "sleep", "runner lost"),
    ],
)
def test_failure_code_from_its_real_condition_then_resubmission(
    lab: tuple[Engine, str], code: str, method: str, mode: str, reason: str
) -> None:
    engine, file_hash = lab
    config = {"file_hash": file_hash, "method_name": method, "parameters": {"mode": mode}}
    no_retry = SubmitOptions.of(retry=0)  # the code the condition produces, not what a retry makes of it
    job_id = engine.simulate_jobs([config], options=no_retry).results[0].job_id or ""
    pid = _method_pid(engine, job_id)
    if code == "CA":
        assert engine.cancel([job_id]).cancelled == [job_id]
    elif code == "NF":
        wait_until(lambda: engine.job_statuses([job_id])[0].status == "R", 20, "the job to be recorded running")
        [running] = engine.job_statuses([job_id])
        runner_pid = int((running.scheduler_id or "").split(":")[0])
        os.kill(runner_pid, signal.SIGKILL)
    [record] = wait_for_jobs(engine, [job_id], timeout=20)
    assert record.status == code
    assert reason in (record.error or "")
    assert record.finished_at is not None
    if code == "F":
        assert (record.exit_code, record.output) == (3, "partial output\n")
    # Whatever ended the job, its method does not run on: for NF the worker stops the orphaned process group.
    wait_until(lambda: pid is None or not _alive(pid), 10, "the method's process to end")

    again = engine.simulate_jobs([config])
    [result] = again.results
    assert result.message == "New job submitted after previous failure"
    assert (result.outcome, result.old_status, result.new_status) == ("resubmitted", code, "PD")
    assert result.job_id not in (None, job_id)
    assert (again.successful_submissions, again.resubmitted_jobs, again.in_progress_jobs) == (1, 1, 1)
    assert again.completed_jobs + again.in_progress_jobs + again.failed_submissions == again.total_jobs
    assert engine.cancel([result.job_id or ""]).cancelled == [result.job_id]


def test_cancel_just_after_start_is_a_cancel(lab: tuple[Engine, str]) -> None:
    """A cancel that reaches a runner before it has set up its signal handlers is still ``CA``, not ``NF``."""
    engine, file_hash = lab
    config = {"file_hash": file_hash, "method_name": "Unlimited", "parameters": {"mode": "sleep"}}
    for _ in range(3):
        job_id = engine.simulate_jobs([config]).results[0].job_id or ""
        deadline = time.monotonic() + 20
        while engine.job_statuses([job_id])[0].status != st.RUNNING:  # cancel as soon as the runner exists
            assert time.monotonic() < deadline, "the job did not start"
            time.sleep(0.002)
        engine.cancel([job_id])
        [record] = wait_for_jobs(engine, [job_id], timeout=20)
        assert record.status == "CA", record.error


def test_at_most_slots_jobs_run_at_once(home: Path, tmp_path: Path) -> None:
    engine = open_engine(home, slots=2)
    try:
        index = {"name": "i", "type": "integer", "default": 0}
        engine.register_method(write_method(tmp_path, "Sleeper", "import time\ntime.sleep(30)\n", parameters=[index]))
        file_hash = engine.upload_file(b"x").file_hash
        response = engine.simulate_jobs(
            [{"file_hash": file_hash, "method_name": "Sleeper", "parameters": {"i": i}} for i in range(3)]
        )
        ids = [r.job_id or "" for r in response.results]

        def statuses() -> list[str]:
            return [r.status for r in engine.job_statuses(ids)]

        wait_until(lambda: statuses()[:2] == ["R", "R"], 30, "two jobs to run together")
        time.sleep(1.0)
        assert statuses() == ["R", "R", "PD"], "the third waits for a free slot"
        engine.cancel(ids[:1])
        wait_until(lambda: statuses() == ["CA", "R", "R"], 30, "the third to take the freed slot")
    finally:
        engine.close()


def _worker_processes(home: Path) -> list[int]:
    """Live local-worker processes serving ``home`` (read from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"dshpc_jupyter.schedulers.local_worker" in argv and str(home).encode() in argv and _alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def test_one_worker_is_started_even_when_asked_again_while_it_starts(lab: tuple[Engine, str]) -> None:
    """A second worker racing the first for the lock could start late, after the first had stopped."""
    engine, file_hash = lab
    job_id = engine.simulate_jobs([{"file_hash": file_hash, "method_name": "Report Env"}]).results[0].job_id or ""
    engine.job_statuses([job_id])  # polling an active job makes sure a worker is alive
    # bounded wait: a process just started shows an empty cmdline until the kernel has set its arguments up
    wait_until(lambda: len(_worker_processes(engine.home.root)) == 1, 10, "the worker to be visible")
    wait_for_jobs(engine, [job_id])
    assert len(_worker_processes(engine.home.root)) == 1
