"""What retries and forgetting cost the store: recording 5,000 ended jobs in one ``apply_updates`` call,
(a) all completed (the retry step finds no failure: the baseline), (b) all failed with a code their policy does
not retry (the step reads each job's policy and retries none), (c) all out of memory with a policy that retries
them (each is requeued with its attempt recorded and its memory raised); then (d) forgetting 5,000 completed
jobs that each wrote one output file, against (e) a bare ``DELETE`` of the rows and an unlink of each file (the
lower bound: what any forget must do, without checking what is still needed).

Every case runs on its own fresh store in the same run; jobs are recorded by the engine with a scheduler that
runs nothing, then set running, so the figures are the store's alone.

Run: ``python bench/retries.py [--jobs 5000] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from timing import QueueOnly

from dshpc_jupyter.domain import status as st
from dshpc_jupyter.domain.home import Home
from dshpc_jupyter.domain.jobs import JobUpdate
from dshpc_jupyter.domain.retries import SubmitOptions
from dshpc_jupyter.examples import methods_dir
from dshpc_jupyter.service.engine import Engine
from dshpc_jupyter.store.sqlite import Store


def running_jobs(root: Path, n: int, options: SubmitOptions | None) -> tuple[Engine, list[str]]:
    """A fresh store holding ``n`` running jobs (with ``options``' retry policy); the engine and the ids."""
    home = Home.open(root)
    engine = Engine(home, Store(home.db_path), QueueOnly())
    engine.register_method(methods_dir() / "example_python")
    file_hash = engine.upload_file(b"input\n").file_hash
    configs = [{"file_hash": file_hash, "method_name": "Example Python Method", "parameters": {"prefix": str(i)}}
               for i in range(n)]  # fmt: skip
    ids = [r.job_id or "" for r in engine.simulate_jobs(configs, options=options).results]
    with engine.store.write() as tx:
        tx.connection.execute("UPDATE jobs SET status = 'R', started_at = ?", (time.time(),))
    return engine, ids


def timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def case(n: int, status: str, options: SubmitOptions | None, repeat: int) -> float:
    """Best time of ``repeat`` fresh stores recording ``n`` updates of ``status``."""
    times = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            engine, ids = running_jobs(Path(tmp), n, options)
            now = time.time()
            updates = [JobUpdate(j, status, exit_code=1, error="boom\nMemoryError", finished_at=now) for j in ids]
            times.append(timed(lambda e=engine, u=updates: e.store.apply_updates(u)))
            [one] = engine.store.get_jobs(ids[:1])
            assert one.status == (st.PENDING if status == st.OUT_OF_MEMORY and options else status), one.status
            engine.close()
    return min(times)


def bare_delete(conn: sqlite3.Connection, paths: list[Path]) -> None:
    """The lower bound of a forget: delete every row, unlink every file (no check of what is still needed)."""
    conn.execute("DELETE FROM jobs")
    conn.execute("DELETE FROM files")
    for path in paths:
        path.unlink()


def forgetting(n: int, repeat: int) -> tuple[float, float]:
    """Best times of forgetting ``n`` completed jobs with one output file each, and of a bare DELETE of them."""
    forget_times, delete_times = [], []
    for _ in range(repeat):
        for bare in (False, True):
            with tempfile.TemporaryDirectory() as tmp:
                engine, ids = running_jobs(Path(tmp), n, None)
                updates = []
                for job_id in ids:  # each job "wrote" one distinct file, stored and recorded as its output
                    data = job_id.encode()
                    digest = hashlib.sha256(data).hexdigest()
                    engine.home.file_path(digest).parent.mkdir(parents=True, exist_ok=True)
                    engine.home.file_path(digest).write_bytes(data)
                    engine.store.add_file(engine.upload_file(data).model_copy(update={"metadata": {"job_id": job_id}}))
                    updates.append(JobUpdate(job_id, st.COMPLETED, exit_code=0, output_files={"out": digest}))
                with engine.store.write() as tx:  # the records name their job, as an ingested output's do
                    tx.connection.executemany(
                        "UPDATE files SET metadata = ? WHERE file_hash = ?",
                        ((json.dumps({"job_id": u.job_id}), (u.output_files or {})["out"]) for u in updates),
                    )
                engine.store.apply_updates(updates)
                if bare:
                    paths = [engine.home.file_path((u.output_files or {})["out"]) for u in updates]
                    with engine.store.write() as tx:
                        delete_times.append(timed(lambda c=tx.connection, p=paths: bare_delete(c, p)))
                else:
                    forget_times.append(timed(lambda e=engine, i=ids: e.forget(i)))
                    assert engine.list_jobs() == [] and len(engine.list_files()) == 1, "every output file went"
                engine.close()
    return min(forget_times), min(delete_times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    n, repeat = args.jobs, args.repeat
    oom = SubmitOptions.of(retry={"attempts": 3, "on": ["OOM"]})
    baseline = case(n, st.COMPLETED, None, repeat)
    print(f"{n} ended jobs recorded in one apply_updates call, best of {repeat} fresh stores")
    for label, seconds in (
        ("(a) all completed (baseline)     ", baseline),
        ("(b) all failed, none retried     ", case(n, st.FAILED, None, repeat)),
        ("(c) all out of memory, retried   ", case(n, st.OUT_OF_MEMORY, oom, repeat)),
    ):
        print(f"  {label} {seconds * 1e3:8.1f} ms  {n / seconds:9,.0f} jobs/s  {seconds / baseline:5.2f}x (a)")
    forget, delete = forgetting(n, repeat)
    print(f"{n} completed jobs with one output file each, best of {repeat}")
    print(f"  (e) DELETE + unlink (bound)        {delete * 1e3:8.1f} ms")
    print(f"  (d) forget (rows, files, records)  {forget * 1e3:8.1f} ms  {n / forget:9,.0f} jobs/s  "
          f"{forget / delete:5.1f}x (e)")  # fmt: skip


if __name__ == "__main__":
    main()
