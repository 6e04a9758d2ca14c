"""Fault injection: a database locked past the busy timeout by a second process holding ``BEGIN EXCLUSIVE``
(issue 14, item 4). Writes answer 503 with ``Retry-After`` after the bounded wait, reads answer at once while
those writes wait, the worker waits the lock out and finishes its job, and nothing stored changes."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from http_support import thread_server
from support import wait_for_jobs, wait_until, write_method

from dshpc_jupyter.domain.home import Home
from dshpc_jupyter.schedulers.local import log_path, worker_pid
from dshpc_jupyter.service.factory import open_engine

CHILD = str(Path(__file__).with_name("child_programs.py"))
BUSY_S = 2.0


@contextmanager
def exclusive_lock(home: Path, tmp_path: Path, seconds: float = 60) -> Iterator[Path]:
    """Another process holding ``BEGIN EXCLUSIVE`` on the home's store; released at exit (the file it gives)."""
    marker, release = tmp_path / "locked", tmp_path / "release"
    db = str(Home.open(home).db_path)
    holder = subprocess.Popen([sys.executable, CHILD, "exclusive", db, str(marker), str(release), str(seconds)])
    try:
        wait_until(lambda: marker.exists() or holder.poll() is not None, 30, "the lock to be taken")
        assert holder.poll() is None
        yield release
    finally:
        release.touch()
        holder.wait(timeout=30)


def _upload_body(data: bytes) -> dict[str, str]:
    return {"content": base64.b64encode(data).decode(), "file_hash": hashlib.sha256(data).hexdigest()}


def test_writes_get_503_and_reads_do_not_queue_behind_them(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DSHPC_BUSY_TIMEOUT", str(BUSY_S))
    with thread_server(home) as url:
        assert httpx.post(f"{url}/files/upload", json=_upload_body(b"before the lock")).status_code == 201
        config = {"file_hash": hashlib.sha256(b"before the lock").hexdigest(), "method_name": "none"}
        before = httpx.get(f"{url}/files").json()
        writes: list[httpx.Response] = []
        with exclusive_lock(home, tmp_path):
            threads = [
                threading.Thread(
                    target=lambda i=i: writes.append(
                        httpx.post(f"{url}/files/upload", json=_upload_body(b"write %d" % i), timeout=60)
                    )
                )
                for i in range(16)  # twice the write capacity: blocked writes fill it
            ]
            for thread in threads:
                thread.start()
            time.sleep(0.3)
            for read in ("/files", "/jobs", "/services/status", "/batches"):
                began = time.monotonic()
                assert httpx.get(url + read, timeout=60).status_code == 200, read
                assert time.monotonic() - began < BUSY_S / 2, f"{read} waited behind the blocked writes"
            began = time.monotonic()
            dry = httpx.post(f"{url}/simulate-jobs?dry_run=true", json={"jobs": [config]}, timeout=60)
            assert dry.status_code == 200 and time.monotonic() - began < BUSY_S / 2
            for thread in threads:
                thread.join(timeout=120)
        assert len(writes) == 16
        for answer in writes:
            assert answer.status_code == 503, answer.text
            assert answer.headers["Retry-After"].isdigit()
            assert "holds the write lock" in answer.json()["detail"]
        assert httpx.get(f"{url}/files").json() == before
        assert httpx.post(f"{url}/files/upload", json=_upload_body(b"after the lock")).status_code == 201


SLOW = "import time\ntime.sleep(1.0)\nprint('{\"done\": true}')\n"


def test_the_worker_waits_the_lock_out(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DSHPC_BUSY_TIMEOUT", "0.5")
    engine = open_engine(home, slots=1)
    try:
        engine.register_method(write_method(tmp_path, "Slow", SLOW))
        file_hash = engine.upload_file(b"locked input").file_hash
        job_id = str(engine.simulate_job({"file_hash": file_hash, "method_name": "Slow"}).job_id)
        wait_until(lambda: engine.store.get_jobs([job_id])[0].status == "R", 30, "the job to run")
        with exclusive_lock(home, tmp_path):
            log = log_path(engine.home)
            wait_until(lambda: "jobs wait" in log.read_text(), 30, "the worker to say why jobs wait")
            assert worker_pid(engine.home) is not None
        (job,) = wait_for_jobs(engine, [job_id])
        assert job.status == "CD" and job.output is not None and "done" in job.output
    finally:
        engine.close()
