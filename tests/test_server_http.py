"""The HTTP API as a plain HTTP client sees it: seed compatibility, auth, limits, and bad input of every shape
(always a 4xx whose JSON ``detail`` names the problem, and nothing stored changed), against real uvicorn."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from http_support import healthy, listening_socket, subprocess_server, thread_server
from pydantic_core import to_json
from support import wait_until

from dshpc_jupyter.examples import data_files, methods_dir
from dshpc_jupyter.service.factory import open_engine

WORDS = "Word Count (bash)"
EXAMPLE = "Example Python Method"
SEED_RESULT_FIELDS = {
    "job_id", "new_status", "old_status", "output", "message", "file_hash", "method_name", "function_hash",
    "parameters",
}  # fmt: skip
SEED_STATISTICS = {
    "total_jobs", "successful_submissions", "failed_submissions", "completed_jobs", "in_progress_jobs",
    "resubmitted_jobs",
}  # fmt: skip


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture
def server(home: Path) -> Iterator[str]:
    """A server with the example methods registered, no key, default limits."""
    engine = open_engine(home)
    engine.register_method(methods_dir())
    engine.close()
    with thread_server(home) as url:
        yield url


@pytest.fixture
def client(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, timeout=30) as http:
        yield http


def upload(client: httpx.Client, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    response = client.post("/files/upload", json={"file_hash": digest, "content": b64(data)})
    assert response.status_code in (201, 409), response.text
    return digest


# --- the seed's client, unchanged ----------------------------------------------------------------------------


def test_a_seed_client_script_works_unchanged(home: Path) -> None:
    """Only the seed's documented JSON, against ``serve()`` in its own process (as ``dshpc-jupyter serve``)."""
    with subprocess_server(home, methods=[str(methods_dir())]) as (url, _):
        api = httpx.Client(base_url=url, timeout=30)
        hashes = {}
        for path in data_files("*.txt"):
            content = path.read_bytes()
            file_hash = hashlib.sha256(content).hexdigest()
            payload = {"file_hash": file_hash, "content": b64(content), "filename": path.name,
                       "content_type": "text/plain", "metadata": {"description": "seed test"}}  # fmt: skip
            created = api.post("/files/upload", json=payload)
            assert created.status_code == 201, created.text
            assert {"file_hash", "filename", "content_type", "metadata", "upload_date"} <= created.json().keys()
            assert created.json()["metadata"] == {"description": "seed test"}
            duplicate = api.post("/files/upload", json=payload)
            assert duplicate.status_code == 409 and "already exists" in duplicate.json()["detail"]
            hashes[path.name] = file_hash

        check = api.post("/files/check-hashes", json={"hashes": [hashes["poem.txt"], "missing_hash"]}).json()
        assert check == {"existing_hashes": [hashes["poem.txt"]], "missing_hashes": ["missing_hash"]}
        listed = api.get("/files").json()
        assert {f["file_hash"] for f in listed} == set(hashes.values())

        request = {
            "jobs": [
                {"file_hash": hashes["poem.txt"], "method_name": EXAMPLE, "parameters": {"uppercase": True}},
                {"file_hash": hashes["hello.txt"], "method_name": WORDS, "parameters": {"unit": "lines"}},
                {"file_hash": hashes["hello.txt"], "method_name": "Another Method", "parameters": {"threshold": 0.5}},
            ]
        }
        first = api.post("/simulate-jobs", json=request)
        assert first.status_code == 200
        body = first.json()
        assert body.keys() >= SEED_STATISTICS and "results" in body
        assert all(r.keys() >= SEED_RESULT_FIELDS for r in body["results"])
        assert [r["message"] for r in body["results"]] == [
            "New job submitted",
            "New job submitted",
            "Method 'Another Method' not found",
        ]
        missing = body["results"][2]
        assert (missing["job_id"], missing["new_status"], missing["function_hash"]) == (None, None, None)
        assert (body["total_jobs"], body["successful_submissions"], body["failed_submissions"]) == (3, 2, 1)

        def all_completed() -> bool:
            again = api.post("/simulate-jobs", json=request).json()
            return [r["new_status"] for r in again["results"][:2]] == ["CD", "CD"]

        wait_until(all_completed, timeout=60, what="the seed request to find completed jobs")
        final = api.post("/simulate-jobs", json=request).json()
        assert [r["message"] for r in final["results"][:2]] == ["Completed job found"] * 2
        assert [r["job_id"] for r in final["results"][:2]] == [r["job_id"] for r in body["results"][:2]]
        assert json.loads(final["results"][1]["output"])["count"] >= 1
        assert (final["completed_jobs"], final["in_progress_jobs"], final["failed_submissions"]) == (2, 0, 1)

        single = api.post("/simulate-job", json=request["jobs"][0]).json()
        assert single["message"] == "Completed job found" and single["output"]
        assert api.get("/health").json() == {"status": "ok"}
        status = api.get("/services/status").json()
        assert status["jobs_db"]["status"] == "up" and status["files_db"]["status"] == "up"
        assert status["limits"]["max_configs"] >= 1000 and status["store"] == str(home.resolve())


def test_sigterm_stops_cleanly_and_a_restart_finds_the_jobs(home: Path) -> None:
    """Jobs in flight when the server stops keep running under the local worker; a new server serves them."""
    slow = {"method_name": "Simulated Workload", "parameters": {"seconds": 2}}
    with subprocess_server(home, methods=[str(methods_dir())]) as (url, process):
        api = httpx.Client(base_url=url, timeout=30)
        file_hash = upload(api, b"restart test\n")
        submitted = api.post("/simulate-jobs", json={"jobs": [{**slow, "file_hash": file_hash}]}).json()
        job_id = submitted["results"][0]["job_id"]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    with subprocess_server(home) as (url, _):
        api = httpx.Client(base_url=url, timeout=30)
        wait_until(lambda: api.get(f"/job/{job_id}").json()["status"] == "CD", timeout=60, what="the job to finish")
        again = api.post("/simulate-jobs", json={"jobs": [{**slow, "file_hash": file_hash}]}).json()
        assert (again["results"][0]["job_id"], again["results"][0]["message"]) == (job_id, "Completed job found")


# --- auth ----------------------------------------------------------------------------------------------------


def test_api_key_is_required_on_every_route_but_health(home: Path) -> None:
    with thread_server(home, api_key="s3cret-key") as url:
        for headers in (
            {},
            {"X-API-Key": "wrong"},
            {"X-API-Key": ""},
            {"X-API-Key": "s3cret-keyX"},
            {"X-API-Key": "S3CRET-KEY"},
        ):
            for method, path in (("GET", "/files"), ("POST", "/simulate-jobs"), ("GET", "/services/status"),
                                 ("GET", "/no/such/route")):  # fmt: skip
                response = httpx.request(method, url + path, headers=headers, json={"jobs": []})
                assert response.status_code == 401, (headers, path)
                assert "X-API-Key" in response.json()["detail"]
        latin = httpx.get(url + "/files", headers=[(b"X-API-Key", "s\xe9cret".encode("latin-1"))])
        assert latin.status_code == 401
        assert httpx.get(url + "/health").json() == {"status": "ok"}
        good = {"X-API-Key": "s3cret-key"}
        assert httpx.get(url + "/files", headers=good).json() == []
        assert httpx.post(url + "/simulate-jobs", headers=good, json={"jobs": []}).json()["total_jobs"] == 0
        assert httpx.get(url + "/services/status", headers=good).json()["auth_required"] is True
        for closed in ("/openapi.json", "/docs", "/redoc"):
            assert httpx.get(url + closed).status_code == 401, closed
        schema = httpx.get(url + "/openapi.json", headers=good).json()
        assert schema["components"]["securitySchemes"]["APIKey"]["name"] == "X-API-Key"
        assert "security" not in schema["paths"]["/health"]["get"]
        assert schema["paths"]["/files"]["get"]["security"] == [{"APIKey": []}]


def test_a_server_key_must_be_usable_in_a_header(home: Path) -> None:
    from dshpc_jupyter.backends.embedded import EmbeddedBackend
    from dshpc_jupyter.server import create_app

    backend = EmbeddedBackend(open_engine(home))
    try:
        for bad in ("", "caf\xe9", "two\nlines"):
            with pytest.raises(ValueError, match="api_key"):
                create_app(backend, api_key=bad)
    finally:
        backend.engine.close()


# --- limits --------------------------------------------------------------------------------------------------


def test_limits_refuse_with_413_and_a_clear_message(home: Path) -> None:
    with thread_server(home, max_configs=3, max_body_bytes=4000) as url:
        api = httpx.Client(base_url=url, timeout=30)
        config = {"file_hash": "0" * 64, "method_name": WORDS}
        too_many = api.post("/simulate-jobs", json={"jobs": [config] * 4})
        assert too_many.status_code == 413
        assert "4 configs" in too_many.json()["detail"] and "max_configs" in too_many.json()["detail"]
        assert api.post("/simulate-jobs", json={"jobs": [config] * 3}).status_code == 200

        big = {"file_hash": "0" * 64, "content": "A" * 5000}
        declared = api.post("/files/upload", json=big)
        assert declared.status_code == 413 and "4000 bytes" in declared.json()["detail"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is enforced while reading
            yield b'{"file_hash": "' + b"0" * 64 + b'", "content": "'
            for _ in range(10):
                yield b"A" * 1000
            yield b'"}'

        streamed = api.post("/files/upload", content=chunks(), headers={"Content-Type": "application/json"})
        assert streamed.status_code == 413 and "limit of 4000 bytes" in streamed.json()["detail"]
        limits = api.get("/services/status").json()["limits"]
        assert limits == {"max_configs": 3, "max_body_bytes": 4000}
        assert api.get("/files").json() == [] and api.get("/batches").json()[0]["total_jobs"] == 3


# --- bad input -----------------------------------------------------------------------------------------------

DEEP = "[" * 300 + "]" * 300


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "detail"),
    [
        ("POST", "/simulate-jobs", b"\xff\xfe{not json", 422, "Invalid JSON"),
        ("POST", "/simulate-jobs", b"", 422, "Invalid JSON"),
        ("POST", "/simulate-jobs", b"[]", 422, "object"),
        ("POST", "/simulate-jobs", b"{}", 422, "jobs: Field required"),
        ("POST", "/simulate-jobs", b'{"jobs": "all"}', 422, "jobs: Input should be a valid"),
        ("POST", "/simulate-jobs", ('{"jobs": [' + DEEP + "]}").encode(), 422, "recursion limit"),
        ("POST", "/simulate-jobs", b'{"jobs": ["\\ud800"]}', 422, "Invalid JSON"),
        ("POST", "/simulate-jobs?dry_run=maybe", b'{"jobs": []}', 422, "query parameter 'dry_run'"),
        ("POST", "/simulate-job", b"[1]", 200, "a job must be a JSON object"),
        ("POST", "/files/upload", b'{"content": "aGk="}', 422, "file_hash: Field required"),
        ("POST", "/files/upload", b'{"file_hash": 7, "content": "aGk="}', 422, "file_hash: Input should be"),
        ("POST", "/files/upload", b'{"file_hash": "' + b"a" * 64 + b'", "content": "not base64!"}', 422, "base64"),
        ("POST", "/files/upload", b'{"file_hash": "' + b"a" * 64 + b'", "content": "aGk="}', 422, "does not match"),
        ("POST", "/files/upload", b'{"file_hash": "xyz", "content": "aGk="}', 422, "file_hash: must be 64"),
        ("POST", "/files/upload", b'{"file_hash": "' + b"a" * 64 + b'", "content": "\xc3\xa9"}', 422, "base64"),
        ("POST", "/files/check-hashes", b'{"hashes": "abc"}', 422, "hashes: Input should be a valid array"),
        ("POST", "/files/check-hashes", b'{"hashes": [1]}', 422, "hashes[0]: Input should be a valid string"),
        ("POST", "/jobs/batch", b'{"job_ids": [null]}', 422, "job_ids[0]"),
        ("POST", "/jobs/cancel", b'{"ids": []}', 422, "job_ids: Field required"),
        ("GET", "/job/unknown", b"", 404, "Job 'unknown' not found"),
        ("GET", "/jobs?limit=0", b"", 422, "query parameter 'limit'"),
        ("GET", "/jobs?limit=ten", b"", 422, "query parameter 'limit'"),
        ("GET", "/batches/unknown", b"", 404, "Batch 'unknown' not found"),
        ("POST", "/batches/unknown/cancel", b"", 404, "Batch 'unknown' not found"),
        ("GET", "/files/" + "b" * 64, b"", 404, "not found"),
        ("GET", "/methods/by-name/Nope", b"", 404, "Method 'Nope' not found"),
        ("GET", "/methods/versions/a%2Fb", b"", 404, "Method 'a/b' not found"),
        ("GET", "/methods?latest_only=perhaps", b"", 422, "query parameter 'latest_only'"),
        ("POST", "/methods", b'{"archive": "%%%"}', 422, "archive: not valid base64"),
        ("POST", "/methods", b'{"archive": "aGVsbG8="}', 422, "archive: not a gzip-compressed tar"),
        ("POST", "/methods", b'{"archive": 5}', 422, "archive: Input should be a valid string"),
        ("DELETE", "/files", b"", 405, "Method Not Allowed"),
    ],
)
def test_bad_input_gets_a_4xx_naming_the_problem(
    client: httpx.Client, method: str, path: str, body: bytes, status: int, detail: str
) -> None:
    response = client.request(method, path, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status, response.text
    text = json.dumps(response.json())
    assert detail in text
    if status >= 400:
        assert isinstance(response.json()["detail"], str)


def test_odd_configs_are_answered_one_by_one(client: httpx.Client) -> None:
    """Huge, deeply nested, non-finite and non-object parameters: each config gets its own message."""
    file_hash = upload(client, b"odd configs\n")
    nested: Any = {}
    for _ in range(150):
        nested = {"a": nested}
    configs = [
        {"file_hash": file_hash, "method_name": EXAMPLE, "parameters": {"prefix": "x" * 1_000_000}},
        {"file_hash": file_hash, "method_name": EXAMPLE, "parameters": {"prefix": nested}},
        {"file_hash": file_hash, "method_name": EXAMPLE, "parameters": {"uppercase": float("nan")}},
        {"file_hash": file_hash, "method_name": EXAMPLE, "parameters": {"uppercase": 10**30}},
        {"file_hash": file_hash, "method_name": EXAMPLE, "parameters": {"nested": nested}},
        {"file_hash": file_hash, "method_name": EXAMPLE, "parameters": "uppercase"},
        {"file_hash": file_hash, "method_name": 12},
        None,
        {"file_hash": file_hash, "method_name": WORDS},
    ]
    body = to_json({"jobs": configs}, inf_nan_mode="constants")
    response = client.post("/simulate-jobs", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["outcome"] for r in results] == ["new"] + ["invalid"] * 7 + ["new"]
    assert "'prefix' must be a string" in results[1]["message"]
    assert "'uppercase' must be a boolean" in results[2]["message"]
    assert "'uppercase' must be a boolean" in results[3]["message"]
    assert "unknown parameter 'nested'" in results[4]["message"]
    assert "parameters must be a JSON object" in results[5]["message"]
    assert "'method_name' must be a string" in results[6]["message"]
    assert "a job must be a JSON object" in results[7]["message"]
    batch = client.get(f"/batches/{response.json()['batch_id']}").json()
    assert [r["message"] for r in batch["results"]] == [r["message"] for r in results]


def test_refused_requests_change_nothing(client: httpx.Client) -> None:
    file_hash = upload(client, b"nothing changes\n")
    config = {"file_hash": file_hash, "method_name": WORDS}
    before = (client.get("/batches").json(), client.get("/jobs").json(), client.get("/files").json())
    refused = client.post("/simulate-jobs", params={"batch_id": "no-such-batch"}, json={"jobs": [config]})
    assert refused.status_code == 404 and "Batch 'no-such-batch' not found" in refused.json()["detail"]
    dry_append = client.post("/simulate-jobs", params={"batch_id": "x", "dry_run": "true"}, json={"jobs": [config]})
    assert dry_append.status_code == 422 and "batch_id" in dry_append.json()["detail"]
    mismatch = client.post("/files/upload", json={"file_hash": "c" * 64, "content": b64(b"other")})
    assert mismatch.status_code == 422
    after = (client.get("/batches").json(), client.get("/jobs").json(), client.get("/files").json())
    assert after == before


# --- methods as archives ---------------------------------------------------------------------------------------


def tar_gz(*members: tuple[tarfile.TarInfo, bytes | None]) -> str:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return b64(buffer.getvalue())


def member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    return info


SPEC = json.dumps({"name": "Uploaded", "command": "python3", "script_path": "main.py"}).encode()


def test_a_method_archive_registers_and_runs(client: httpx.Client) -> None:
    archive = tar_gz((member("method.json"), SPEC), (member("main.py"), b"print('{\"ok\": true}')\n"))
    registered = client.post("/methods", json={"archive": archive})
    assert registered.status_code == 200, registered.text
    (info,) = registered.json()
    assert (info["name"], info["latest"]) == ("Uploaded", True)
    assert (
        client.get("/methods/by-name/Uploaded", params={"latest": "true"}).json()["function_hash"]
        == info["function_hash"]
    )
    file_hash = upload(client, b"input\n")
    job = client.post("/simulate-jobs", json={"jobs": [{"file_hash": file_hash, "method_name": "Uploaded"}]}).json()
    job_id = job["results"][0]["job_id"]
    wait_until(lambda: client.get(f"/job/{job_id}").json()["status"] == "CD", timeout=60, what="the uploaded method")
    assert json.loads(client.get(f"/job/{job_id}").json()["output"]) == {"ok": True}


@pytest.mark.parametrize(
    ("members", "detail"),
    [
        ([(member("/etc/method.json"), SPEC)], "absolute path"),
        ([(member("../method.json"), SPEC)], "outside the archive"),
        ([(member("a/../../method.json"), SPEC)], "outside the archive"),
        ([(member("method.json"), SPEC), (member("main.py", tarfile.SYMTYPE, "/etc/passwd"), None)], "a link"),
        ([(member("method.json"), SPEC), (member("main.py", tarfile.LNKTYPE, "method.json"), None)], "a link"),
        ([(member("method.json"), SPEC), (member("fifo", tarfile.FIFOTYPE), None)], "special file"),
        ([(member("method.json"), SPEC), (member("dev", tarfile.CHRTYPE), None)], "special file"),
        ([(member("method.json"), SPEC), (member("method.json"), SPEC)], "appears twice"),
        ([(member("method.json"), SPEC)], "script_path 'main.py' is not a file"),
        ([(member("readme.txt"), b"no spec")], "no method.json"),
    ],
)
def test_unsafe_or_broken_method_archives_are_refused(
    client: httpx.Client, members: list[tuple[tarfile.TarInfo, bytes | None]], detail: str
) -> None:
    before = client.get("/methods", params={"latest_only": "false"}).json()
    response = client.post("/methods", json={"archive": tar_gz(*members)})
    assert response.status_code == 422, response.text
    assert detail in response.json()["detail"]
    assert "method-upload-" not in response.json()["detail"]  # the server's staging path is not shown
    assert client.get("/methods", params={"latest_only": "false"}).json() == before


def test_the_api_serves_any_backend_here_another_server(
    server: str, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``create_app`` needs only the ``Backend`` operations: over the HTTP client to another server it answers
    the same, with its own limits, and unpacks a method archive in a private staging directory it removes."""
    import asyncio
    import tempfile

    from dshpc_jupyter.backends.http import HttpBackend
    from dshpc_jupyter.server import create_app

    staging = tmp_path / "tmp"
    staging.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(staging))
    archive = tar_gz((member("method.json"), SPEC), (member("main.py"), b"print('{}')\n"))

    async def scenario() -> None:
        upstream = HttpBackend(server)
        app = create_app(upstream, max_configs=5)
        try:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://proxy") as proxy:
                status = (await proxy.get("/services/status")).json()
                assert (status["store"], status["scheduler"], status["status"]) == (str(home), "local", "ok")
                assert status["limits"]["max_configs"] == 5
                registered = await proxy.post("/methods", json={"archive": archive})
                assert registered.status_code == 200, registered.text
                assert [m["name"] for m in registered.json()] == ["Uploaded"]
                refused = await proxy.post("/methods", json={"archive": tar_gz((member("readme.txt"), b"x"))})
                assert refused.status_code == 422 and "no method.json" in refused.json()["detail"]
                missing = await proxy.get("/job/nope")
                assert (missing.status_code, missing.json()["detail"]) == (404, "Job 'nope' not found")
        finally:
            await upstream.aclose()

    asyncio.run(scenario())
    assert list(staging.iterdir()) == []
    assert "Uploaded" in {m["name"] for m in httpx.get(f"{server}/methods").json()}


# --- the API's description -------------------------------------------------------------------------------------


def test_openapi_documents_every_route_and_every_reference_resolves(client: httpx.Client) -> None:
    schema = client.get("/openapi.json").json()
    routes = {(method.upper(), path) for path, operations in schema["paths"].items() for method in operations}
    expected = {
        ("POST", "/simulate-job"), ("POST", "/simulate-jobs"), ("POST", "/files/upload"),
        ("POST", "/files/check-hashes"), ("GET", "/files"), ("GET", "/health"), ("GET", "/services/status"),
        ("GET", "/methods"), ("POST", "/methods"), ("GET", "/methods/by-name/{name}"),
        ("GET", "/methods/versions/{name}"), ("GET", "/job/{job_id}"), ("POST", "/jobs/batch"),
        ("POST", "/jobs/cancel"), ("GET", "/batches"), ("GET", "/batches/{batch_id}"),
        ("POST", "/batches/{batch_id}/cancel"),
    }  # fmt: skip
    assert expected <= routes
    text = json.dumps(schema)
    components = schema["components"]["schemas"]
    for ref in {part.split('"')[0] for part in text.split('"$ref": "#/components/schemas/')[1:]}:
        assert ref in components, ref
    body = schema["paths"]["/simulate-jobs"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/MultiJobSimulationRequest"}
    assert components["MultiJobSimulationRequest"]["properties"]["jobs"]["items"] == {
        "$ref": "#/components/schemas/JobConfig"
    }
    assert client.get("/docs").status_code == 200


# --- the command ---------------------------------------------------------------------------------------------


def test_the_serve_command(home: Path, tmp_path: Path) -> None:
    """``dshpc-jupyter serve`` with its options, as an operator runs it; SIGTERM ends it cleanly (exit 0)."""
    probe = listening_socket()
    port = probe.getsockname()[1]
    probe.close()  # the port is free again for the server (loopback, taken again at once)
    command = [sys.executable, "-m", "dshpc_jupyter.cli", "serve", "--home", str(home), "--port", str(port),
               "--methods", str(methods_dir()), "--api-key-env", "TEST_DSHPC_KEY", "--max-configs", "7",
               "--max-body-mb", "0.5"]  # fmt: skip
    missing = subprocess.run(command, capture_output=True, text=True, timeout=60, env={**os.environ})
    assert missing.returncode == 2 and "TEST_DSHPC_KEY is not set" in missing.stdout
    process = subprocess.Popen(command, env={**os.environ, "TEST_DSHPC_KEY": "cli-key"})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: healthy(url) or process.poll() is not None, timeout=60, what="the server to answer")
        assert process.poll() is None
        assert httpx.get(f"{url}/files").status_code == 401
        status = httpx.get(f"{url}/services/status", headers={"X-API-Key": "cli-key"}).json()
        assert status["limits"] == {"max_configs": 7, "max_body_bytes": 512 * 1024}
        methods = httpx.get(f"{url}/methods", headers={"X-API-Key": "cli-key"}).json()
        assert WORDS in {m["name"] for m in methods}
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
