"""The runner's own CPU per tiny job, in-process: ``run_task`` of a no-op bash job, job after job, as a slot
runner runs them, against ``subprocess.run`` of the same command in the same process (the baseline).

The machine's load moves wall times (bench/local.py) far more than it moves this: the CPU this process spends
per job on the workspace's files, the environment and the supervision, beyond starting the method.

Run: ``python bench/runner_cpu.py [--jobs 500]`` (no sandbox: ``DSHPC_SANDBOX`` is set to ``off`` here).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from dshpc_jupyter.schedulers import sandbox
from dshpc_jupyter.schedulers.runner import Task, run_task


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
    args = parser.parse_args()
    os.environ["DSHPC_SANDBOX"] = "off"  # read when a job starts
    sandbox.prepare()
    root = Path(tempfile.mkdtemp())
    script, params = root / "noop.sh", root / "params.json"
    script.write_text("#!/bin/bash\ntrue\n", encoding="utf-8")
    params.write_text('{"i": 0}', encoding="utf-8")
    environ, rounds = dict(os.environ), iter(range(10**9))

    def bare(i: int) -> None:
        subprocess.run(["/bin/bash", str(script), str(params)], stdin=subprocess.DEVNULL, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip

    def ours(i: int) -> None:
        workspace = root / "jobs" / f"{next(rounds)}"
        workspace.mkdir(parents=True)
        task = Task(job_id=workspace.name, workspace=str(workspace), command="bash", script=str(script),
                    input_file="", method_dir=str(root), method_name="Noop", parameters={"i": i})  # fmt: skip
        run_task(task, recorded=True, environ=environ)

    baseline, measured = per_job(bare, args.jobs), per_job(ours, args.jobs)
    print(f"{args.jobs} no-op bash jobs, CPU of this process per job (best of 3)")
    print(f"subprocess.run   {baseline:6.2f} ms  1x")
    print(f"run_task         {measured:6.2f} ms  {measured / baseline:.1f}x  (+{measured - baseline:.2f} ms per job)")


if __name__ == "__main__":
    main()
