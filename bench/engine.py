"""Engine throughput at 10,000 and 100,000 configs against a warm store, (a) all cached, (b) all new.

Each case is compared with a lower bound measured in the same run on the same store: one SQLite query that
looks up the same job keys through the index (what any implementation must at least do), and the per-config
cost at each size with that at the smallest: a batch should cost in proportion to its configs. New jobs are
recorded and queued but not run: the scheduler here accepts submissions and does nothing, so the figures
are the engine's own cost (the local scheduler's ``submit`` is one write to its worker's wake-up pipe).

Run: ``python bench/engine.py [--sizes 10000,100000] [--repeat 5] [--clock wall|cpu]``
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from timing import CLOCKS, QueueOnly, best_of

from dshpc_jupyter.domain import status as st
from dshpc_jupyter.domain.home import Home
from dshpc_jupyter.examples import methods_dir
from dshpc_jupyter.service.checks import prepare
from dshpc_jupyter.service.engine import Engine
from dshpc_jupyter.store.sqlite import LATEST_JOBS_SQL, JobUpdate, Store


def lower_bound(store: Store, keys: list[str]) -> Callable[[], object]:
    """The same indexed lookups in one query, rows fetched and nothing else done with them."""

    def run() -> object:
        with store.read() as tx:
            return tx.connection.execute(LATEST_JOBS_SQL, (json.dumps(keys),)).fetchall()

    return run


def measure(size: int, files: int, repeat: int, clock: Callable[[], float]) -> dict[str, float]:
    """Best wall times (seconds) of the three cases on a fresh home holding ``size`` completed jobs."""
    with tempfile.TemporaryDirectory() as tmp:
        home = Home.open(Path(tmp))
        store = Store(home.db_path)
        engine = Engine(home, store, QueueOnly())
        engine.register_method(methods_dir() / "example_python")
        hashes = [engine.upload_file(f"input {i}\n".encode()).file_hash for i in range(files)]
        values = size // files

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

        keys = sorted(c.key for c in prepare(store, engine._schema, cached))
        bound, _ = best_of(repeat, lower_bound(store, keys), clock=clock)
        cached_best, _ = best_of(repeat, lambda: engine.simulate_jobs(cached), clock=clock)

        rounds = iter(range(repeat))
        fresh = [configs(f"new{r}-") for r in range(repeat)]

        def submit_new() -> None:
            response = engine.simulate_jobs(fresh[next(rounds)])
            assert response.successful_submissions == len(cached)

        new_best, _ = best_of(repeat, submit_new, clock=clock)
        engine.close()
    return {"configs": len(cached), "bound": bound, "cached": cached_best, "new": new_best}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated config counts, smallest first")
    parser.add_argument("--files", type=int, default=100, help="distinct input files (configs = files x values)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall", help="wall time, or this process's CPU")
    args = parser.parse_args()
    runs = [measure(int(size), args.files, args.repeat, CLOCKS[args.clock]) for size in args.sizes.split(",")]
    print(f"best of {args.repeat} ({args.clock} time); per config in microseconds; each size on a fresh store")
    print(f"  {'configs':>8s} {'lower bound':>12s} {'(a) cached':>11s} {'vs bound':>9s} {'(b) new':>9s}")
    for run in runs:
        n = run["configs"]
        print(
            f"  {n:8,.0f} {run['bound'] / n * 1e6:10.1f}us {run['cached'] / n * 1e6:9.1f}us"
            f" {run['cached'] / run['bound']:8.1f}x {run['new'] / n * 1e6:7.1f}us"
        )
    base = runs[0]
    for run in runs[1:]:
        ratios = [run[case] / run["configs"] / (base[case] / base["configs"]) for case in ("cached", "new")]
        print(
            f"  per config at {run['configs']:,.0f} / at {base['configs']:,.0f}: cached {ratios[0]:.2f}x,"
            f" new {ratios[1]:.2f}x (target: within 1.3x; cached within 4x of the bound at both sizes)"
        )


if __name__ == "__main__":
    main()
