"""Store size: a store of ``--jobs`` completed jobs, before and after ``--calls`` all-cached calls of
``--configs`` configs each (the same cell run again and again: each call records a batch), then ``--sweep``
all-cached calls that each send one config more than the last (a sweep re-run with a config added).

Baseline of the same run: the store's size before the calls; the figure is the growth, against the target of
10%, and against what the same calls would have added with each batch's results recorded inline (one copy of
the packed results per call). Bytes per result: a case's growth over the results its calls recorded. Reading:
``get_batch`` of the last sweep batch (CPU time) against the baseline of decoding the same results from one packed array
(what a read costs at least). Jobs are never run: the scheduler here does nothing, and one SQL statement
completes them all.

Run: ``python bench/store_size.py [--jobs 1000000] [--calls 100] [--configs 10000] [--sweep 20]``
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from timing import QueueOnly, best_of

from dshpc_jupyter.domain.home import Home
from dshpc_jupyter.examples import methods_dir
from dshpc_jupyter.service.engine import Engine
from dshpc_jupyter.store.retention import disk_size
from dshpc_jupyter.store.rows import pack_results, unpack_results
from dshpc_jupyter.store.sqlite import Store

METHOD = "Example Python Method"
CHUNK = 100_000
#: The sizes of the indexes over ``job_key`` (one per job since schema step 11; both over every job before).
KEY_INDEXES = (
    "SELECT name, sum(pgsize) FROM dbstat WHERE name IN ('jobs_by_key', 'jobs_not_live_by_key',"
    " 'jobs_one_live_per_key') GROUP BY name ORDER BY name"
)


def checkpointed_size(store: Store) -> int:
    """The store's bytes on disk once its write-ahead log is folded into the file."""
    with store.read() as tx:
        tx.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return disk_size(store.path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--configs", type=int, default=10_000)
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--sweep", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        home = Home.open(Path(tmp))
        store = Store(home.db_path)
        engine = Engine(home, store, QueueOnly())
        engine.register_method(methods_dir() / "example_python")
        hashes = [engine.upload_file(f"input {i}\n".encode()).file_hash for i in range(args.files)]
        configs = [
            {"file_hash": h, "method_name": METHOD, "parameters": {"prefix": f"p{v}"}}
            for v in range(args.jobs // args.files)
            for h in hashes
        ]
        started = time.perf_counter()
        for start in range(0, len(configs), CHUNK):
            engine.simulate_jobs(configs[start : start + CHUNK])
        output = json.dumps({"result": "x" * 40, "lines": 1})
        with store.write() as tx:
            tx.connection.execute(
                "UPDATE jobs SET status = 'CD', exit_code = 0, output = ?, finished_at = ?", (output, time.time())
            )
        with store.write() as tx:  # the batches that made the jobs are not what is measured
            tx.connection.execute("DELETE FROM batches")
            tx.connection.execute("DELETE FROM batch_payloads")
        with store.read() as tx:  # VACUUM needs no open transaction: this one's connection commits first
            connection = tx.connection
        connection.execute("VACUUM")
        before = checkpointed_size(store)
        prepared = time.perf_counter() - started

        cell = configs[: args.configs]
        for _ in range(args.calls):
            response = engine.simulate_jobs(cell)
            assert response.completed_jobs == len(cell), response.model_dump(exclude={"results"})
        after = checkpointed_size(store)
        with store.read() as tx:
            indexes = tx.connection.execute(KEY_INDEXES).fetchall()
        payload = len(pack_results([r.model_dump() for r in response.results]))

        for added in range(1, args.sweep + 1):
            swept = engine.simulate_jobs(configs[: args.configs + added])
            assert swept.completed_jobs == args.configs + added
        swept_size = checkpointed_size(store)
        batch_id = swept.batch_id or ""
        read, _ = best_of(args.repeat, lambda: store.get_batch(batch_id), clock=time.process_time)
        packed = pack_results([r.model_dump() for r in swept.results])
        bound, _ = best_of(args.repeat, lambda: unpack_results(packed), clock=time.process_time)
        engine.close()

    growth, sweep_growth = after - before, swept_size - after
    swept_results = sum(args.configs + added for added in range(1, args.sweep + 1))
    print(f"{len(configs):,} completed jobs (prepared in {prepared:.0f} s); {args.calls} all-cached calls of "
          f"{len(cell):,} configs")  # fmt: skip
    print(f"  store before the calls: {before / 1e6:9.1f} MB")
    print(f"  store after the calls:  {after / 1e6:9.1f} MB  (+{growth / 1e6:.1f} MB, {growth / before:.1%}; "
          f"target: at most 10%)")  # fmt: skip
    print(f"  recorded inline, each call's results ({payload / 1e6:.1f} MB) would add "
          f"{args.calls * payload / 1e6:.0f} MB: {args.calls * payload / before:.0%}")  # fmt: skip
    print(f"  repeated calls: {growth / (args.calls * len(cell)):.1f} bytes per result (inline: "
          f"{payload / len(cell):.0f})")  # fmt: skip
    print(
        f"  sweep, {args.sweep} calls of one config more each: +{sweep_growth / 1e6:.2f} MB, "
        f"{sweep_growth / swept_results:.1f} bytes per result ({sweep_growth / args.sweep / 1e3:.0f} kB a call)"
    )
    print(f"  get_batch of {len(swept.results):,} results: {read * 1e3:.1f} ms; decoding them from one packed "
          f"array: {bound * 1e3:.1f} ms ({read / bound:.2f}x)")  # fmt: skip
    for index, size in indexes:
        print(f"  index {index}: {size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
