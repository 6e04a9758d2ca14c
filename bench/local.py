"""Tiny jobs on the local scheduler against a bare pool: 1,000 no-op Python jobs and 1,000 no-op bash jobs, 2 slots.

The baseline, measured in the same run: a ``ThreadPoolExecutor(2)`` running ``subprocess.run`` of the same
commands (the method's interpreter, its script, the input file and a parameters file). Under a sandbox
(bubblewrap, the default where it works) the jobs run wrapped in it, so the run also times the bare pool of
the same wrapped commands (``bare+sandbox``): the sandbox's own cost is not the scheduler's.

Ours is timed from the ``simulate_jobs`` call to the moment every job is recorded as ended in the store, with
the worker already running (one warm-up job of each method first). Printed per case: jobs/s and the ratio to
the bare pool, the CPU per job of everything involved (the engine's process, the worker, its runners and the
methods; descendants are reaped by this process, a subreaper, so their CPU is counted) minus the bare pool's,
and the median dispatch delay (from a slot's previous job ending to the next one starting, as the runner
records them; for the pool, between two ``subprocess.run`` calls of one thread), and the CPU per job of the
worker process alone (from ``/proc``: what the load moves least).

The home (store and workspaces) is made on a tmpfs (``/dev/shm``) unless ``--dir`` says where: a tiny job
creates eight files and directories, and on some disks what that costs depends on what the machine deleted in
the last minutes, not on the scheduler (bench/README.md: on this VM's ext4 without a journal, every file
created scans the inodes freed in the last minutes). The file system is printed; run with ``--dir`` on a disk
to see what a home there costs.

Each case runs ``--rounds`` times (3), the bare pool and ours alternately, and the median ratio is said: on a
shared machine one run's ratio moves with whatever else ran during it.

Run: ``python bench/local.py [--jobs 1000] [--slots 2] [--rounds 3] [--dir DIR]`` (``DSHPC_SANDBOX=none`` to run
without bubblewrap).
"""

from __future__ import annotations

import argparse
import ctypes
import heapq
import json
import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from timing import file_system, tmpfs_dir

from dshpc_jupyter.domain.home import Home
from dshpc_jupyter.schedulers.local import stop_worker, worker_pid
from dshpc_jupyter.schedulers.sandbox import bubblewrap, confine
from dshpc_jupyter.service.engine import Engine
from dshpc_jupyter.service.factory import open_engine
from dshpc_jupyter.store.schema import ACTIVE_SET

PR_SET_CHILD_SUBREAPER = 36
METHODS = {
    "python": ("Noop Python", "python3", "noop.py", "import sys\n"),
    "bash": ("Noop Bash", "bash", "noop.sh", "#!/bin/bash\ntrue\n"),
}


@dataclass
class Run:
    """One timed run: wall seconds, CPU seconds of everything involved, dispatch delays in seconds, and the CPU
    seconds of the worker process alone (None for the bare pool)."""

    wall: float
    cpu: float
    delays: list[float]
    worker: float | None = None


def cpu_now() -> float:
    """CPU seconds of this process and of every descendant reaped so far."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def process_cpu(pid: int | None) -> float:
    """CPU seconds of one live process so far (its own, not its children's), from ``/proc``; 0 if it has gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rpartition(")")[2].split()
    except (OSError, ValueError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def reap_orphans(timeout: float = 30.0) -> None:
    """Wait for every descendant left (runners reparented to this subreaper), so their CPU is counted."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            time.sleep(0.01)


def dispatch_delays(spans: Sequence[tuple[float, float]], slots: int, start: float) -> list[float]:
    """For each job in start order, how long after a slot freed (the earliest end not yet reused) it started."""
    free = [start] * slots
    delays = []
    for began, ended in sorted(spans):
        delays.append(max(0.0, began - heapq.heappop(free)))
        heapq.heappush(free, ended)
    return delays


def bare_pool(argv_of: Sequence[list[str]], slots: int) -> Run:
    spans: list[tuple[float, float]] = []

    def one(argv: list[str]) -> None:
        began = time.time()
        subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        spans.append((began, time.time()))

    cpu, start, wall = cpu_now(), time.time(), time.perf_counter()
    with ThreadPoolExecutor(slots) as pool:
        list(pool.map(one, argv_of))
    wall = time.perf_counter() - wall
    return Run(wall, cpu_now() - cpu, dispatch_delays(spans, slots, start))


def in_progress(conn: sqlite3.Connection) -> int:
    """How many local jobs are still in progress: read through the index of jobs in progress, so that the
    benchmark's own looks cost it little (a count over the whole table would cost this process more per look
    than a no-op job costs the scheduler)."""
    row = conn.execute(f"SELECT count(*) FROM jobs WHERE scheduler = 'local' AND status IN {ACTIVE_SET}").fetchone()
    return int(row[0])


def ours(engine: Engine, name: str, file_hash: str, jobs: int, slots: int, offset: int) -> Run:
    """Timed until the store says no job is in progress (the warm-up's has ended), read every 10 ms on one open
    connection (as a client that waits holds one: opening one per look would cost this process more than the
    looks)."""
    configs = [{"file_hash": file_hash, "method_name": name, "parameters": {"i": offset + i}} for i in range(jobs)]
    conn = sqlite3.connect(f"file:{engine.home.db_path}?mode=ro", uri=True, isolation_level=None)
    pid = worker_pid(engine.home)
    cpu, worker, start, wall = cpu_now(), process_cpu(pid), time.time(), time.perf_counter()
    ids = [r.job_id or "" for r in engine.simulate_jobs(configs).results]
    deadline = time.monotonic() + 600
    while in_progress(conn):
        if time.monotonic() > deadline:
            raise SystemExit("jobs still running after 600 s")
        time.sleep(0.01)
    wall = time.perf_counter() - wall
    worker = process_cpu(pid) - worker
    conn.close()
    stop_worker(engine.home)
    reap_orphans()
    cpu = cpu_now() - cpu
    records = engine.job_statuses(ids)
    failed = [r for r in records if r.status != "CD"]
    if failed:
        raise SystemExit(f"{len(failed)} jobs did not complete: {failed[0].status} {failed[0].error}")
    spans = [(r.started_at.timestamp(), r.finished_at.timestamp()) for r in records if r.started_at and r.finished_at]
    return Run(wall, cpu, dispatch_delays(spans, slots, start), worker)


def warm_up(engine: Engine, name: str, file_hash: str, i: int) -> None:
    """Start the worker and run one job of the method (parameter ``i``, new each time), so the timed run starts
    with the worker listening."""
    job_id = engine.simulate_jobs([{"file_hash": file_hash, "method_name": name, "parameters": {"i": i}}]).results
    deadline = time.monotonic() + 60
    while engine.job_statuses([job_id[0].job_id or ""])[0].status not in ("CD", "F", "NF"):
        if time.monotonic() > deadline:
            raise SystemExit("the warm-up job did not end")
        time.sleep(0.01)


def register(engine: Engine, root: Path, kind: str) -> str:
    name, command, script, text = METHODS[kind]
    directory = root / kind
    directory.mkdir()
    (directory / script).write_text(text, encoding="utf-8")
    spec = {"name": name, "command": command, "script_path": script, "version": "1",
            "parameters": [{"name": "i", "type": "integer", "default": 0}]}  # fmt: skip
    (directory / "method.json").write_text(json.dumps(spec), encoding="utf-8")
    return engine.register_method(directory)[0].function_hash


def bare_commands(engine: Engine, kind: str, function_hash: str, file_hash: str, params: Path) -> list[str]:
    _, command, script, _ = METHODS[kind]
    interpreter = sys.executable if command == "python3" else "/bin/bash"
    method_dir = engine.home.method_dir(function_hash)
    return [interpreter, str(method_dir / script), str(engine.home.file_path(file_hash)), str(params)]


def sandboxed(argv: list[str], workspace: Path, engine: Engine, function_hash: str, file_hash: str) -> list[str]:
    """The same command wrapped as the runner would wrap it (bubblewrap), for the ``bare+sandbox`` pool."""
    inputs = [engine.home.file_path(file_hash)]
    return confine(argv, {}, workspace, inputs, engine.home.method_dir(function_hash)).argv


def row(label: str, run: Run, jobs: int, bare: Run, bare_cpu: float) -> str:
    rate = jobs / run.wall
    ratio = bare.wall / run.wall
    overhead = (run.cpu - bare_cpu) / jobs * 1000
    delay = statistics.median(run.delays) * 1000
    worker = "" if run.worker is None else f"  worker cpu/job {run.worker / jobs * 1000:5.2f} ms"
    return (
        f"{label:<14} {run.wall:7.2f} s {rate:7.0f} jobs/s {ratio:6.2f}x"
        f"  cpu/job {overhead:+7.2f} ms  median dispatch delay {delay:6.2f} ms{worker}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--slots", type=int, default=2)
    parser.add_argument("--kinds", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--dir", type=Path, default=tmpfs_dir(), help="where to make the home (default: a tmpfs)")
    parser.add_argument("--rounds", type=int, default=3, help="bare pool and ours, alternately (the median is said)")
    args = parser.parse_args()
    ctypes.CDLL(None).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    mode = os.environ.get("DSHPC_SANDBOX", "auto")
    wrapped = mode in ("auto", "bwrap") and bubblewrap() is not None
    print(f"{args.jobs} jobs per case, {args.slots} slots, sandbox {mode} ({'bubblewrap' if wrapped else 'none'})")
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        root = Path(tmp)
        print(f"home in {root} ({file_system(root)})")
        home = Home.open(root / "home")
        engine = open_engine(home.root, slots=args.slots, idle_timeout=600)
        try:
            file_hash = engine.upload_file(b"input\n").file_hash
            params, workspace = root / "params.json", root / "workspace"
            params.write_text('{"i": 0}', encoding="utf-8")
            (workspace / "tmp").mkdir(parents=True)
            for offset, kind in enumerate(args.kinds):
                function_hash = register(engine, root, kind)
                argv = bare_commands(engine, kind, function_hash, file_hash, params)
                print(f"\n{kind}: ratio = bare pool time / time; cpu/job over the bare pool's")
                ratios = []
                for n in range(args.rounds):
                    bare = bare_pool([argv] * args.jobs, args.slots)
                    cases = [("bare pool", bare)]
                    if wrapped:
                        wrapped_argv = sandboxed(argv, workspace, engine, function_hash, file_hash)
                        cases.append(("bare+sandbox", bare_pool([wrapped_argv] * args.jobs, args.slots)))
                    warm_up(engine, METHODS[kind][0], file_hash, -1 - n)
                    first = offset * 10**6 + n * args.jobs
                    cases.append(("ours", ours(engine, METHODS[kind][0], file_hash, args.jobs, args.slots, first)))
                    for label, run in cases:
                        print(row(label, run, args.jobs, bare, bare.cpu))
                    if wrapped:
                        print(f"ours vs bare+sandbox: {cases[1][1].wall / cases[-1][1].wall:.2f}x")
                    ratios.append(bare.wall / cases[-1][1].wall)
                listed = ", ".join(f"{r:.2f}" for r in ratios)
                print(
                    f"{kind}: ours vs bare pool, median of {args.rounds}: {statistics.median(ratios):.2f}x ({listed})"
                )
        finally:
            engine.close()
            stop_worker(home)
            reap_orphans()


if __name__ == "__main__":
    main()
