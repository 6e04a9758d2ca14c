"""Engine throughput: 10,000 configs against a warm store, (a) all cached, (b) all new.

Each case is compared with a lower bound measured in the same run on the same store: one SQLite query that
looks up the same 10,000 job keys through the index (what any implementation must at least do). New jobs are
recorded and queued but not run: the scheduler here accepts submissions and does nothing, so the figures
are the engine's own cost (the local scheduler's ``submit`` is one write to its worker's wake-up pipe).

Run: ``python bench/engine.py [--configs 10000] [--repeat 5]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from dshpc_jupyter.domain import status as st
from dshpc_jupyter.domain.home import Home
from dshpc_jupyter.domain.models import JobRecord
from dshpc_jupyter.examples import methods_dir
from dshpc_jupyter.schedulers.base import Refusal, Submission
from dshpc_jupyter.service.engine import Engine
from dshpc_jupyter.store.sqlite import LATEST_JOBS_SQL, JobUpdate, Store


class QueueOnly:
    """A scheduler that accepts every job and runs none: the benchmark measures the engine alone."""

    name = "local"
    #: As the local scheduler it stands in for: nothing to ask it about each job when polling by change.
    records_results = True

    def submit(self, submissions: Sequence[Submission]) -> list[Refusal]:
        return []

    def poll(self, jobs: Sequence[JobRecord]) -> list[JobUpdate]:
        return []

    def cancel(self, jobs: Sequence[JobRecord]) -> None:
        pass

    def close(self) -> None:
        pass


def best_of(repeat: int, run: Callable[[], object]) -> tuple[float, float]:
    """(best, median) wall time of ``repeat`` runs."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def lower_bound(store: Store, keys: list[str]) -> Callable[[], object]:
    """The same indexed lookups in one query, rows fetched and nothing else done with them."""

    def run() -> object:
        with store.read() as tx:
            return tx.connection.execute(LATEST_JOBS_SQL, (json.dumps(keys),)).fetchall()

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", type=int, default=10_000)
    parser.add_argument("--files", type=int, default=100, help="distinct input files (configs = files x values)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        home = Home.open(Path(tmp))
        store = Store(home.db_path)
        engine = Engine(home, store, QueueOnly())
        engine.register_method(methods_dir() / "example_python")
        hashes = [engine.upload_file(f"input {i}\n".encode()).file_hash for i in range(args.files)]
        values = args.configs // args.files

        def configs(tag: str) -> list[dict[str, object]]:
            return [
                {"file_hash": h, "method_name": "Example Python Method", "parameters": {"prefix": f"{tag}{v}"}}
                for v in range(values)
                for h in hashes
            ]

        cached = configs("cached-")
        first = engine.simulate_jobs(cached)
        job_ids = [r.job_id for r in first.results if r.job_id]
        now = time.time()
        output = json.dumps({"result": "x" * 40, "lines": 1})
        store.apply_updates([JobUpdate(j, st.COMPLETED, exit_code=0, output=output, finished_at=now) for j in job_ids])
        check = engine.simulate_jobs(cached)
        assert check.completed_jobs == len(cached), check.model_dump(exclude={"results"})

        keys = [engine._prepare([c])[0].key for c in cached]
        bound_best, bound_median = best_of(args.repeat, lower_bound(store, keys))
        cached_best, cached_median = best_of(args.repeat, lambda: engine.simulate_jobs(cached))

        rounds = iter(range(args.repeat))
        fresh = [configs(f"new{r}-") for r in range(args.repeat)]

        def submit_new() -> None:
            response = engine.simulate_jobs(fresh[next(rounds)])
            assert response.successful_submissions == len(cached)

        new_best, new_median = best_of(args.repeat, submit_new)

    n = len(cached)
    print(f"{n} configs ({args.files} files x {values} parameter values), best of {args.repeat} (median)")
    print(f"  lower bound: {n} indexed lookups in one query  {bound_best * 1e3:7.1f} ms ({bound_median * 1e3:.1f})")
    for label, best, median, target in (
        ("(a) all cached", cached_best, cached_median, 0.5),
        ("(b) all new   ", new_best, new_median, 2.0),
    ):
        print(
            f"  {label}: {best * 1e3:7.1f} ms ({median * 1e3:.1f})  {n / best:9,.0f} configs/s  "
            f"{best / bound_best:5.1f}x the lower bound  (target: under {target} s)"
        )


if __name__ == "__main__":
    main()
