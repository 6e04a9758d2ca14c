"""Benchmark: what confining a job costs, per job, through the runner itself.

    python bench/sandbox.py [--jobs 40] [--input-mb 1]

Runs the same trivial Python method ``--jobs`` times with ``runner.run_task`` two ways, alternating, so both
see the same load: the baseline is the no-sandbox fallback (``DSHPC_SANDBOX=none``: a clean environment, the
input's hash check, ``nobody`` under root), against bubblewrap (when it works here). Prints the time per job
and the ratio to the baseline; a larger ``--input-mb`` shows the hash check's share (it hashes the input).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from dshpc_jupyter.schedulers import runner, sandbox

SCRIPT = "import sys\nprint(len(open(sys.argv[1], 'rb').read()))\n"


def _task(root: Path, index: int, way: str, input_file: Path, method: Path) -> runner.Task:
    workspace = root / "jobs" / way[:2] / f"{way}-{index}"
    return runner.Task(
        job_id=f"{way}-{index}", workspace=str(workspace), command="/usr/bin/python3", script=str(method / "m.py"),
        input_file=str(input_file), method_dir=str(method), method_name="Bench", parameters={},
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=40)
    parser.add_argument("--input-mb", type=float, default=1.0)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="dshpc-bench-sandbox-", dir="/tmp"))
    root.chmod(0o755)
    (root / "store.sqlite").write_bytes(b"")  # marks root as a home, as the sandbox looks for
    data = os.urandom(int(args.input_mb * (1 << 20)))
    input_file = root / "files" / hashlib.sha256(data).hexdigest()
    input_file.parent.mkdir(parents=True)
    input_file.write_bytes(data)
    method = root / "methods" / "bench"
    method.mkdir(parents=True)
    (method / "m.py").write_text(SCRIPT)
    ways = {"baseline": "none", "bwrap": "bwrap"}
    if sandbox.bubblewrap() is None:
        del ways["bwrap"]
        print("bubblewrap does not work here: only the baseline is measured")
    times: dict[str, list[float]] = {way: [] for way in ways}
    for index in range(args.jobs):
        for way, mode in ways.items():
            os.environ[sandbox.SANDBOX_ENV] = mode
            began = time.perf_counter()
            result = runner.run_task(_task(root, index, way, input_file, method))
            times[way].append(time.perf_counter() - began)
            assert result.status == "CD", result.error
    shutil.rmtree(root, ignore_errors=True)
    base = statistics.median(times["baseline"])
    print(f"{args.jobs} jobs each, input {args.input_mb:g} MiB, euid {os.geteuid()} ({sys.platform})")
    for way, measured in times.items():
        median = statistics.median(measured)
        print(
            f"{way:>9}: median {median * 1000:7.1f} ms/job, best {min(measured) * 1000:7.1f} ms, x{median / base:.2f}"
        )


if __name__ == "__main__":
    main()
