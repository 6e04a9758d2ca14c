"""The live table of a 2,000-config batch: what a cell waits for and what each render costs the view's thread.

Cases, each against the baseline of the same run (``Batch.rows()``: the snapshot every view starts from): one
render of the widget (summary, filter, pager, table page), the dated snapshot that is re-sent every few seconds
(``live_bundle``), the final static bundle, and a render filtered to one state. Also the submission of the
2,000 configs itself (new jobs, queued, not run: the jobs sleep, so none starts within the run).

Run: ``python bench/display.py [--repeat 5]``
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from timing import best_of

from dshpc_jupyter import Batch, BatchView
from dshpc_jupyter.domain.home import Home
from dshpc_jupyter.examples import data_files, methods_dir
from dshpc_jupyter.front.connection import Connection, connect_async
from dshpc_jupyter.jupyter.display import live_bundle, static_bundle
from dshpc_jupyter.schedulers.local import stop_worker

CONFIGS = 2000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        os.environ["DSHPC_LOCAL_SLOTS"] = "1"
        connection = Connection(connect_async(home=home))
        try:
            connection.register_method(methods_dir())
            poem = connection.upload_files(data_files("poem.txt"))[0]
            parameters = [{"seconds": 60 + i / 1000, "exit_code": i % 2} for i in range(CONFIGS)]
            configs = [{"method_name": "Simulated Workload", "file_hash": poem, "parameters": p} for p in parameters]
            start = time.perf_counter()
            batch = Batch.submit(configs, connection=connection, poll=30)
            submitted = time.perf_counter() - start
            batch.stop()
            view = BatchView(batch)
            cases: dict[str, Callable[[], object]] = {
                "baseline: Batch.rows()": batch.rows,
                "BatchView.render()": view.render,
                "live_bundle (the dated snapshot)": lambda: live_bundle(view),
                "static_bundle (the final table)": lambda: static_bundle(batch),
            }
            results = {name: best_of(args.repeat, run) for name, run in cases.items()}
            view.state_filter.value = "pending"
            results["BatchView.render(), filtered to pending"] = best_of(args.repeat, view.render)
            base = results["baseline: Batch.rows()"][0]
            print(f"{CONFIGS} configs submitted (new jobs, queued) in {submitted * 1000:.0f} ms")
            print(f"{'case':45} {'best':>9} {'median':>9} {'vs baseline':>12}")
            for name, (best, median) in results.items():
                print(f"{name:45} {best * 1000:7.1f}ms {median * 1000:7.1f}ms {best / base:11.1f}x")
            batch.cancel()
            view.close()
        finally:
            connection.close()
            stop_worker(Home(Path(home)))


if __name__ == "__main__":
    main()
