"""The later dsHPC's job routes, driven with plain httpx as its clients would: ``/query-job``, a meta-job (each
step's stdout the next step's input, ``$ref:prev`` values), a pipeline of chains (``$ref:node/json/path``),
its state, its cancel, and bad requests as clear 4xx naming the field."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
from http_support import thread_server
from pipeline_support import register

from dshpc_jupyter.backends.embedded import EmbeddedBackend
from dshpc_jupyter.front.connection import Connection
from dshpc_jupyter.service.factory import open_engine

KEY = "k3y"


def until(client: httpx.Client, path: str, done: Any, timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        answer = client.get(path)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        if done(body):
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.2)


def test_query_job_meta_job_and_pipeline_routes(home: Path, tmp_path: Path) -> None:
    with Connection(EmbeddedBackend(open_engine(home))) as conn:
        register(conn, tmp_path / "methods")
        table = conn.upload_file(b"1\n2\n3\n", filename="t.csv").file_hash
    with (
        thread_server(home, api_key=KEY) as url,
        httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}, timeout=30) as client,
    ):
        first = client.post("/query-job", json={"method_name": "Make Table", "parameters": {"n": 3}})
        assert first.status_code == 200 and first.json()["job_hash"] and first.json()["status"] in ("PD", "CF", "R")
        unknown = client.post("/query-job", json={"method_name": "Nope", "parameters": {}})
        assert (unknown.status_code, unknown.json()["detail"]) == (404, "Method 'Nope' not found")

        meta = client.post("/submit-meta-job", json={
            "initial_file_inputs": {"table": table},
            "method_chain": [
                {"method_name": "Scale Table", "parameters": {"factor": 2}},
                {"method_name": "Count Bytes", "parameters": {}},
            ],
        })  # fmt: skip
        assert meta.status_code == 200, meta.text
        assert meta.json()["estimated_steps"] == 2
        info = until(
            client, f"/meta-job/{meta.json()['meta_job_hash']}", lambda b: b["status"] not in ("pending", "running")
        )
        assert info["status"] == "completed" and [s["method_name"] for s in info["chain"]] == [
            "Scale Table",
            "Count Bytes",
        ]
        assert json.loads(info["final_output"]) == {"bytes": len('{"total": 12.0}\n')}
        assert info["final_job_hash"] == info["chain"][1]["job_hash"]

        nodes = {
            "make": {"chain": [{"method_name": "Make Table", "parameters": {"n": 4}}]},
            "scale": {"dependencies": ["make"], "chain": [{
                "method_name": "Scale Table", "file_inputs": {"table": "$ref:make"},
                "parameters": {"factor": "$ref:make/summary/n"},
            }]},
        }  # fmt: skip
        submitted = client.post("/pipeline/submit", json={"nodes": nodes})
        assert submitted.status_code == 200, submitted.text
        assert submitted.json()["total_nodes"] == 2
        path = f"/pipeline/{submitted.json()['pipeline_hash']}"
        state = until(client, path, lambda b: b["status"] in ("completed", "failed"))
        # $ref:make as a file is make's stdout (a JSON summary, not a table): Scale Table fails on it
        assert state["status"] == "failed" and state["nodes"][0]["status"] == "completed"
        assert (state["total_nodes"], state["completed_nodes"], state["failed_nodes"]) == (2, 1, 1)
        assert state["nodes"][1]["dependencies"] == ["make"]

        slow = {"a": {"chain": [{"method_name": "Make Table", "parameters": {"n": 1, "sleep": 30}}]},
                "b": {"dependencies": ["a"], "chain": [{"method_name": "Count Bytes"}]}}  # fmt: skip
        pipeline_hash = client.post("/pipeline/submit", json={"nodes": slow}).json()["pipeline_hash"]
        cancelled = client.delete(f"/pipeline/{pipeline_hash}")
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        after = until(client, f"/pipeline/{pipeline_hash}", lambda b: b["status"] not in ("pending", "running"))
        assert after["nodes"][1]["error"] == "cancelled with the pipeline"

        assert client.get("/meta-job/nope").json() == {"detail": "Meta-job nope not found"}
        assert client.get("/pipeline/nope").status_code == 404
        bad = client.post("/submit-meta-job", json={"method_chain": [{"method_name": "Count Bytes"}]})
        assert (bad.status_code, bad.json()["detail"]) == (
            422, "initial_file_hash: give it or initial_file_inputs (exactly one of them)")  # fmt: skip
        bad = client.post("/pipeline/submit", json={"nodes": {"a": {"dependencies": ["z"], "chain": [{}]}}})
        assert (bad.status_code, bad.json()["detail"]) == (422, "nodes.a.dependencies: no node 'z'")
        bad = client.post("/submit-meta-job", json={"initial_file_hash": table, "method_chain": []})
        assert (bad.status_code, bad.json()["detail"]) == (422, "method_chain: must be a non-empty array of steps")
        assert httpx.post(f"{url}/query-job", json={}).status_code == 401
