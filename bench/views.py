"""The pandas views of a 100,000-config batch: ``Batch.df`` and ``Batch.outputs()``.

One home holds ``--configs`` completed jobs (each with a small JSON output) and a Batch is submitted with the
same configs, so every one is cached and the batch is done at once (jobs never run: the scheduler here does
nothing). Then, best of ``--repeat``, each view against the baseline of the same run, ``Batch.rows()`` (the
row snapshot the views were built from before they were built from the state's columns), and:
- the first ``Batch.df`` of the batch (its parameter columns not made yet: they are kept until a sending is
  answered or the defaults change), timed once, before the others;
- what keeping the columns costs the poller: ``BatchState.apply`` of the 100,000 records on a fresh state
  (every row's values made once), against the least any state does with them (a dict of the records by id).

Run: ``python bench/views.py [--configs 100000] [--repeat 5] [--clock wall|cpu]``
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas  # noqa: F401  (imported by the first view otherwise, and timed with it)
from timing import CLOCKS, QueueOnly, best_of

from dshpc_jupyter.backends.embedded import EmbeddedBackend
from dshpc_jupyter.domain import status as st
from dshpc_jupyter.domain.home import Home
from dshpc_jupyter.domain.models import MultiJobSimulationResponse
from dshpc_jupyter.examples import methods_dir
from dshpc_jupyter.front.batch import Batch
from dshpc_jupyter.front.batch_state import BatchState
from dshpc_jupyter.front.connection import Connection
from dshpc_jupyter.service.engine import Engine
from dshpc_jupyter.store.sqlite import JobUpdate, Store

METHOD = "Example Python Method"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", type=int, default=100_000)
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall", help="wall time, or this process's CPU")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        home = Home.open(Path(tmp))
        engine = Engine(home, Store(home.db_path), QueueOnly())
        engine.register_method(methods_dir() / "example_python")
        hashes = [engine.upload_file(f"input {i}\n".encode()).file_hash for i in range(args.files)]
        configs = [
            {"file_hash": h, "method_name": METHOD, "parameters": {"prefix": f"p{v}"}}
            for v in range(args.configs // args.files)
            for h in hashes
        ]
        submitted = engine.simulate_jobs(configs)
        ids = [r.job_id for r in submitted.results if r.job_id]
        updates = [JobUpdate(j, st.COMPLETED, exit_code=0, output=json.dumps({"result": f"r{n}", "lines": n}),
                             started_at=time.time(), finished_at=time.time()) for n, j in enumerate(ids)]  # fmt: skip
        engine.store.apply_updates(updates)
        connection = Connection(EmbeddedBackend(engine))
        try:
            batch = Batch.submit(configs, connection=connection)
            assert batch.done and batch.stats.cached == len(configs), batch.stats.summary()
            clock = CLOCKS[args.clock]
            start = clock()
            first = batch.df
            first_view = clock() - start
            records = engine.job_statuses(ids)
            timings = {
                "baseline: Batch.rows()": best_of(args.repeat, batch.rows, clock=clock),
                "Batch.df": best_of(args.repeat, lambda: batch.df, clock=clock),
                "Batch.outputs()": best_of(args.repeat, batch.outputs, clock=clock),
            }
            assert list(batch.outputs()["lines"][:3]) == [0, 1, 2] and first.equals(batch.df)
            states: list[BatchState] = []
            keeping = {
                "least: records by id": best_of(args.repeat, lambda: {r.job_id: r for r in records}, clock=clock),
                "BatchState.apply": best_of(
                    args.repeat,
                    lambda: states[-1].apply(records),
                    setup=lambda: states.append(fresh_state(configs, submitted)),
                    clock=clock,
                ),
            }
        finally:
            connection.close()

    base = timings["baseline: Batch.rows()"][0]
    print(f"{len(configs)} cached configs, best of {args.repeat} (median), {args.clock} time")
    for label, (best, median) in timings.items():
        print(f"  {label:24s} {best * 1e3:8.1f} ms ({median * 1e3:.1f})  {best / base:5.1f}x the baseline")
    print(f"  {'first Batch.df':24s} {first_view * 1e3:8.1f} ms (once)  {first_view / base:5.1f}x the baseline")
    print("  target: Batch.df and Batch.outputs() under 0.5 s")
    least = keeping["least: records by id"][0]
    print(f"keeping the columns current: {len(records)} changed records")
    for label, (best, median) in keeping.items():
        print(f"  {label:24s} {best * 1e3:8.1f} ms ({median * 1e3:.1f})  {best / least:5.1f}x the least")


def fresh_state(configs: list[dict[str, Any]], answer: MultiJobSimulationResponse) -> BatchState:
    """A state holding the service's answer (every job pending) and no job record yet."""
    state = BatchState(configs)
    state.record(state.take_queued(), answer)
    return state


if __name__ == "__main__":
    main()
