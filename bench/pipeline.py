"""A 1,000-step pipeline against a flat batch of the same 1,000 jobs, and the release delay along a chain.

Cases, in the same run, each on a fresh home with the local scheduler (every job runs):
- baseline: a flat batch of 1,000 no-op jobs, submitted and waited for (``Batch``-style: one call, then polls);
- pipeline: 999 independent no-op steps gathered by one (a parameter holding every step's JSON value), submitted
  with ``submit_pipeline`` and waited for; target: at most 1.5x the baseline end to end;
- release delay: a 30-step chain; for each edge, the time from the upstream job's end to its dependent's job
  being recorded; target: median at most 100 ms.

Run: ``python bench/pipeline.py [--steps 1000] [--chain 30]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from dshpc_jupyter.domain.home import Home
from dshpc_jupyter.front.connection import Connection, connect_async
from dshpc_jupyter.schedulers.local import stop_worker

NOOP = """import json, sys
with open(sys.argv[-1], encoding="utf-8") as f:
    p = json.load(f)
print(json.dumps({"i": p["i"], "n": len(p["values"])}))
"""


def method(root: Path) -> Path:
    directory = root / "noop"
    directory.mkdir(parents=True)
    spec = {"name": "Noop", "command": "python3", "script_path": "main.py", "parameters": [
        {"name": "i", "type": "integer", "required": True},
        {"name": "values", "type": "array", "required": False, "default": []},
    ]}  # fmt: skip
    (directory / "method.json").write_text(json.dumps(spec), encoding="utf-8")
    (directory / "main.py").write_text(NOOP, encoding="utf-8")
    return directory


def wait_jobs(conn: Connection, job_ids: list[str]) -> None:
    pending = set(job_ids)
    while pending:
        pending -= {j.job_id for j in conn.job_statuses(sorted(pending)) if j.status in ("CD", "F")}
        time.sleep(0.2)


def flat(conn: Connection, steps: int) -> float:
    start = time.perf_counter()
    configs = [{"method_name": "Noop", "parameters": {"i": i}} for i in range(steps)]
    wait_jobs(conn, [r.job_id for r in conn.simulate_jobs(configs).results if r.job_id])
    return time.perf_counter() - start


def pipeline(conn: Connection, steps: int) -> float:
    spec: dict[str, Any] = {f"s{i}": {"method_name": "Noop", "parameters": {"i": i}} for i in range(steps - 1)}
    spec["gather"] = {"method_name": "Noop", "parameters": {
        "i": -1, "values": [{"$ref": f"s{i}", "path": "i"} for i in range(steps - 1)]}}  # fmt: skip
    start = time.perf_counter()
    pipeline_id = conn.submit_pipeline(spec).pipeline_id
    while not conn.pipeline(pipeline_id).statistics.done:
        time.sleep(0.2)
    elapsed = time.perf_counter() - start
    detail = conn.pipeline(pipeline_id)
    assert detail.statistics.completed == steps, detail.statistics
    assert json.loads(detail.steps["gather"].output or "")["n"] == steps - 1
    return elapsed


def release_delays(conn: Connection, length: int) -> list[float]:
    spec: dict[str, Any] = {"c0": {"method_name": "Noop", "parameters": {"i": 1000}}}
    for i in range(1, length):
        spec[f"c{i}"] = {"method_name": "Noop", "parameters": {"i": {"$ref": f"c{i - 1}", "path": "i"},
                                                              "values": [i]}}  # fmt: skip
    pipeline_id = conn.submit_pipeline(spec).pipeline_id
    while not (detail := conn.pipeline(pipeline_id)).statistics.done:
        time.sleep(0.2)
    jobs = {j.job_id: j for j in conn.job_statuses([s.job_id for s in detail.steps.values() if s.job_id])}
    delays = []
    for i in range(1, length):
        up, down = jobs[detail.steps[f"c{i - 1}"].job_id or ""], jobs[detail.steps[f"c{i}"].job_id or ""]
        assert up.finished_at is not None
        delays.append((down.created_at - up.finished_at).total_seconds())
    return delays


def fresh(root: Path, name: str) -> Connection:
    conn = Connection(connect_async(home=root / name))
    conn.register_method(method(root / f"{name}-methods"))
    return conn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--chain", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        conns = {name: fresh(root, name) for name in ("flat", "pipeline", "chain")}
        try:
            base = flat(conns["flat"], args.steps)
            piped = pipeline(conns["pipeline"], args.steps)
            delays = release_delays(conns["chain"], args.chain)
        finally:
            for name, conn in conns.items():
                conn.close()
                stop_worker(Home.open(root / name))
    print(f"flat batch of {args.steps} jobs:         {base:7.2f} s  (baseline)")
    print(f"pipeline of {args.steps} steps:         {piped:7.2f} s  {piped / base:.2f}x the baseline (target <= 1.5x)")
    print(f"release delay along a {args.chain}-step chain: median {statistics.median(delays) * 1000:.0f} ms, "
          f"max {max(delays) * 1000:.0f} ms (target median <= 100 ms)")  # fmt: skip


if __name__ == "__main__":
    main()
