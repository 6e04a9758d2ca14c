"""The local worker's store writes and its naming of a runner per tiny job, alone, in this process (issue 16).

A worker's turn for one slot whose job ended as the next one started records the start (``R``), the result,
and claims the next job. Timed per job on a real SQLite file of 1,000 pending jobs, CPU clock: the three
writes it made before (``mark_running``, ``apply_updates``, ``claim_pending``: three transactions) against
``record_turn`` (one); and ``runner.json`` written with a rename (``write_json_atomic``, as before) against one plain
write (``name_runner``). The two ways of each are run alternately, best of five.

Run: ``python bench/worker_turn.py [--jobs 1000]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from timing import best_of

from dshpc_jupyter.domain import status as st
from dshpc_jupyter.domain.models import MethodSpec
from dshpc_jupyter.schedulers.job_files import RUNNER_FILE, name_runner, write_json_atomic
from dshpc_jupyter.store.sqlite import JobUpdate, NewJob, Store

Turn = Callable[[Store, str, str], None]


def three_writes(store: Store, started: str, ended: str) -> None:
    store.mark_running(started, "9:1", time.time())
    store.apply_updates([JobUpdate(ended, st.COMPLETED, exit_code=0, output="{}", finished_at=time.time())])
    store.claim_pending("local", 1)


def one_write(store: Store, started: str, ended: str) -> None:
    update = JobUpdate(ended, st.COMPLETED, exit_code=0, output="{}", finished_at=time.time())
    store.record_turn("local", [(started, "9:1", time.time())], [], [update], 1)


def store_case(root: Path, jobs: int, turn: Turn) -> Callable[[], object]:
    """A fresh store of ``jobs`` pending jobs, two claimed and started; then the run of ``jobs - 2`` turns."""
    store = Store(root / f"store-{time.monotonic_ns()}.sqlite")
    store.add_method("h" * 64, MethodSpec(name="M", command="bash", script_path="m.sh"))
    with store.write() as tx:
        tx.insert_jobs(
            NewJob(f"j{i}", f"k{i}", "f" * 64, "M", "h" * 64, "{}", time.time(), "local") for i in range(jobs)
        )
    store.claim_pending("local", 2)
    store.mark_running("j0", "9:1", time.time())

    def run() -> None:
        for i in range(1, jobs - 1):
            turn(store, f"j{i}", f"j{i - 1}")
        store.close()

    return run


def renamed(spaces: list[Path]) -> None:
    for space in spaces:
        write_json_atomic(space / RUNNER_FILE, {"runner": "9:1", "method": None})


def plain(spaces: list[Path]) -> None:
    for space in spaces:
        name_runner(space, "9:1")


def cpu(run: Callable[[], object]) -> float:
    return best_of(1, run, clock=time.process_time)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        runs: dict[str, list[float]] = {"three": [], "one": [], "rename": [], "plain": []}
        for rnd in range(5):
            for name, turn in (("three", three_writes), ("one", one_write)):
                run = store_case(root, args.jobs, turn)
                runs[name].append(cpu(run))
            spaces = [root / f"w{rnd}-{i}" for i in range(2 * args.jobs)]
            for space in spaces:
                space.mkdir()
            runs["rename"].append(cpu(partial(renamed, spaces[: args.jobs])))
            runs["plain"].append(cpu(partial(plain, spaces[args.jobs :])))
        per_job = {name: min(times) / args.jobs * 1000 for name, times in runs.items()}
        print(f"{args.jobs} jobs, CPU per job, best of 5")
        print(f"store, three writes (before)   {per_job['three']:6.3f} ms  1.00x")
        print(f"store, record_turn (now)       {per_job['one']:6.3f} ms  {per_job['one'] / per_job['three']:.2f}x")
        print(f"runner.json, rename (before)   {per_job['rename']:6.3f} ms  1.00x")
        print(f"runner.json, plain write (now) {per_job['plain']:6.3f} ms  {per_job['plain'] / per_job['rename']:.2f}x")


if __name__ == "__main__":
    main()
