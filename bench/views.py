"""The pandas views of a 100,000-config batch: ``Batch.df`` and ``Batch.outputs()``.

One home holds ``--configs`` completed jobs (each with a small JSON output) and a Batch is submitted with the
same configs, so every one is cached and the batch is done at once (jobs never run: the scheduler here does
nothing). Then, best of ``--repeat``, each view against the baseline of the same run, ``Batch.rows()``: the
snapshot every view starts from.

Run: ``python bench/views.py [--configs 100000] [--repeat 5]``
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from timing import QueueOnly, best_of

from dshpc_jupyter.backends.embedded import EmbeddedBackend
from dshpc_jupyter.domain import status as st
from dshpc_jupyter.domain.home import Home
from dshpc_jupyter.examples import methods_dir
from dshpc_jupyter.front.batch import Batch
from dshpc_jupyter.front.connection import Connection
from dshpc_jupyter.service.engine import Engine
from dshpc_jupyter.store.sqlite import JobUpdate, Store

METHOD = "Example Python Method"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", type=int, default=100_000)
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
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
        ids = [r.job_id for r in engine.simulate_jobs(configs).results if r.job_id]
        updates = [JobUpdate(j, st.COMPLETED, exit_code=0, output=json.dumps({"result": f"r{n}", "lines": n}),
                             started_at=time.time(), finished_at=time.time()) for n, j in enumerate(ids)]  # fmt: skip
        engine.store.apply_updates(updates)
        connection = Connection(EmbeddedBackend(engine))
        try:
            batch = Batch.submit(configs, connection=connection)
            assert batch.done and batch.stats.cached == len(configs), batch.stats.summary()
            timings = {
                "baseline: Batch.rows()": best_of(args.repeat, batch.rows),
                "Batch.df": best_of(args.repeat, lambda: batch.df),
                "Batch.outputs()": best_of(args.repeat, batch.outputs),
            }
            assert list(batch.outputs()["lines"][:3]) == [0, 1, 2]
        finally:
            connection.close()

    base = timings["baseline: Batch.rows()"][0]
    print(f"{len(configs)} cached configs, best of {args.repeat} (median)")
    for label, (best, median) in timings.items():
        print(f"  {label:24s} {best * 1e3:8.1f} ms ({median * 1e3:.1f})  {best / base:5.1f}x the baseline")
    print("  target: Batch.df and Batch.outputs() under 0.5 s")


if __name__ == "__main__":
    main()
