"""Fault injection: a full disk (issue 14, item 3), for real: the home is a 16 MiB tmpfs, filled to the last
byte. Writes that need space answer 507 naming the disk, cached answers are still served, no partial upload is
left behind, ``/services/status`` says so, and the worker outlives it and runs the waiting job once there is
space again."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from http_support import thread_server
from support import shutdown_home, wait_for_jobs, wait_until, write_method

import dshpc_jupyter
from dshpc_jupyter.domain.errors import DiskFullError
from dshpc_jupyter.schedulers.local import worker_pid
from dshpc_jupyter.service.factory import open_engine

HELD = """\
import os, time
deadline = time.time() + 60
while not os.path.exists(os.path.join(os.environ["JOB_WORKSPACE"], "release")) and time.time() < deadline:
    time.sleep(0.02)
print('{"done": true}')
"""


@pytest.fixture
def small_home(tmp_path: Path) -> Iterator[Path]:
    """A home on its own 16 MiB tmpfs, unmounted at the end."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount_point)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root in a privileged container): {done.stderr.decode()}")
    try:
        yield mount_point / "home"
        if (mount_point / "home").exists():
            (mount_point / "filler").unlink(missing_ok=True)
            shutdown_home(mount_point / "home")
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def _fill(disk: Path) -> Path:
    """Write a file until the disk has no byte left (blocks of shrinking size, down to one byte)."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        block = 1 << 20
        while block:
            try:
                os.write(fd, b"\0" * block)
            except OSError:
                block //= 2
    finally:
        os.close(fd)
    return filler


def _body(data: bytes) -> dict[str, str]:
    return {"content": base64.b64encode(data).decode(), "file_hash": hashlib.sha256(data).hexdigest()}


def test_a_full_disk_gives_507_serves_the_cache_and_the_worker_survives(small_home: Path, tmp_path: Path) -> None:
    engine = open_engine(small_home, slots=1)
    try:
        engine.register_method(write_method(tmp_path, "Held", HELD))
        engine.register_method(write_method(tmp_path, "Quick", "print('{\"quick\": true}')\n"))
        file_hash = engine.upload_file(b"before the disk filled\n").file_hash
        cached = {"file_hash": file_hash, "method_name": "Quick"}
        (done,) = wait_for_jobs(engine, [str(engine.simulate_job(cached).job_id)])
        assert done.status == "CD"
        held_id = str(engine.simulate_job({"file_hash": file_hash, "method_name": "Held"}).job_id)
        wait_until(lambda: engine.store.get_jobs([held_id])[0].status == "R", 30, "the held job to run")
        waiting = engine.simulate_jobs([{"file_hash": file_hash, "method_name": "Quick", "parameters": {}}])
        assert waiting.results[0].message == "Completed job found"
        waiting_job = engine.simulate_jobs([{"file_hash": file_hash, "method_name": "Held", "parameters": {}}])
        assert waiting_job.results[0].message == "Job in progress"
    finally:
        engine.close()
    worker = worker_pid(engine.home)
    jobs_before = {job.job_id: job.status for job in open_engine(small_home).list_jobs()}
    with thread_server(small_home) as url:
        filler = _fill(small_home.parent)
        upload = httpx.post(f"{url}/files/upload", json=_body(b"no room for me\n" * 100), timeout=30)
        assert upload.status_code == 507, upload.text
        assert f"no space left on the disk holding {small_home}" in upload.json()["detail"]
        assert not list((small_home / "tmp").glob("upload-*"))
        client = dshpc_jupyter.connect(url=url)
        try:
            with pytest.raises(DiskFullError, match="no space left on the disk holding"):
                client.upload_file(b"nor for me\n" * 100)
        finally:
            client.close()
        answer = httpx.post(f"{url}/simulate-jobs", json={"jobs": [cached]}, timeout=30)
        assert answer.status_code == 200, answer.text
        assert answer.json()["results"][0]["message"] == "Completed job found"
        status = httpx.get(f"{url}/services/status").json()
        assert status["status"] == "degraded" and "no space left" in status["files_db"]["error"]
        assert worker_pid(engine.home) == worker
        filler.unlink()
        assert httpx.get(f"{url}/services/status").json()["status"] == "ok"
        (engine.home.workspace(held_id) / "release").touch()
    engine = open_engine(small_home)
    try:
        (held,) = wait_for_jobs(engine, [held_id])
        assert held.status == "CD"
        assert worker_pid(engine.home) == worker, "the worker survived the full disk"
        assert set(jobs_before) <= {job.job_id for job in engine.list_jobs()}
    finally:
        engine.close()
    assert os.path.ismount(small_home.parent)
