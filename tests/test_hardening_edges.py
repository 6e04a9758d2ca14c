"""Fault injection: the smaller holes (issue 14, item 8) against a real server, each with the real condition:
racing uploads from threads, raw sockets for headers and stalled bodies, a method killed by SIGKILL."""

from __future__ import annotations

import base64
import hashlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from http_support import thread_server
from support import wait_for_jobs, write_method

from dshpc_jupyter.service.engine import Engine
from dshpc_jupyter.service.factory import open_engine

KEY = "k3y-for-the-edges"


@pytest.fixture
def keyed(home: Path) -> Iterator[str]:
    with thread_server(home, api_key=KEY, body_timeout=1.0) as url:
        yield url


def test_concurrent_identical_uploads_answer_201_once(keyed: str) -> None:
    data = b"the same bytes from every client\n" * 1000
    body = {"content": base64.b64encode(data).decode(), "file_hash": hashlib.sha256(data).hexdigest()}
    codes: list[int] = []
    start = threading.Barrier(12)

    def upload() -> None:
        with httpx.Client(headers={"X-API-Key": KEY}, timeout=30) as client:
            start.wait()
            codes.append(client.post(f"{keyed}/files/upload", json=body).status_code)

    threads = [threading.Thread(target=upload) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(codes) == [201] + [409] * 11
    listed = httpx.get(f"{keyed}/files", headers={"X-API-Key": KEY}).json()
    assert [f["file_hash"] for f in listed] == [hashlib.sha256(data).hexdigest()]


def test_docs_and_schema_need_the_key_when_one_is_set(keyed: str) -> None:
    for path in ("/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"):
        assert httpx.get(keyed + path).status_code == 401, path
    assert httpx.get(keyed + "/openapi.json", headers={"X-API-Key": KEY}).json()["info"]["title"] == "dsHPC API"
    assert httpx.get(keyed + "/health").status_code == 200


def test_two_key_headers_are_refused_even_when_the_last_is_right(keyed: str) -> None:
    answer = httpx.get(keyed + "/files", headers=[("X-API-Key", "wrong"), ("X-API-Key", KEY)])
    assert answer.status_code == 400 and "more than once" in answer.json()["detail"]
    answer = httpx.get(keyed + "/files", headers=[("X-API-Key", KEY), ("X-API-Key", KEY)])
    assert answer.status_code == 400


def test_a_non_ascii_key_is_a_clean_401(keyed: str) -> None:
    answer = httpx.get(keyed + "/files", headers=[(b"X-API-Key", "k\u00e9y\u2603".encode())])
    assert answer.status_code == 401 and "Invalid API key" in answer.json()["detail"]


def test_a_non_ascii_server_key_is_one_line_from_the_command(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess
    import sys

    env = {"PATH": "/usr/bin:/bin", "BAD_KEY": "caf\u00e9", "DSHPC_HOME": str(home)}
    done = subprocess.run(
        [sys.executable, "-m", "dshpc_jupyter.cli", "--api-key-env", "BAD_KEY", "serve", "--port", "0"],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert done.returncode == 2 and done.stderr == ""
    assert done.stdout.strip().count("\n") == 0 and "api_key" in done.stdout


def test_get_file_takes_the_hash_in_any_case(keyed: str) -> None:
    data = b"mixed case\n"
    digest = hashlib.sha256(data).hexdigest()
    with httpx.Client(headers={"X-API-Key": KEY}) as client:
        assert (
            client.post(
                f"{keyed}/files/upload", json={"content": base64.b64encode(data).decode(), "file_hash": digest}
            ).status_code
            == 201
        )
        assert client.get(f"{keyed}/files/{digest.upper()}").json()["file_hash"] == digest


def test_a_body_that_never_arrives_gets_408_and_frees_the_connection(keyed: str) -> None:
    host, port = keyed.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        raw.sendall(
            f"POST /simulate-jobs HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\nContent-Type: application/json\r\n"
            'Content-Length: 1000\r\n\r\n{"jobs": ['.encode()
        )
        began = time.monotonic()
        answer = ""
        while "did not arrive" not in answer and time.monotonic() - began < 5:
            chunk = raw.recv(4096).decode()
            if not chunk:
                break
            answer += chunk
        assert time.monotonic() - began < 5
    assert answer.startswith("HTTP/1.1 408") and "did not arrive within 1 s" in answer


def test_appending_to_a_batch_is_bounded(home: Path) -> None:
    engine = open_engine(home)
    try:
        engine.max_batch_configs = 5
        configs = [{"file_hash": "0" * 64, "method_name": "none", "parameters": {"i": i}} for i in range(3)]
        first = engine.simulate_jobs(configs)
        with pytest.raises(Exception, match="limit of 5 per batch"):
            engine.simulate_jobs(configs, append_to=first.batch_id)
        assert engine.batch(str(first.batch_id)).total_jobs == 3
        engine.simulate_jobs(configs[:2], append_to=first.batch_id)
        assert engine.batch(str(first.batch_id)).total_jobs == 5
    finally:
        engine.close()


def test_a_method_killed_by_a_signal_says_so(engine: Engine, tmp_path: Path) -> None:
    method = write_method(tmp_path, "Suicide", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n")
    engine.register_method(method)
    file_hash = engine.list_files()[0].file_hash
    job_id = engine.simulate_job({"file_hash": file_hash, "method_name": "Suicide"}).job_id
    (job,) = wait_for_jobs(engine, [str(job_id)])
    assert job.status == "F"
    assert "killed by signal SIGKILL" in (job.error or "")
