"""The runner's own CPU per tiny job, in-process: ``run_task`` of a no-op bash job, job after job, as a slot
runner runs them, against ``subprocess.run`` of the same command in the same process (the baseline).

The machine's load moves wall times (bench/local.py) far more than it moves this: the CPU this process spends
per job on the workspace's files, the environment and the supervision, beyond starting the method.

``--parts`` also says where ``run_task``'s time goes: the CPU of this thread in each of the steps it calls (each
wrapped in a timer), per job, with a stored input file to check as a job's would be.

Run: ``python bench/runner_cpu.py [--jobs 500] [--parts]`` (no sandbox: ``DSHPC_SANDBOX`` is set to ``off`` here;
the workspaces go to a tmpfs when there is one, as bench/local.py's).
"""

from __future__ import annotations

import argparse
import collections
import functools
import hashlib
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from timing import tmpfs_dir

from dshpc_jupyter.schedulers import runner, sandbox
from dshpc_jupyter.schedulers.runner import Task, run_task

#: The steps of ``run_task`` timed by ``--parts``: (module or class, attribute).
PARTS = [
    *((runner, name) for name in ("_make_dirs", "write_file", "_stored_inputs", "_stage_inputs", "_argv",
                                  "collect_outputs", "write_json_atomic", "record_method", "process_identity",
                                  "_supervise")),
    (sandbox, "job_environment"), (sandbox, "input_mismatch"), (sandbox, "confine"),
    (runner.subprocess, "Popen"), (runner.Streams, "create"), (runner.Streams, "read"),
]  # fmt: skip


def timed_parts() -> collections.Counter[str]:
    """Wrap each of ``PARTS`` so that its CPU (this thread's, in ns) adds up under its name."""
    spent: collections.Counter[str] = collections.Counter()

    def timer(name: str, step: Callable[..., object]) -> Callable[..., object]:
        @functools.wraps(step)
        def timed(*args: object, **kwargs: object) -> object:
            start = time.thread_time_ns()
            try:
                return step(*args, **kwargs)
            finally:
                spent[name] += time.thread_time_ns() - start

        return timed

    for owner, name in PARTS:
        setattr(owner, name, timer(name, getattr(owner, name)))
    return spent


def per_job(run: Callable[[int], None], jobs: int) -> float:
    """CPU milliseconds of this process per job (children excluded), best of three rounds."""
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        for i in range(jobs):
            run(i)
        best = min(best, (time.process_time() - start) / jobs * 1000)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--parts", action="store_true", help="say where run_task's CPU goes")
    args = parser.parse_args()
    os.environ["DSHPC_SANDBOX"] = "off"  # read when a job starts
    sandbox.prepare()
    root = Path(tempfile.mkdtemp(dir=tmpfs_dir()))
    script, params = root / "noop.sh", root / "params.json"
    script.write_text("#!/bin/bash\ntrue\n", encoding="utf-8")
    params.write_text('{"i": 0}', encoding="utf-8")
    stored = root / hashlib.sha256(b"input\n").hexdigest()
    stored.write_bytes(b"input\n")
    environ, rounds = dict(os.environ), iter(range(10**9))

    def bare(i: int) -> None:
        subprocess.run(["/bin/bash", str(script), str(params)], stdin=subprocess.DEVNULL, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip

    def ours(i: int) -> None:
        workspace = root / "jobs" / f"{next(rounds)}"
        workspace.mkdir(parents=True)
        task = Task(job_id=workspace.name, workspace=str(workspace), command="bash", script=str(script),
                    input_file=str(stored), method_dir=str(root), method_name="Noop", parameters={"i": i})  # fmt: skip
        run_task(task, recorded=True, environ=environ)

    baseline, measured = per_job(bare, args.jobs), per_job(ours, args.jobs)
    print(f"{args.jobs} no-op bash jobs, CPU of this process per job (best of 3)")
    print(f"subprocess.run   {baseline:6.2f} ms  1x")
    print(f"run_task         {measured:6.2f} ms  {measured / baseline:.1f}x  (+{measured - baseline:.2f} ms per job)")
    if args.parts:
        spent = timed_parts()
        start = time.thread_time_ns()
        for i in range(args.jobs):
            ours(i)
        total = (time.thread_time_ns() - start) / args.jobs / 1000
        print(f"\nrun_task's steps, CPU of this thread per job (of {total:.0f} us in all):")
        for name, ns in spent.most_common():
            print(f"  {name:<18} {ns / args.jobs / 1000:6.1f} us")


if __name__ == "__main__":
    main()
