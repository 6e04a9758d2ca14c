"""Retries on the real single-node Slurm: a job over its time limit and one over its memory limit run again
under the same job id, resubmitted with ``--time``/``--mem`` raised, and complete (docs/design.md section 12.1)."""

from __future__ import annotations

import json
import subprocess

from support import wait_for_jobs, write_method
from test_slurm import SLEEP_PARAMS, EngineFactory, hashes, slurm_engine, submit

from dshpc_jupyter.domain import status as st
from dshpc_jupyter.domain.models import MethodResources, MethodSpec
from dshpc_jupyter.domain.retries import SubmitOptions
from dshpc_jupyter.schedulers.base import Submission
from dshpc_jupyter.schedulers.slurm import SlurmScheduler
from dshpc_jupyter.schedulers.slurm_cli import parse_node_memory, run

__all__ = ["slurm_engine"]  # the fixture, used by name

HOARD = """\
import json, sys, time
p = json.load(open(sys.argv[2]))
hoard = [b"x" * (1 << 20) for _ in range(int(p.get("mb", 0)))]
time.sleep(p["seconds"])
print(json.dumps({"held": len(hoard)}))
"""


def test_slurm_retries_a_timeout_and_an_out_of_memory_with_more_of_each(slurm_engine: EngineFactory) -> None:
    engine = slurm_engine()
    params = [*SLEEP_PARAMS, {"name": "mb", "type": "integer", "default": 0}]
    write_method(
        engine.home.root / "extra", "Tight", HOARD, parameters=params, resources={"time": "0:02", "mem": "96M"}
    )
    engine.register_method(engine.home.root / "extra")
    hello = hashes(engine)["hello.txt"]
    slow = {"file_hash": hello, "method_name": "Tight", "parameters": {"seconds": 3.5}}
    big = {"file_hash": hello, "method_name": "Tight", "parameters": {"seconds": 0.5, "mb": 120}}
    retry = {"attempts": 2, "on": ["TO", "OOM"], "mem_factor": 2, "time_factor": 3}
    ids = submit(engine, [slow, big], SubmitOptions.of(retry=retry))
    first_tasks = {r.job_id: r.scheduler_id for r in engine.job_statuses(ids)}
    records = wait_for_jobs(engine, ids, timeout=180)
    for record, code, raised in zip(records, (st.TIMEOUT, st.OUT_OF_MEMORY), ({"time": "0:06"}, {"mem": "192M"}),
                                    strict=True):  # fmt: skip
        assert (record.status, record.attempt, record.scheduler) == (st.COMPLETED, 2, "slurm"), record.error
        [ended] = record.attempts
        assert ended.status == code and ended.resources == {"time": "0:02", "mem": "96M"}
        assert {k: record.resources[k] for k in raised} == raised
        assert record.scheduler_id != first_tasks[record.job_id], "the retry is a new array task"
        kept = engine.home.workspace(record.job_id) / "attempts" / "1" / "result.json"
        assert json.loads(kept.read_text())["status"] == code
    assert json.loads(records[1].output or "") == {"held": 120}
    task = records[1].scheduler_id or ""
    shown = subprocess.run(["scontrol", "show", "job", task], capture_output=True, text=True, check=False).stdout
    if shown:  # still known to the controller (MinJobAge): the retry asked Slurm for the raised memory
        assert "MinMemoryNode=192M" in shown or "mem=192M" in shown, shown


def test_a_retry_never_asks_for_more_memory_than_the_partition_s_nodes_have(slurm_engine: EngineFactory) -> None:
    engine = slurm_engine()
    scheduler = engine.scheduler
    assert isinstance(scheduler, SlurmScheduler)
    node = parse_node_memory(run(["sinfo", "-h", "-N", "-o", "%m"]))
    assert node is not None and node > 0
    spec = MethodSpec(name="Big", command="python3", script_path="m.py", resources=MethodResources(mem="100000G"))
    first = Submission("j", "", "f", spec, {}, None, 1)
    assert scheduler._within_node(first) is first, "a first attempt asks for what its method says"
    retry = scheduler._within_node(Submission("j", "", "f", spec, {}, None, 2))
    assert retry.spec.resources.mem == f"{node >> 20}M"
    assert parse_node_memory("  2000\n1500+\nnot a size\n") == 1500 << 20 and parse_node_memory("") is None
