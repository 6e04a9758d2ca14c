"""Benchmark: N tiny jobs end to end (submit, run, results back) on a local Slurm, four ways.

    python bench/slurm.py [--jobs 200] [--pack 20] [--only abcd]

(a) one ``sbatch`` per job and one ``squeue -j`` per unfinished job per poll round: how a job-at-a-time
    scheduler (the seed's way) submits and watches; (b) submitit's ``map_array`` (one array, result pickles);
(c) ours: ``simulate_jobs`` with the Slurm scheduler (arrays, one squeue per poll); (d) ours with ``pack``.
Every variant runs the same payload per job: the runner on a "Simulated Workload" task (a Python method that
returns at once), so the differences are submission, scheduling and status overheads.

For the packed variant it also prints the median gap, inside one array task, between a job's end and its
packmate's start, as the runner recorded them: what running the next job costs the runner (no interpreter
starts for it: the runner runs a task's jobs one after another in its one process).

Needs a running local Slurm (``scripts/local-slurm.sh start``; this script starts it when it is not up and
stops it afterwards) and the ``bench`` extra (submitit). Slurm starts tasks about once a second per free
CPU, so the node's CPU count (``DSHPC_SLURM_CPUS``) bounds every variant; the figures printed say which.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dshpc_jupyter.domain import status as st
from dshpc_jupyter.domain.methods import load_method
from dshpc_jupyter.domain.models import JobRecord
from dshpc_jupyter.examples import data_files, methods_dir
from dshpc_jupyter.schedulers.base import build_task
from dshpc_jupyter.schedulers.runner import Task, read_result, run_task, write_manifest
from dshpc_jupyter.schedulers.slurm_cli import STATE_CODES
from dshpc_jupyter.service.engine import Engine
from dshpc_jupyter.service.factory import open_engine

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "local-slurm.sh"
POLL_S = 1.0
TIMEOUT_S = 900.0


def configs(engine: Engine, count: int, salt: str) -> list[dict[str, Any]]:
    """``count`` distinct tiny jobs (a fresh ``salt`` per variant, so none is served from another's cache)."""
    file_hash = engine.upload_file(f"bench {salt}\n".encode()).file_hash
    return [
        {"file_hash": file_hash, "method_name": "Simulated Workload", "parameters": {"seconds": i / 1e6}}
        for i in range(count)
    ]


def new_engine(root: Path, name: str, **options: Any) -> Engine:
    engine = open_engine(root / name, "slurm", **options)
    engine.register_method(methods_dir())
    for path in data_files():
        engine.upload_file(path)
    return engine


def tasks_for(engine: Engine, count: int, salt: str) -> list[Task]:
    """The runner tasks our scheduler would build for those jobs, for the variants that are not ours."""
    method = load_method(methods_dir() / "simulated_workload")
    engine.register_method(methods_dir() / "simulated_workload")
    tasks = []
    for i, config in enumerate(configs(engine, count, salt)):
        parameters = {"seconds": config["parameters"]["seconds"], "memory_mb": 0, "exit_code": 0}
        job_id = f"{salt}-{i:05d}"
        task = build_task(engine.home, job_id, config["file_hash"], method.function_hash, method.spec, parameters)
        tasks.append(task)
    return tasks


def one_sbatch_per_job(root: Path, count: int) -> tuple[float, float]:
    engine = new_engine(root, "per-job")
    tasks = tasks_for(engine, count, "a")
    start = time.perf_counter()
    pending: dict[str, Task] = {}
    for task in tasks:
        manifest = Path(task.workspace) / "task.json"
        manifest.parent.mkdir(parents=True, exist_ok=True)
        write_manifest(manifest, [[task]])
        out = subprocess.run(
            ["sbatch", "--parsable", "--job-name=bench-a", "--time=5", "--mem=1G", f"--output={manifest}.log",
             f"--wrap=exec {sys.executable} -m dshpc_jupyter.schedulers.runner {manifest}"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        pending[out.stdout.strip()] = task
    submitted = time.perf_counter() - start
    deadline = time.monotonic() + TIMEOUT_S
    while pending and time.monotonic() < deadline:
        time.sleep(POLL_S)
        for slurm_id in list(pending):
            state = subprocess.run(["squeue", "-h", "-t", "all", "-j", slurm_id, "-o", "%T"],
                                   capture_output=True, text=True).stdout.strip()  # fmt: skip
            if st.is_final(STATE_CODES.get(state)) and read_result(Path(pending[slurm_id].workspace)):
                del pending[slurm_id]
    elapsed = time.perf_counter() - start
    engine.close()
    assert not pending, f"{len(pending)} jobs unfinished"
    return submitted, elapsed


def submitit_map_array(root: Path, count: int) -> tuple[float, float]:
    import submitit

    engine = new_engine(root, "submitit")
    tasks = tasks_for(engine, count, "b")
    executor = submitit.SlurmExecutor(folder=root / "submitit" / "%j", python=sys.executable)
    # submitit asks for USR2 90 s before the limit, which Slurm may send up to 60 s early: give it room.
    executor.update_parameters(time=5, mem="1G", array_parallelism=256, job_name="bench-b")
    start = time.perf_counter()
    jobs = executor.map_array(run_task, tasks)
    submitted = time.perf_counter() - start
    results = [job.result() for job in jobs]
    elapsed = time.perf_counter() - start
    engine.close()
    assert all(r.status == st.COMPLETED for r in results), {r.status for r in results}
    return submitted, elapsed


def ours(root: Path, count: int, pack: int) -> tuple[float, float]:
    engine = new_engine(root, f"ours-pack-{pack}", pack=pack)
    batch = configs(engine, count, f"ours-{pack}")
    start = time.perf_counter()
    response = engine.simulate_jobs(batch)
    submitted = time.perf_counter() - start
    ids = [r.job_id for r in response.results if r.job_id]
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        records = engine.job_statuses(ids)
        if all(st.is_final(r.status) for r in records):
            break
        time.sleep(0.2)
    elapsed = time.perf_counter() - start
    engine.close()
    assert {r.status for r in records} == {st.COMPLETED}, {r.status for r in records}
    if pack > 1:
        print(f"  pack={pack}: median gap between packmates in a task {packmate_gap(records) * 1e3:.1f} ms")
    return submitted, elapsed


def packmate_gap(records: list[JobRecord]) -> float:
    """The median time from a job's end to the start of the next job of its array task."""
    by_task: dict[str | None, list[JobRecord]] = {}
    for record in records:
        by_task.setdefault(record.scheduler_id, []).append(record)
    gaps = []
    for mates in by_task.values():
        ordered = sorted(mates, key=lambda r: r.started_at or datetime.min.replace(tzinfo=UTC))
        for done, following in itertools.pairwise(ordered):
            if done.finished_at and following.started_at:
                gaps.append((following.started_at - done.finished_at).total_seconds())
    return statistics.median(gaps) if gaps else float("nan")


def cluster_cpus() -> str:
    out = subprocess.run(["sinfo", "-h", "-o", "%c"], capture_output=True, text=True)
    return out.stdout.strip() or "?"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--pack", type=int, default=20)
    parser.add_argument("--only", default="abcd", help="the variants to run, by letter (ratios need all four)")
    args = parser.parse_args()
    started = subprocess.run([str(SCRIPT), "status"], capture_output=True).returncode != 0
    if started:
        subprocess.run([str(SCRIPT), "start"], check=True)
    conf = subprocess.check_output([str(SCRIPT), "env"], text=True).split("=", 1)[1].strip()
    os.environ.setdefault("SLURM_CONF", conf)
    variants: list[tuple[str, Callable[[Path], tuple[float, float]]]] = [
        ("(a) one sbatch per job", lambda root: one_sbatch_per_job(root, args.jobs)),
        ("(b) submitit map_array", lambda root: submitit_map_array(root, args.jobs)),
        ("(c) ours, arrays", lambda root: ours(root, args.jobs, 1)),
        (f"(d) ours, pack={args.pack}", lambda root: ours(root, args.jobs, args.pack)),
    ]
    print(f"{args.jobs} tiny jobs end to end on a local Slurm ({cluster_cpus()} CPUs, poll every {POLL_S:g} s)")
    print(f"  {'variant':<26} {'submit':>8} {'end to end':>11}")
    times: dict[str, float] = {}
    submits: dict[str, float] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="dshpc-bench-slurm-") as tmp:
            for label, run in variants:
                if label[1] not in args.only:
                    continue
                submits[label], times[label] = run(Path(tmp))
                print(f"  {label:<26} {submits[label]:7.2f} s {times[label]:9.1f} s", flush=True)
    finally:
        if started:
            subprocess.run([str(SCRIPT), "stop"], check=False)
    if len(times) < len(variants):
        return 0
    a, b, c, d = times.values()
    print(f"end to end: (a)/(c) = {a / c:.1f}x  (a)/(d) = {a / d:.1f}x  (b)/(c) = {b / c:.1f}x  (b)/(d) = {b / d:.1f}x")
    sa, sb, sc, sd = submits.values()
    print(f"submission: (a)/(c) = {sa / sc:.0f}x  (a)/(d) = {sa / sd:.0f}x  (b)/(c) = {sb / sc:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
