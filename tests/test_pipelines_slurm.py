"""Pipelines on the local Slurm (the Slurm suite): the engine releases each step as its upstream's Slurm job
completes, outputs and JSON values flow down a chain, a fan-in gathers a sweep, and a failure cancels its
dependents while an independent branch completes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pipeline_support import chain, register, wait_done

from dshpc_jupyter.backends.embedded import EmbeddedBackend
from dshpc_jupyter.front.connection import Connection
from dshpc_jupyter.service.factory import open_engine


@pytest.fixture
def slurm_conn(local_slurm: Path, home: Path, tmp_path: Path) -> Iterator[Connection]:
    engine = open_engine(home, "slurm", poll_interval=0.2)
    conn = Connection(EmbeddedBackend(engine))
    register(conn, tmp_path / "methods")
    try:
        yield conn
    finally:
        active = [job.job_id for job in engine.store.active_jobs("slurm")]
        if active:
            engine.cancel(active)
        conn.close()


def test_a_pipeline_runs_on_slurm_released_by_the_engine(slurm_conn: Connection) -> None:
    steps: dict[str, Any] = chain()
    steps.update({f"t{n}": {"method_name": "Make Table", "parameters": {"n": n}} for n in range(1, 13)})
    steps["sum"] = {
        "method_name": "Sum Tables",
        "file_inputs": {"tables": [{"$ref": f"t{n}", "output": "table.csv"} for n in range(1, 13)]},
    }
    steps["bad"] = {"method_name": "Fail If", "parameters": {"fail": True}}
    steps["after_bad"] = {"method_name": "Count Bytes", "file_hash": {"$ref": "bad"}}  # fmt: skip
    done = wait_done(slurm_conn, slurm_conn.submit_pipeline(steps).pipeline_id, timeout=300)
    assert json.loads(done.steps["scale"].output or "") == {"total": 25.0}
    assert json.loads(done.steps["count"].output or "") == {"bytes": len(done.steps["scale"].output or "")}
    assert json.loads(done.steps["sum"].output or "") == {"total": sum(n * (n + 1) / 2 for n in range(1, 13))}
    assert (done.steps["bad"].state, done.steps["after_bad"].reason) == ("failed", "dependency bad failed")
    assert done.statistics.completed == 16 and done.statistics.cancelled == 1
    assert {slurm_conn.get_job(s.job_id or "").scheduler for s in done.steps.values() if s.job_id} == {"slurm"}
    again = wait_done(slurm_conn, slurm_conn.submit_pipeline(chain()).pipeline_id, timeout=60)
    assert again.statistics.new_jobs == 0, "the same steps again: all cached"
