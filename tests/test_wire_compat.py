"""Two wire details of other clients, driven with plain httpx: the later dsHPC's R client authenticates with
``Authorization: Bearer <key>`` (as good as ``X-API-Key``), and the seed's ``POST /simulate-job`` answers 404
with the message as ``detail`` when no job can be made for an unknown method or file (our client still returns
the embedded answer)."""

from __future__ import annotations

from pathlib import Path

import httpx
from http_support import thread_server

from dshpc_jupyter.backends.http import HttpBackend
from dshpc_jupyter.examples import data_files, methods_dir
from dshpc_jupyter.front.connection import Connection
from dshpc_jupyter.service.factory import open_engine

KEY = "s3cret-key"


def test_bearer_is_as_good_as_the_api_key_header(home: Path) -> None:
    with thread_server(home, api_key=KEY) as url:
        assert httpx.get(f"{url}/files", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
        assert httpx.get(f"{url}/files", headers={"authorization": f"bearer  {KEY}"}).status_code == 200
        wrong = httpx.get(f"{url}/files", headers={"Authorization": "Bearer nope"})
        assert (wrong.status_code, wrong.json()["detail"]) == (
            401, "Invalid API key or token (in X-API-Key or Authorization)"
        )  # fmt: skip
        basic = httpx.get(f"{url}/files", headers={"Authorization": f"Basic {KEY}"})
        assert (basic.status_code, basic.json()["detail"]) == (401, "Authorization header: expected 'Bearer <token>'")
        both = httpx.get(f"{url}/files", headers={"X-API-Key": "nope", "Authorization": f"Bearer {KEY}"})
        assert both.status_code == 400, "two credentials: which one counts is not guessed"


def test_simulate_job_answers_404_for_an_unknown_method_or_file_as_the_seed_did(home: Path) -> None:
    engine = open_engine(home)
    engine.register_method(methods_dir())
    hello = next(engine.upload_file(p) for p in data_files() if p.name == "hello.txt").file_hash
    engine.close()
    with thread_server(home) as url:
        unknown = httpx.post(f"{url}/simulate-job", json={"file_hash": hello, "method_name": "Nope"})
        assert (unknown.status_code, unknown.json()) == (404, {"detail": "Method 'Nope' not found"})
        missing = httpx.post(f"{url}/simulate-job", json={"file_hash": "0" * 64, "method_name": "Word Count (bash)"})
        assert (missing.status_code, missing.json()["detail"]) == (404, f"File '{'0' * 64}' not found")
        bad = httpx.post(f"{url}/simulate-job", json={"file_hash": hello, "method_name": "Word Count (bash)",
                                                      "parameters": {"nope": 1}})  # fmt: skip
        assert bad.status_code == 200 and bad.json()["outcome"] == "invalid", "other problems keep their 200"
        batch = httpx.post(f"{url}/simulate-jobs", json={"jobs": [{"file_hash": hello, "method_name": "Nope"}]})
        assert batch.status_code == 200 and batch.json()["results"][0]["message"] == "Method 'Nope' not found"
        with Connection(HttpBackend(url)) as conn:
            answer = conn.simulate_job({"file_hash": hello, "method_name": "Nope"})
            assert (answer.job_id, answer.message, answer.outcome) == (None, "Method 'Nope' not found", "invalid")
