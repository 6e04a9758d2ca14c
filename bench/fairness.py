"""Fair share on the local worker: 8 jobs submitted behind a 2,000-job batch, against the same 8 on an idle worker.

Both are measured in the same run on the same real local worker (its default slots, real runner processes):
first the 8 alone (the baseline), then a 2,000-job batch, and once it runs, 8 more jobs in a new batch. The
time is from submitting the 8 to the moment all 8 have completed (polled every 20 ms). Round-robin across
batches of equal priority (docs/design.md section 13.2) should keep the ratio within 2x; first-come order
would make the 8 wait for the whole big batch (estimated from its throughput and printed beside it).
The big batch is cancelled at the end.

Run: ``python bench/fairness.py [--big 2000] [--small 8] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from dshpc_jupyter.domain import status as st
from dshpc_jupyter.service.engine import Engine
from dshpc_jupyter.service.factory import open_engine

ECHO = "import json, sys\nprint(json.dumps(json.load(open(sys.argv[1]))))\n"
SPEC = (
    '{"name": "Echo", "command": "python3", "script_path": "echo.py", "version": "1",'
    ' "parameters": [{"name": "tag", "type": "string"}]}'
)
POLL_S = 0.02
TIMEOUT_S = 600.0


def submit(engine: Engine, tags: Sequence[str]) -> list[str]:
    response = engine.simulate_jobs([{"method_name": "Echo", "parameters": {"tag": t}} for t in tags])
    ids = [r.job_id for r in response.results if r.job_id]
    assert len(ids) == len(tags) and response.successful_submissions == len(tags), response.model_dump()
    return ids


def time_until_done(engine: Engine, tags: Sequence[str]) -> float:
    """Seconds from submitting these jobs to all of them completed."""
    start = time.perf_counter()
    ids = submit(engine, tags)
    deadline = start + TIMEOUT_S
    while True:
        records = engine.job_statuses(ids)
        if all(st.is_final(r.status) for r in records):
            assert {r.status for r in records} == {st.COMPLETED}, [r.error for r in records]
            return time.perf_counter() - start
        if time.perf_counter() > deadline:
            raise SystemExit(f"the jobs did not end within {TIMEOUT_S} s")
        time.sleep(POLL_S)


def completed(engine: Engine, ids: Sequence[str]) -> int:
    return sum(r.status == st.COMPLETED for r in engine.job_statuses(ids))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--big", type=int, default=2000)
    parser.add_argument("--small", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        method = Path(tmp) / "echo"
        method.mkdir()
        (method / "method.json").write_text(SPEC, encoding="utf-8")
        (method / "echo.py").write_text(ECHO, encoding="utf-8")
        engine = open_engine(Path(tmp) / "home")
        try:
            engine.register_method(method)
            time_until_done(engine, ["warm-up"])  # the worker started, the interpreter's files cached
            idle = [time_until_done(engine, [f"idle{r}-{i}" for i in range(args.small)]) for r in range(args.repeat)]
            big = submit(engine, [f"big{i}" for i in range(args.big)])
            started = time.perf_counter()
            while completed(engine, big) < 20:
                time.sleep(0.1)
            rate = completed(engine, big) / (time.perf_counter() - started)
            busy = []
            for r in range(args.repeat):
                busy.append(time_until_done(engine, [f"busy{r}-{i}" for i in range(args.small)]))
            left = args.big - completed(engine, big)
            engine.cancel(big)
        finally:
            engine.close()
    idle_median, busy_median = statistics.median(idle), statistics.median(busy)
    print(f"{args.small} jobs on the local worker, median of {args.repeat} (each run's seconds in brackets)")
    print(f"  idle worker:               {idle_median:6.2f} s  {[round(t, 2) for t in idle]}")
    print(f"  behind a {args.big}-job batch:  {busy_median:6.2f} s  {[round(t, 2) for t in busy]}")
    print(f"  ratio: {busy_median / idle_median:.2f}x (target: within 2x)")
    print(f"  first-come order would wait for the {left} big jobs left: about {left / rate:.0f} s at {rate:.1f} jobs/s")


if __name__ == "__main__":
    main()
