"""The Slurm scheduler against a real single-node Slurm (scripts/local-slurm.sh, started once per session)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support import SLURM_MAX_ARRAY_SIZE, wait_for_jobs, wait_until, write_method

from dshpc_jupyter.domain import status as st
from dshpc_jupyter.domain.errors import DshpcError, SchedulerError
from dshpc_jupyter.domain.models import JobRecord
from dshpc_jupyter.domain.retries import SubmitOptions
from dshpc_jupyter.examples import data_files, methods_dir
from dshpc_jupyter.schedulers.base import Claim
from dshpc_jupyter.schedulers.local import stop_worker
from dshpc_jupyter.schedulers.runner import read_result
from dshpc_jupyter.schedulers.slurm import SlurmOptions, SlurmScheduler
from dshpc_jupyter.schedulers.slurm_cli import SlurmCommandError, run
from dshpc_jupyter.service.engine import Engine
from dshpc_jupyter.service.factory import open_engine

SLEEPER = "import json, sys, time\np = json.load(open(sys.argv[2]))\ntime.sleep(p['seconds'])\nprint(json.dumps(p))\n"
SLEEP_PARAMS = [{"name": "seconds", "type": "number", "default": 0}]

EngineFactory = Callable[..., Engine]


@pytest.fixture
def slurm_engine(local_slurm: Path, home: Path, tmp_path: Path) -> Iterator[EngineFactory]:
    """Opens engines on ``home`` with the Slurm scheduler (options as keyword arguments); the first one gets
    the example methods, a sleeper and a failing method; Slurm jobs still running at the end are cancelled."""
    opened: list[Engine] = []
    methods = tmp_path / "methods"
    write_method(methods, "Sleeper", SLEEPER, parameters=SLEEP_PARAMS)
    write_method(methods, "Fails", "import sys\nprint('bad input', file=sys.stderr)\nsys.exit(3)\n")

    def factory(**options: Any) -> Engine:
        engine = open_engine(home, "slurm", **{"poll_interval": 0.2, **options})
        if not opened:
            engine.register_method(methods_dir())
            engine.register_method(methods)
            for path in data_files():
                engine.upload_file(path)
        opened.append(engine)
        return engine

    yield factory
    if opened:
        engine = factory()
        active = [job.job_id for job in engine.store.active_jobs("slurm")]
        if active:
            engine.cancel(active)
        for engine in opened:
            engine.close()


def hashes(engine: Engine) -> dict[str, str]:
    return {f.filename or "": f.file_hash for f in engine.list_files()}


def sleeper(engine: Engine, seconds: float) -> dict[str, Any]:
    return {"file_hash": hashes(engine)["hello.txt"], "method_name": "Sleeper", "parameters": {"seconds": seconds}}


def squeue_states() -> dict[str, str]:
    out = subprocess.run(["squeue", "-h", "-r", "-t", "all", "-o", "%i %T"], capture_output=True, text=True, check=True)
    return dict(line.split() for line in out.stdout.splitlines())


def submit(engine: Engine, configs: list[dict[str, Any]], options: SubmitOptions | None = None) -> list[str]:
    response = engine.simulate_jobs(configs, options=options)
    ids = [r.job_id for r in response.results]
    assert all(ids), response.results
    return [i for i in ids if i]


def wait_status(engine: Engine, job_ids: list[str], status: str, timeout: float = 60) -> list[JobRecord]:
    def reached() -> bool:
        return all(r.status == status for r in engine.job_statuses(job_ids))

    wait_until(reached, timeout=timeout, what=f"jobs to reach {status}")
    return engine.job_statuses(job_ids)


def test_mixed_batch_gives_the_same_results_as_the_local_scheduler(slurm_engine: EngineFactory, tmp_path: Path) -> None:
    engines = {"slurm": slurm_engine(), "local": open_engine(tmp_path / "local-home")}
    local = engines["local"]
    local.register_method(methods_dir())
    local.register_method(tmp_path / "methods")
    for path in data_files():
        local.upload_file(path)
    h = hashes(local)
    cached = {"file_hash": h["poem.txt"], "method_name": "Word Count (bash)"}
    batch = [
        cached,
        {"file_hash": h["poem.txt"], "method_name": "Example Python Method", "parameters": {"uppercase": True}},
        {"file_hash": h["hello.txt"], "method_name": "Text Statistics"},
        {"file_hash": h["hello.txt"], "method_name": "Fails"},
        {"file_hash": h["hello.txt"], "method_name": "No Such Method"},
        {"file_hash": h["poem.txt"], "method_name": "Word Count (bash)"},
    ]
    seen: dict[str, Any] = {}
    try:
        for name, engine in engines.items():
            wait_for_jobs(engine, submit(engine, [cached]))
            response = engine.simulate_jobs(batch)
            ids = [r.job_id for r in response.results if r.job_id]
            records = {r.job_id: r for r in wait_for_jobs(engine, list(dict.fromkeys(ids)))}
            seen[name] = (
                response.model_dump(exclude={"results", "batch_id"}),
                [(r.outcome, r.message, r.new_status, r.old_status, r.output) for r in response.results],
                [(records[i].status, records[i].output, records[i].exit_code, records[i].error) for i in ids],
            )
            assert {r.scheduler for r in records.values()} == {name}
    finally:
        local.close()
        stop_worker(local.home)
    assert seen["slurm"] == seen["local"]
    statistics, results, finals = seen["slurm"]
    assert statistics["completed_jobs"] == 2 and statistics["failed_submissions"] == 1
    assert [r[0] for r in results] == ["cached", "new", "new", "new", "invalid", "cached"]
    assert [f[0] for f in finals] == ["CD", "CD", "CD", "F", "CD"]
    assert finals[3][2] == 3 and "bad input" in finals[3][3]


def test_jobs_over_their_time_limit_end_to_whoever_stops_them(slurm_engine: EngineFactory) -> None:
    """The runner stops a job at its own (sub-minute) limit; Slurm stops a task at the cluster's limit, and
    Slurm's TIMEOUT wins over the ``CA`` the runner writes when Slurm's SIGTERM reaches it."""
    engine = slurm_engine()
    write_method(engine.home.root / "extra", "Short Fuse", SLEEPER, parameters=SLEEP_PARAMS,
                 resources={"time": "0:02"})  # fmt: skip
    engine.register_method(engine.home.root / "extra")
    by_runner = submit(engine, [{**sleeper(engine, 60), "method_name": "Short Fuse"}])
    capped = slurm_engine(sbatch_args=["--time=1"])
    by_slurm = submit(capped, [sleeper(engine, 400)])
    [runner_record] = wait_for_jobs(engine, by_runner, timeout=60)
    assert runner_record.status == st.TIMEOUT and "time limit of 2 s" in (runner_record.error or "")
    [slurm_record] = wait_for_jobs(capped, by_slurm, timeout=200)
    assert slurm_record.status == st.TIMEOUT
    assert "TIMEOUT" in (slurm_record.error or "")
    # What the runner saw depends on which got Slurm's SIGTERM first: the runner (it stops the method: CA, with the
    # method's own exit, 0 or -15 as it died of the stop) or the method alone (F, -15); Slurm's verdict wins above.
    result = read_result(engine.home.workspace(by_slurm[0]))
    assert result is not None
    assert (result.status, result.exit_code) in {(st.CANCELLED, 0), (st.CANCELLED, -15), (st.FAILED, -15)}


def test_scancel_stops_exactly_the_cancelled_array_tasks(slurm_engine: EngineFactory) -> None:
    engine = slurm_engine(throttle=1)
    running, queued, kept = submit(engine, [sleeper(engine, 60), sleeper(engine, 61), sleeper(engine, 1)])
    wait_status(engine, [running], st.RUNNING)
    records = {r.job_id: r for r in engine.job_statuses([running, queued, kept])}
    assert records[queued].status == st.PENDING
    response = engine.cancel([running, queued])
    assert set(response.cancelled) == {running, queued}
    assert engine.store.get_jobs([queued])[0].status == st.CANCELLED  # never started: at once
    [done] = wait_for_jobs(engine, [kept])
    assert done.status == st.COMPLETED
    final = {r.job_id: r for r in wait_for_jobs(engine, [running, queued])}
    assert final[running].status == st.CANCELLED and final[queued].status == st.CANCELLED
    states = squeue_states()
    assert states[records[running].scheduler_id or ""] == "CANCELLED"
    assert states.get(records[queued].scheduler_id or "") is None  # a pending task scancelled leaves the queue
    assert not (engine.home.workspace(queued) / "params.json").exists()  # and never ran
    kept_task = records[kept].scheduler_id or ""
    wait_until(lambda: squeue_states()[kept_task] == "COMPLETED", timeout=30, what="the kept task to complete")


def test_a_pending_task_scancelled_outside_dshpc_ends_cancelled(slurm_engine: EngineFactory) -> None:
    engine = slurm_engine(throttle=1, result_grace=0.5)
    running, queued = submit(engine, [sleeper(engine, 60), sleeper(engine, 0)])
    wait_status(engine, [running], st.RUNNING)
    subprocess.run(["scancel", engine.store.get_jobs([queued])[0].scheduler_id or ""], check=True)
    [record] = wait_for_jobs(engine, [queued])
    assert record.status == st.CANCELLED  # squeue may show the task CANCELLED, or have dropped it altogether
    assert "CANCELLED" in (record.error or "") or "removed from the Slurm queue" in (record.error or "")
    engine.cancel([running])
    assert [r.status for r in wait_for_jobs(engine, [running])] == [st.CANCELLED]


def test_a_batch_larger_than_max_array_size_is_split_into_arrays(slurm_engine: EngineFactory) -> None:
    engine = slurm_engine()
    count = 2 * SLURM_MAX_ARRAY_SIZE + 3
    ids = submit(engine, [sleeper(engine, i / 1000) for i in range(count)])
    records = wait_for_jobs(engine, ids, timeout=120)
    assert {r.status for r in records} == {st.COMPLETED}
    tasks = [(r.scheduler_id or "").split("_") for r in records]
    arrays = sorted({array for array, _ in tasks})
    assert len(arrays) == 3
    assert max(int(index) for _, index in tasks) == SLURM_MAX_ARRAY_SIZE - 1
    assert [r.output for r in records] == [f'{{"seconds": {i / 1000}}}\n' for i in range(count)]


def test_pack_runs_several_jobs_in_one_array_task(slurm_engine: EngineFactory) -> None:
    engine = slurm_engine(pack=4)
    ids = submit(engine, [sleeper(engine, i / 100) for i in range(10)])
    records = wait_for_jobs(engine, ids, timeout=60)
    assert [r.status for r in records] == [st.COMPLETED] * 10
    tasks = [r.scheduler_id for r in records]
    assert len(set(tasks)) == 3 and [tasks.count(t) for t in dict.fromkeys(tasks)] == [4, 4, 2]
    assert [r.output for r in records] == [f'{{"seconds": {i / 100}}}\n' for i in range(10)]


def test_cancelling_one_packed_job_leaves_its_packmates_running(slurm_engine: EngineFactory) -> None:
    engine = slurm_engine(pack=2)
    first, second = submit(engine, [sleeper(engine, 60), sleeper(engine, 1.5)])
    wait_status(engine, [first], st.RUNNING)
    engine.cancel([first])
    records = {r.job_id: r for r in wait_for_jobs(engine, [first, second], timeout=60)}
    assert records[first].status == st.CANCELLED
    assert records[second].status == st.COMPLETED and records[second].output == '{"seconds": 1.5}\n'


def test_a_failing_squeue_changes_no_job_state(
    slurm_engine: EngineFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = slurm_engine(poll_interval=0)
    ids = submit(engine, [sleeper(engine, 1), sleeper(engine, 1.5)])
    wait_status(engine, ids, st.RUNNING)
    broken = tmp_path / "broken-bin"
    broken.mkdir()
    (broken / "squeue").write_text("#!/bin/sh\necho 'squeue: error: Socket timed out on send/recv' >&2\nexit 1\n")
    (broken / "squeue").chmod(0o755)
    monkeypatch.setenv("PATH", f"{broken}:{os.environ['PATH']}")
    wait_until(lambda: all(read_result(engine.home.workspace(i)) for i in ids), timeout=30, what="results")
    time.sleep(1)
    for _ in range(5):
        assert [r.status for r in engine.job_statuses(ids)] == [st.RUNNING, st.RUNNING]
    monkeypatch.undo()
    assert [r.status for r in wait_for_jobs(engine, ids)] == [st.COMPLETED, st.COMPLETED]


def test_a_restarted_engine_picks_up_running_slurm_jobs(slurm_engine: EngineFactory) -> None:
    first = slurm_engine()
    ids = submit(first, [sleeper(first, 2.5), sleeper(first, 3.5)])
    wait_status(first, ids, st.RUNNING)
    first.close()
    second = slurm_engine()
    records = wait_for_jobs(second, ids)
    assert [r.output for r in records] == ['{"seconds": 2.5}\n', '{"seconds": 3.5}\n']


def test_a_runner_that_vanishes_without_a_result_is_node_failed(slurm_engine: EngineFactory) -> None:
    engine = slurm_engine(result_grace=1)
    [job_id] = submit(engine, [sleeper(engine, 60)], SubmitOptions.of(retry=0))
    wait_status(engine, [job_id], st.RUNNING)
    workspace = str(engine.home.workspace(job_id))
    wait_until(lambda: _pids_mentioning(workspace), timeout=20, what="the method to start")
    for pid in _pids_mentioning(str(engine.home.root / "slurm")) + _pids_mentioning(workspace):
        with contextlib.suppress(ProcessLookupError):  # in the sandbox, the method dies with its runner
            os.kill(pid, 9)
    [record] = wait_for_jobs(engine, [job_id], timeout=60)
    assert record.status == st.NODE_FAIL and "without a result" in (record.error or "")


def _pids_mentioning(text: str) -> list[int]:
    """Processes whose command line mentions ``text`` (the runner names its manifest, the method its params)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_transient_sbatch_errors_are_retried(
    slurm_engine: EngineFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flaky = tmp_path / "flaky-bin"
    flaky.mkdir()
    counter = tmp_path / "sbatch-calls"
    real = subprocess.run(["sh", "-c", "command -v sbatch"], capture_output=True, text=True).stdout.strip()
    (flaky / "sbatch").write_text(
        f"#!/bin/sh\necho x >> {counter}\nif [ $(wc -l < {counter}) -le 2 ]; then\n"
        "  echo 'sbatch: error: Batch job submission failed: Socket timed out on send/recv operation' >&2\n"
        f"  exit 1\nfi\nexec {real} \"$@\"\n"
    )  # fmt: skip
    (flaky / "sbatch").chmod(0o755)
    monkeypatch.setenv("PATH", f"{flaky}:{os.environ['PATH']}")
    engine = slurm_engine()
    ids = submit(engine, [sleeper(engine, 0.1)])
    assert len(counter.read_text().splitlines()) == 3
    assert [r.status for r in wait_for_jobs(engine, ids)] == [st.COMPLETED]


def test_a_refused_submission_fails_those_configs_with_the_reason(slurm_engine: EngineFactory) -> None:
    engine = slurm_engine()
    write_method(engine.home.root / "extra", "Nowhere", SLEEPER, parameters=SLEEP_PARAMS,
                 resources={"partition": "no-such-partition"})  # fmt: skip
    engine.register_method(engine.home.root / "extra")
    response = engine.simulate_jobs([{**sleeper(engine, 0), "method_name": "Nowhere"}, sleeper(engine, 0)])
    refused, accepted = response.results
    assert refused.outcome == "refused" and refused.new_status == st.FAILED
    assert "partition" in refused.message.lower() and refused.message.startswith("Submission failed: sbatch")
    assert response.failed_submissions == 1 and response.in_progress_jobs == 1
    assert engine.get_job(refused.job_id or "").status == st.FAILED
    assert [r.status for r in wait_for_jobs(engine, [accepted.job_id or ""])] == [st.COMPLETED]


def test_jobs_orphaned_between_commit_and_submit_are_submitted_after_the_lease(
    slurm_engine: EngineFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    dying = slurm_engine()
    monkeypatch.setattr(dying.scheduler, "submit", lambda submissions: [])  # the process dies right after commit
    ids = submit(dying, [sleeper(dying, 0.1), sleeper(dying, 0.2)])
    assert [r.scheduler_id for r in dying.store.get_jobs(ids)] == [None, None]
    live = slurm_engine(lease=120)
    time.sleep(0.5)
    assert [r.status for r in live.job_statuses(ids)] == [st.PENDING, st.PENDING]
    assert [r.scheduler_id for r in live.store.get_jobs(ids)] == [None, None]  # may be a live submitter's
    later = slurm_engine(lease=0.2)
    records = wait_for_jobs(later, ids)
    assert [r.output for r in records] == ['{"seconds": 0.1}\n', '{"seconds": 0.2}\n']


def test_jobs_submitted_before_their_submitter_died_are_adopted_not_resubmitted(
    slurm_engine: EngineFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    dying = slurm_engine()
    monkeypatch.setattr(dying.store, "set_scheduler_ids", lambda pairs: None)  # dies right after sbatch
    ids = submit(dying, [sleeper(dying, 0.1), sleeper(dying, 0.2)])
    [claim] = {r.scheduler_id for r in dying.store.get_jobs(ids)}  # one claim holds both
    assert (claim or "").startswith("claim:") and Claim.parse(claim) is not None
    before = squeue_states()
    recovering = slurm_engine(lease=0)
    records = wait_for_jobs(recovering, ids)
    assert [r.status for r in records] == [st.COMPLETED, st.COMPLETED]
    assert {r.scheduler_id for r in records} <= set(before)  # the tasks of the first sbatch: no second one
    assert len(squeue_states()) == len(before)


def test_bad_scheduler_options_are_refused_with_the_option_named(local_slurm: Path, home: Path) -> None:
    engine = open_engine(home)
    try:
        bad: list[tuple[dict[str, Any], str]] = [
            ({"pack": 0}, "pack"), ({"throttle": -1}, "throttle"), ({"sbatch_args": "--time=1"}, "sbatch_args"),
            ({"poll_interval": -1}, "poll_interval"),
        ]  # fmt: skip
        for options, field in bad:
            with pytest.raises(ValueError, match=f"^{field}: "):
                SlurmScheduler(engine.home, engine.store, SlurmOptions(**options))
    finally:
        engine.close()


def test_a_separate_workdir_gets_the_inputs_methods_and_workspaces(slurm_engine: EngineFactory, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    engine = slurm_engine(workdir=shared)
    config = {"file_hash": hashes(engine)["poem.txt"], "method_name": "Text Statistics"}
    [record] = wait_for_jobs(engine, submit(engine, [config]))
    assert record.status == st.COMPLETED and '"tokens": 53' in (record.output or "")
    assert (shared / "files" / config["file_hash"][:2] / config["file_hash"]).is_file()
    assert (shared / "methods" / record.function_hash / "method.json").is_file()
    assert read_result(shared / "jobs" / record.job_id[:2] / record.job_id) is not None
    assert not engine.home.workspace(record.job_id).exists()


def test_scheduler_options_come_from_the_environment_when_not_given(
    local_slurm: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """How ``serve --scheduler slurm`` and ``%dshpc_connect --scheduler slurm`` are configured."""
    engine = open_engine(home)
    try:
        monkeypatch.setenv("DSHPC_SLURM_PARTITION", "debug")
        monkeypatch.setenv("DSHPC_SLURM_PACK", "3")
        monkeypatch.setenv("DSHPC_SLURM_SBATCH_ARGS", "--time=5 '--comment=two words'")
        scheduler = SlurmScheduler(engine.home, engine.store, SlurmOptions(pack=2))
        assert (scheduler.partition, scheduler.pack) == ("debug", 2)
        assert scheduler.sbatch_args == ["--time=5", "--comment=two words"]
        monkeypatch.setenv("DSHPC_SLURM_PACK", "many")
        with pytest.raises(ValueError, match=r"^\$DSHPC_SLURM_PACK: must be a positive integer"):
            SlurmScheduler(engine.home, engine.store)
    finally:
        engine.close()


def test_a_failing_slurm_command_is_a_scheduler_error(tmp_path: Path) -> None:
    """Slurm's failures belong to the package's error family, so a caller catching ``DshpcError`` sees them."""
    assert issubclass(SlurmCommandError, SchedulerError) and issubclass(SlurmCommandError, DshpcError)
    with pytest.raises(SchedulerError, match=r"^no-such-slurm-command not found on PATH") as caught:
        run(["no-such-slurm-command"])
    assert caught.value.transient is False and caught.value.status_code == 503
    failing = tmp_path / "squeue"
    failing.write_text("#!/bin/sh\necho 'squeue: error: Socket timed out on send/recv operation' >&2\nexit 1\n")
    failing.chmod(0o755)
    with pytest.raises(SlurmCommandError, match="Socket timed out") as caught:
        run([str(failing)])
    assert caught.value.transient is True


def test_a_method_cell_registered_and_swept_on_slurm(local_slurm: Path, home: Path) -> None:
    """``%%dshpc_method``'s registration path on the Slurm scheduler: the cell's script runs as an array task."""
    from dshpc_jupyter.front.batch import Batch
    from dshpc_jupyter.front.connection import Connection, connect_async
    from dshpc_jupyter.jupyter.method_cell import parse_cell, register_cell

    cell = "---\nname: Cell On Slurm\nparameters: [{name: n, type: integer, default: 1}]\n---\n" + (
        "import json, os, sys\nn = json.load(open(sys.argv[2]))['n']\n"
        "print(json.dumps({'doubled': n * 2, 'slurm': bool(os.environ.get('SLURM_JOB_ID'))}))\n"
    )
    connection = Connection(connect_async(home=home, scheduler="slurm", poll_interval=0.2))
    try:
        method = register_cell(connection, parse_cell(cell))
        assert register_cell(connection, parse_cell(cell)).function_hash == method.function_hash
        poem = connection.upload_files([p for p in data_files() if p.name == "poem.txt"])[0]
        configs = [{"method_name": "Cell On Slurm", "file_hash": poem, "parameters": {"n": n}} for n in (1, 2)]
        batch = Batch.submit(configs, connection=connection, poll=0.2).wait(120)
        outputs = batch.outputs()
        assert outputs["doubled"].tolist() == [2, 4] and outputs["slurm"].tolist() == [True, True]
        assert all(job.scheduler == "slurm" for job in connection.list_jobs())
    finally:
        connection.close()
