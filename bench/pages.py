"""A paged walk of a 1,000,000-job store at constant memory.

Builds a store of ``--jobs`` job rows (recorded directly, nothing runs), then walks ``GET /jobs``'s pages
through the embedded backend (``Connection.jobs_page``, pages of ``--page``), keeping only a count. Baselines
measured in the same run: the same walk over the first 1% of the store (peak memory must not grow with the
walk's length), and the first and last pages' times (a cursor is a range query: a page deep in the store
costs what the first does). Memory is Python's own allocations (tracemalloc), peak during each walk.

Run: ``python bench/pages.py [--jobs 1000000] [--page 1000]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path

from dshpc_jupyter.backends.embedded import EmbeddedBackend
from dshpc_jupyter.front.blocking import Connection
from dshpc_jupyter.service.factory import open_engine
from dshpc_jupyter.store.sqlite import NewJob

CHUNK = 50_000


def build(home: Path, jobs: int) -> None:
    engine = open_engine(home)
    try:
        for start in range(0, jobs, CHUNK):
            now = time.time()
            with engine.store.write() as tx:
                tx.insert_jobs(
                    NewJob(i, i, "", "Echo", "0" * 64, '{"n": 1}', now, "nowhere")
                    for i in (uuid.uuid4().hex for _ in range(min(CHUNK, jobs - start)))
                )
    finally:
        engine.close()


def walk(conn: Connection, page: int, most: int) -> tuple[int, float, float, float, int]:
    """(rows seen, seconds, first page's seconds, last page's seconds, peak bytes) of a walk of ``most`` rows."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    seen, cursor, times = 0, None, []
    start = time.perf_counter()
    while seen < most:
        before = time.perf_counter()
        result = conn.jobs_page(limit=page, cursor=cursor)
        times.append(time.perf_counter() - before)
        seen += len(result.items)
        cursor = result.next_cursor
        if cursor is None:
            break
    elapsed = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return seen, elapsed, times[0], times[-1], peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--page", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        started = time.perf_counter()
        build(home, args.jobs)
        print(f"store of {args.jobs:,} jobs built in {time.perf_counter() - started:.1f} s")
        with Connection(EmbeddedBackend(open_engine(home))) as conn:
            short = walk(conn, args.page, args.jobs // 100)
            whole = walk(conn, args.page, args.jobs)
    assert whole[0] == args.jobs, whole
    for label, (seen, elapsed, first, last, peak) in (("1% of the store", short), ("the whole store", whole)):
        print(
            f"  walk of {label} ({seen:,} rows, pages of {args.page}): {elapsed:6.1f} s, {seen / elapsed:9,.0f} rows/s,"
            f" first page {first * 1e3:.1f} ms, last page {last * 1e3:.1f} ms, peak memory {peak / 2**20:.1f} MiB"
        )
    print(f"  peak memory, whole / 1%: {whole[4] / short[4]:.2f}x (constant memory: about 1x)")
    print(f"  last page / first page: {whole[3] / whole[2]:.2f}x (a page deep in the store costs what the first does)")


if __name__ == "__main__":
    main()
