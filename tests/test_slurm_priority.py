"""On the real single-node Slurm (scripts/local-slurm.sh): a priority becomes the array's ``--nice`` (higher
priority, lower nice), seen in ``squeue``; a job's log is followed from its workspace on the shared disk."""

from __future__ import annotations

import subprocess
from pathlib import Path

from support import write_method

from dshpc_jupyter.backends.embedded import EmbeddedBackend
from dshpc_jupyter.front.connection import Connection
from dshpc_jupyter.service.factory import open_engine

SLEEPER = "import time\ntime.sleep(20)\n"


def squeue_nice(array_id: str) -> set[int]:
    out = subprocess.run(["squeue", "-h", "-j", array_id, "-o", "%y"], capture_output=True, text=True, check=True)
    return {int(line) for line in out.stdout.split()}


def test_priority_becomes_nice_in_squeue(local_slurm: Path, home: Path, tmp_path: Path) -> None:
    engine = open_engine(home, "slurm", poll_interval=0.2)
    submitted: dict[int, str] = {}
    try:
        engine.register_method(write_method(tmp_path / "m", "Sleeper", SLEEPER, parameters=[
            {"name": "n", "type": "integer"}]))  # fmt: skip
        for n, priority in enumerate((5, -3, 0)):
            response = engine.simulate_jobs([{"method_name": "Sleeper", "parameters": {"n": n}}], priority=priority)
            job_id = response.results[0].job_id
            assert job_id and response.results[0].outcome == "new", response.results
            submitted[priority] = job_id
        for priority, job_id in submitted.items():
            (record,) = engine.job_statuses([job_id])
            assert record.scheduler_id, record
            assert squeue_nice(record.scheduler_id.partition("_")[0]) == {-priority}, priority
    finally:
        engine.cancel(list(submitted.values()))
        engine.close()


def test_a_slurm_jobs_log_is_followed_from_the_shared_workspace(local_slurm: Path, home: Path, tmp_path: Path) -> None:
    printer = "import time\nfor i in range(4):\n    print(f'line {i}', flush=True)\n    time.sleep(0.5)\n"
    engine = open_engine(home, "slurm", poll_interval=0.2)
    conn = Connection(EmbeddedBackend(engine))
    try:
        conn.register_method(write_method(tmp_path / "m", "Printer", printer))
        job_id = conn.simulate_jobs([{"method_name": "Printer"}]).results[0].job_id
        assert job_id
        assert "".join(conn.logs(job_id, poll=0.2)) == "".join(f"line {i}\n" for i in range(4))
        assert conn.get_job(job_id).status == "CD"
    finally:
        conn.close()
