"""Fault injection: kill -9 of the server and the worker together (issue 14, item 5). The next server resumes
every job at once, without any client asking about one; the store is watched with plain sqlite3, read-only, so
watching starts nothing."""

from __future__ import annotations

import base64
import hashlib
import os
import signal
import sqlite3
from pathlib import Path

import httpx
from http_support import subprocess_server
from support import wait_until, write_method

from dshpc_jupyter.domain.home import Home
from dshpc_jupyter.schedulers.local import worker_pid

SLOW = "import json, sys, time\ntime.sleep(0.3)\nprint(json.dumps(json.load(open(sys.argv[2]))))\n"


def _statuses(home: Path) -> dict[str, str]:
    with sqlite3.connect(f"file:{Home.open(home).db_path}?mode=ro", uri=True) as conn:
        return dict(conn.execute("SELECT job_id, status FROM jobs").fetchall())


def test_a_new_server_resumes_jobs_left_by_killed_server_and_worker(home: Path, tmp_path: Path) -> None:
    method = write_method(tmp_path, "Slow", SLOW, parameters=[{"name": "i", "type": "integer", "required": True}])
    data = b"resume me\n"
    with subprocess_server(home, methods=[str(method)]) as (url, server):
        upload = {"content": base64.b64encode(data).decode(), "file_hash": hashlib.sha256(data).hexdigest()}
        assert httpx.post(f"{url}/files/upload", json=upload).status_code == 201
        configs = [{"file_hash": upload["file_hash"], "method_name": "Slow", "parameters": {"i": i}} for i in range(8)]
        answer = httpx.post(f"{url}/simulate-jobs", json={"jobs": configs}, timeout=30).json()
        assert answer["successful_submissions"] == 8
        wait_until(lambda: "R" in _statuses(home).values(), 30, "a job to run")
        worker = worker_pid(Home.open(home))
        assert worker is not None
        os.kill(server.pid, signal.SIGKILL)
        os.kill(worker, signal.SIGKILL)
        server.wait(timeout=10)
        wait_until(lambda: worker_pid(Home.open(home)) is None, 10, "the worker to die")
    left = _statuses(home)
    assert len(left) == 8 and any(status in ("PD", "R") for status in left.values()), left
    with subprocess_server(home):  # no request but /health: the server alone must resume the jobs
        wait_until(lambda: set(_statuses(home).values()) == {"CD"}, 60, "every job to complete")
    assert set(_statuses(home)) == set(left)
