"""Pipelines survive their releasers: kill -9 of the worker and of the server mid-pipeline leaves every step
ending exactly once (the next server releases what the dead one left), and two engines releasing one store at
once never give a step two jobs."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import Any

from http_support import subprocess_server
from pipeline_support import chain, register, wait_done
from support import shutdown_home, wait_until

from dshpc_jupyter.backends.embedded import EmbeddedBackend
from dshpc_jupyter.backends.http import HttpBackend
from dshpc_jupyter.domain.home import Home
from dshpc_jupyter.front.connection import Connection
from dshpc_jupyter.schedulers.local import worker_pid
from dshpc_jupyter.service.factory import open_engine


def slow_chain() -> dict[str, Any]:
    steps = chain()
    steps["make"]["parameters"]["sleep"] = 2
    return steps


def test_kill_9_of_the_worker_and_the_server_mid_pipeline(home: Path, tmp_path: Path) -> None:
    try:
        with subprocess_server(home) as (url, server):
            conn = Connection(HttpBackend(url))
            register(conn, tmp_path / "methods")
            pipeline_id = conn.submit_pipeline(slow_chain()).pipeline_id
            wait_until(lambda: conn.pipeline(pipeline_id).steps["make"].state == "running", what="make to run")
            pid = worker_pid(Home.open(home))
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            os.kill(server.pid, signal.SIGKILL)
            server.wait(timeout=30)
            conn.close()
        with subprocess_server(home) as (url, _):  # a new server on the same home: it releases the rest
            conn = Connection(HttpBackend(url))
            done = wait_done(conn, pipeline_id)
            assert {n: s.state for n, s in done.steps.items()} == dict.fromkeys(chain(), "completed")
            jobs = conn.list_jobs()
            assert len(jobs) == 3 and {j.status for j in jobs} == {"CD"}, "each step ran exactly once"
            conn.close()
    finally:
        shutdown_home(home)


def test_two_engines_releasing_one_store_give_each_step_one_job(home: Path, tmp_path: Path) -> None:
    first, second = Connection(EmbeddedBackend(open_engine(home))), Connection(EmbeddedBackend(open_engine(home)))
    try:
        register(first, tmp_path / "methods")
        steps: dict[str, Any] = {f"t{n}": {"method_name": "Make Table", "parameters": {"n": n}} for n in range(20)}
        for n in range(1, 20):
            steps[f"c{n}"] = {"method_name": "Count Bytes", "file_hash": {"$ref": f"t{n}", "output": "table.csv"}}
        pipeline_id = first.submit_pipeline(steps).pipeline_id
        lookers = [threading.Thread(target=wait_done, args=(c, pipeline_id)) for c in (first, second) * 2]
        for looker in lookers:
            looker.start()
        for looker in lookers:
            looker.join(timeout=120)
        done = wait_done(first, pipeline_id)
        # t0 has n=0: its table is empty and its mean divides by zero, so it fails; the others complete
        assert done.statistics.completed == 38 and done.statistics.failed == 1
        assert len(first.list_jobs(limit=1000)) == 39, "one job per released step, whoever released it"
    finally:
        first.close()
        second.close()
        shutdown_home(home)
