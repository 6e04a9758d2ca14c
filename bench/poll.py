"""Polling by change: 100,000 jobs in flight, one poll after 100 of them changed, and one after all changed.

One home is prepared with ``--jobs`` pending jobs (queued, never run: the scheduler here does nothing), and a
poller's cursor is taken. Then ``--changed`` of the jobs start (``R``) and, best of ``--repeat``:
- ``job_changes(cursor)`` in-process (``Engine``) and over HTTP (``HttpBackend`` against a real uvicorn server
  in its own process on 127.0.0.1, over an engine on the same home), timed alternately;
- the poll it replaces, ``job_statuses`` of every job in flight, on both paths, as the baseline.
Then every job changes, and ``job_changes(cursor, limit=all)`` is compared with the raw SQL read of the same
rows (one indexed range query, rows fetched and nothing else done with them).

With ``--slurm``, the Slurm-shaped case instead: ``--jobs`` jobs submitted to Slurm (array task ids recorded,
all ``PD``) and polled through ``job_changes`` by the real ``SlurmScheduler``, whose ``squeue`` is a fake on
``PATH`` printing a prepared snapshot of as many tasks: 100,000 real Slurm jobs cannot run on this machine, and
the case measures what the engine does with an answer, not Slurm. Timed: a poll when nothing changed, and one
after ``--changed`` tasks started, against the fake ``squeue`` call alone (the floor every poll pays, as long
as Slurm prints every task), the same call with a whole parse of its answer (what every poll paid before it
was parsed by difference), and the raw SQL read of the active jobs' ids and states.

Run: ``python bench/poll.py [--jobs 100000] [--changed 100] [--repeat 5] [--slurm]``
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/ holds an http.py: keep it off the import path, or it would shadow the standard library's http package.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import asyncio
import importlib.util
import itertools
import json
import os
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from types import ModuleType

from dshpc_jupyter.backends.http import HttpBackend, HttpOptions
from dshpc_jupyter.domain import status as st
from dshpc_jupyter.domain.home import Home
from dshpc_jupyter.domain.models import MAX_CHANGES_LIMIT
from dshpc_jupyter.examples import methods_dir
from dshpc_jupyter.schedulers.slurm import SlurmOptions, SlurmScheduler
from dshpc_jupyter.schedulers.slurm_cli import SQUEUE_FORMAT, parse_squeue, run
from dshpc_jupyter.service.engine import Engine
from dshpc_jupyter.store.rows import JOB_COLUMNS
from dshpc_jupyter.store.sqlite import JobUpdate, Store

METHOD = "Example Python Method"
RAW_SQL = f"SELECT {JOB_COLUMNS}, change_seq FROM jobs WHERE change_seq > ? ORDER BY change_seq"


def _load(name: str) -> ModuleType:
    """bench/http.py, whose engine (queue-only scheduler) and server process this benchmark shares."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", Path(__file__).with_name(f"{name}.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench_http = _load("http")
timing = _load("timing")
best_of = timing.best_of


def prepare(root: Path, jobs: int, files: int) -> tuple[Engine, list[str]]:
    """An engine on a home holding ``jobs`` pending jobs; their ids."""
    engine: Engine = bench_http.open_engine(root)
    return engine, submit_sweep(engine, jobs, files)


def submit_sweep(engine: Engine, jobs: int, files: int) -> list[str]:
    """Register the example method, upload ``files`` inputs and submit ``jobs`` configs over them; the job ids."""
    engine.register_method(methods_dir() / "example_python")
    hashes = [engine.upload_file(f"input {i}\n".encode()).file_hash for i in range(files)]
    configs = [
        {"file_hash": h, "method_name": METHOD, "parameters": {"prefix": f"p{v}"}}
        for v in range(jobs // files)
        for h in hashes
    ]
    return [r.job_id for r in engine.simulate_jobs(configs).results if r.job_id]


async def timed(call: Callable[[], Awaitable[object]]) -> float:
    began = time.perf_counter()
    await call()
    return time.perf_counter() - began


async def measure(
    engine: Engine, url: str, cursor: int, ids: list[str], repeat: int, limit: int
) -> dict[str, list[float]]:
    """Wall times of each path, alternating so that all of them see the same machine load."""
    backend = HttpBackend(url, options=HttpOptions(timeout=600))
    times: dict[str, list[float]] = {}

    async def local_changes() -> object:
        return engine.job_changes(cursor, limit)

    async def local_statuses() -> object:
        return engine.job_statuses(ids)

    paths = {
        "in-process job_changes": local_changes,
        "HTTP job_changes": lambda: backend.job_changes(cursor, limit),
        "in-process job_statuses (all)": local_statuses,
        "HTTP job_statuses (all)": lambda: backend.job_statuses(ids),
    }
    try:
        for _ in range(repeat):
            for label, call in paths.items():
                times.setdefault(label, []).append(await timed(call))
    finally:
        await backend.aclose()
    return times


def raw_read(engine: Engine, cursor: int, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        with engine.store.read() as tx:
            tx.connection.execute(RAW_SQL, (cursor,)).fetchall()
        times.append(time.perf_counter() - began)
    return times


def report(title: str, times: dict[str, list[float]]) -> None:
    print(title)
    for label, values in times.items():
        print(f"  {label:32s} {min(values) * 1e3:9.1f} ms ({statistics.median(values) * 1e3:.1f})")


class SlurmStandIn(timing.QueueOnly):  # type: ignore[name-defined,misc]
    """Records jobs as Slurm's without running any, to prepare the Slurm-shaped home."""

    name = "slurm"
    records_results = False


FAKE_SQUEUE = '#!/bin/sh\nexec cat "$DSHPC_BENCH_SQUEUE"\n'
FAKE_SCONTROL = "#!/bin/sh\necho 'MaxArraySize = 1001'\necho 'AccountingStorageType = accounting_storage/none'\n"
LIGHT_SQL = (
    "SELECT job_id, status, scheduler_id FROM jobs WHERE scheduler = 'slurm' AND status IN ('PD', 'CF', 'R', 'CG')"
)


def slurm_case(root: Path, jobs: int, changed: int, files: int, repeat: int) -> None:
    """The Slurm-shaped case (module docstring): one engine with the real Slurm scheduler over a fake squeue."""
    home = Home.open(root)
    seeding = Engine(home, Store(home.db_path), SlurmStandIn())
    ids = submit_sweep(seeding, jobs, files)
    tasks = {job_id: f"{1000 + i // 1000}_{i % 1000}" for i, job_id in enumerate(ids)}
    seeding.store.set_scheduler_ids(tasks.items())
    seeding.close()
    step = max(len(ids) // changed, 1)
    started = ids[::step][:changed]
    bin_dir = root / "fake-bin"
    bin_dir.mkdir()
    for name, text in (("squeue", FAKE_SQUEUE), ("scontrol", FAKE_SCONTROL)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    still = root / "squeue-still.txt"
    still.write_text("".join(f"{t}|PENDING|bench-0-0\n" for t in tasks.values()))
    running = {tasks[j] for j in started}
    # Two answers with the same tasks running, told apart by those tasks' comments, taken in turn: every timed
    # poll gets an answer that differs from the one before in the lines of the tasks that started.
    moved = [root / f"squeue-moved-{n}.txt" for n in range(2)]
    for n, path in enumerate(moved):
        path.write_text("".join(f"{t}|RUNNING|bench-{n}-0\n" if t in running else f"{t}|PENDING|bench-0-0\n"
                                for t in tasks.values()))  # fmt: skip
    answers = itertools.cycle(moved)
    os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    store = Store(home.db_path)
    engine = Engine(home, store, SlurmScheduler(home, store, SlurmOptions(poll_interval=0)))
    cursor = engine.job_changes().cursor

    def snapshot(path: Path) -> None:
        os.environ["DSHPC_BENCH_SQUEUE"] = str(path)

    def reset() -> None:
        with store.write() as tx:
            tx.connection.execute(
                "UPDATE jobs SET status = 'PD', started_at = NULL WHERE job_id IN (SELECT value FROM json_each(?))",
                (json.dumps(started),),
            )
        snapshot(next(answers))

    def squeue_call() -> str:
        return run(["squeue", "-h", "-r", "-t", "all", f"--format={SQUEUE_FORMAT}"])

    def squeue_only() -> None:
        parse_squeue(squeue_call())

    def light_read() -> None:
        with store.read() as tx:
            tx.connection.execute(LIGHT_SQL).fetchall()

    snapshot(still)
    first = best_of(1, lambda: engine.job_changes(cursor))  # the view's first refresh compares every job, once
    cases: dict[str, tuple[Callable[[], object], Callable[[], object]]] = {
        "fake squeue call alone": (squeue_call, lambda: None),
        "fake squeue + parse alone": (squeue_only, lambda: None),
        "raw SQL of the active ids and states": (light_read, lambda: None),
        "job_changes, nothing changed": (lambda: engine.job_changes(cursor), lambda: None),
        f"job_changes, {changed} started": (lambda: engine.job_changes(cursor), reset),
    }
    figures = {
        (label, clock): best_of(repeat, run, setup, timing.CLOCKS[clock])
        for clock in ("wall", "cpu")
        for label, (run, setup) in cases.items()
    }
    with store.read() as tx:
        answered = tx.connection.execute("SELECT count(*) FROM jobs WHERE status = 'R'").fetchone()[0]
    engine.close()
    print(f"Slurm-shaped: {len(ids)} jobs in Slurm, {changed} started: best of {repeat} and median, wall and CPU")
    for label in cases:
        wall, cpu = (" ".join(f"{t * 1e3:.1f}" for t in figures[label, clock]) for clock in ("wall", "cpu"))
        print(f"  {label:40s} {wall:>16s} ms   CPU {cpu:>16s} ms")
    print(f"  {'the first poll of the engine (once)':40s} {first[0] * 1e3:>16.1f} ms")
    for clock in ("wall", "cpu"):
        floor = figures["fake squeue call alone", clock][0]
        ratios = ", ".join(f"{label}: {figures[label, clock][0] / floor:.2f}" for label in list(cases)[3:])
        print(f"  {clock} / the squeue call alone: {ratios}")
    print(f"  (jobs recorded running after the last poll: {answered}, expected {len(started)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--changed", type=int, default=100)
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--slurm", action="store_true", help="the Slurm-shaped case (fake squeue) instead")
    args = parser.parse_args()
    if args.slurm:
        with tempfile.TemporaryDirectory() as tmp:
            slurm_case(Path(tmp), args.jobs, args.changed, args.files, args.repeat)
        return

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        engine, ids = prepare(root, args.jobs, args.files)
        cursor = engine.job_changes().cursor
        step = max(len(ids) // args.changed, 1)
        now = time.time()
        engine.store.apply_updates([JobUpdate(j, st.RUNNING, started_at=now) for j in ids[::step][: args.changed]])
        sock = socket.create_server(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        command = [sys.executable, bench_http.__file__, "--serve", str(root), str(sock.fileno())]
        process = subprocess.Popen(command, pass_fds=[sock.fileno()])
        sock.close()
        try:
            bench_http.wait_healthy(url, process)
            few = asyncio.run(measure(engine, url, cursor, ids, args.repeat, 10_000))
            few["raw SQL read of the changed rows"] = raw_read(engine, cursor, args.repeat)
            engine.store.apply_updates([JobUpdate(j, st.RUNNING, started_at=now) for j in ids])
            limit = min(len(ids), MAX_CHANGES_LIMIT)
            every = asyncio.run(measure(engine, url, cursor, ids, args.repeat, limit))
            every["raw SQL read of the changed rows"] = raw_read(engine, cursor, args.repeat)
        finally:
            process.terminate()
            process.wait(timeout=30)
            engine.close()

    n, changed = len(ids), min(args.changed, len(ids))
    report(f"{n} jobs in flight, {changed} changed since the cursor: best of {args.repeat} (median)", few)
    local, remote = min(few["in-process job_changes"]), min(few["HTTP job_changes"])
    print(f"  targets: in-process under 50 ms ({local * 1e3:.1f}), HTTP under 100 ms ({remote * 1e3:.1f}); "
          f"{min(few['in-process job_statuses (all)']) / local:.0f}x faster than reading all in-process")  # fmt: skip
    report(f"{n} jobs in flight, all {n} changed: best of {args.repeat} (median)", every)
    bound = min(every["raw SQL read of the changed rows"])
    print(f"  in-process job_changes / raw SQL read: {min(every['in-process job_changes']) / bound:.2f} "
          f"(target: within 2x); HTTP / raw SQL: {min(every['HTTP job_changes']) / bound:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
