"""The HTTP client on its own: chunking under the server's limit, retries (only where safe), timeouts, errors
carrying the server's detail, configuration from the environment, and the requests it saves.

Servers are real (uvicorn on 127.0.0.1, or a bare socket that never answers); the only stand-in is
``Recorder``, a transport wrapper that logs requests and can inject a 5xx, a fault a healthy server won't give.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from http_support import listening_socket, thread_server, url_of
from support import wait_for_jobs
from team_support import TeamServer, team_server

import dshpc_jupyter
from dshpc_jupyter.backends.http import BackendError, HttpBackend, HttpOptions
from dshpc_jupyter.domain.errors import (
    AuthenticationError,
    ConflictError,
    InvalidInputError,
    LimitExceededError,
    NotFoundError,
    SchedulerError,
)
from dshpc_jupyter.domain.home import Home
from dshpc_jupyter.domain.models import BatchStatistics
from dshpc_jupyter.examples import data_files, methods_dir
from dshpc_jupyter.front.connection import Connection
from dshpc_jupyter.service.factory import open_engine
from dshpc_jupyter.service.users import Quotas, Team
from dshpc_jupyter.store.sqlite import Store

WORDS = "Word Count (bash)"


class Recorder(httpx.AsyncBaseTransport):
    """The real transport, logging each request; ``fail`` makes the next N requests to a path answer 5xx."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.log: list[tuple[str, str]] = []
        self.fail: dict[str, list[httpx.Response]] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.log.append((request.method, request.url.path))
        injected = self.fail.get(request.url.path)
        if injected:
            return injected.pop(0)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()

    def count(self, method: str, path: str) -> int:
        return self.log.count((method, path))


@pytest.fixture
def prepared_home(home: Path) -> Path:
    engine = open_engine(home)
    engine.register_method(methods_dir())
    for path in data_files():
        engine.upload_file(path)
    engine.close()
    return home


@pytest.fixture
def small_server(prepared_home: Path) -> Iterator[str]:
    with thread_server(prepared_home, max_configs=3) as url:
        yield url


def connect_http(
    url: str, recorder: Recorder | None = None, *, api_key: str | None = None, **options: Any
) -> Connection:
    return Connection(HttpBackend(url, api_key=api_key, options=HttpOptions(**options), transport=recorder))


def test_large_batches_go_in_chunks_and_make_one_batch(small_server: str) -> None:
    recorder = Recorder()
    with connect_http(small_server, recorder) as conn:
        files = {f.filename: f.file_hash for f in conn.list_files()}
        units = ["lines", "words", "bytes"]
        configs: list[Any] = [
            {"file_hash": files[name], "method_name": WORDS, "parameters": {"unit": unit}}
            for name in ("poem.txt", "hello.txt")
            for unit in units
        ]
        configs += [configs[0], {"file_hash": files["poem.txt"], "method_name": "Nope"}, configs[4], configs[5]]
        response = conn.simulate_jobs(configs)
        assert recorder.count("POST", "/simulate-jobs") == 4
        assert recorder.count("GET", "/services/status") == 1
        assert [(r.file_hash, r.method_name, r.parameters) for r in response.results] == [
            (c["file_hash"], c["method_name"], c.get("parameters", {})) for c in configs
        ]
        messages = [r.message for r in response.results]
        assert (
            messages
            == ["New job submitted"] * 6 + ["Job in progress", "Method 'Nope' not found"] + ["Job in progress"] * 2
        )
        assert [r.job_id for r in response.results][6] == response.results[0].job_id
        statistics = {name: getattr(response, name) for name in BatchStatistics.model_fields}
        assert statistics == {
            "total_jobs": 10, "successful_submissions": 6, "failed_submissions": 1, "completed_jobs": 0,
            "in_progress_jobs": 9, "resubmitted_jobs": 0,
        }  # fmt: skip

        detail = conn.batch(response.batch_id or "")
        assert detail.total_jobs == 10
        assert [r.message for r in detail.results] == messages
        assert detail.statistics.model_dump() == statistics
        assert [b.batch_id for b in conn.batches()] == [response.batch_id]
        wait_for_jobs(conn, [r.job_id for r in response.results if r.job_id])  # type: ignore[arg-type]

        again = conn.simulate_jobs(configs)
        assert again.completed_jobs == 9 and recorder.count("GET", "/services/status") == 1
        dry = conn.simulate_jobs(configs, dry_run=True)
        assert dry.batch_id is None and dry.completed_jobs == 9 and len(conn.batches()) == 2


def test_chunks_appended_to_a_batch_all_go_to_it(small_server: str) -> None:
    recorder = Recorder()
    with connect_http(small_server, recorder) as conn:
        files = {f.filename: f.file_hash for f in conn.list_files()}
        configs: list[Any] = [
            {"file_hash": files["poem.txt"], "method_name": WORDS, "parameters": {"unit": unit}}
            for unit in ("lines", "words", "bytes")
        ]
        created = conn.simulate_jobs(configs[:1])
        appended = conn.simulate_jobs([*configs[1:], "not a config", configs[0]], append_to=created.batch_id)
        assert recorder.count("POST", "/simulate-jobs") == 3  # one, then two chunks of at most 3
        assert appended.batch_id == created.batch_id and appended.total_jobs == 4
        assert [r.message for r in appended.results][2:] == [
            "Invalid config: a job must be a JSON object, got string",
            "Job in progress",
        ]
        detail = conn.batch(created.batch_id or "")
        assert detail.total_jobs == 5 and [b.batch_id for b in conn.batches()] == [created.batch_id]
        with pytest.raises(NotFoundError, match="Batch 'nope' not found") as raised:
            conn.simulate_jobs(configs * 2, append_to="nope")
        assert raised.value.__notes__ == ["configs 0 to 5 of 6 were not submitted"]
        wait_for_jobs(conn, [r.job_id for r in detail.results if r.job_id])  # type: ignore[arg-type]


def test_a_client_limit_overrides_and_a_refused_chunk_says_what_was_sent(small_server: str) -> None:
    recorder = Recorder()
    config = {"file_hash": "0" * 64, "method_name": WORDS}
    with connect_http(small_server, recorder, max_configs=2) as conn:
        conn.simulate_jobs([config] * 5)
        assert recorder.count("POST", "/simulate-jobs") == 3 and recorder.count("GET", "/services/status") == 0
    with connect_http(small_server, max_configs=5) as conn, pytest.raises(LimitExceededError) as raised:
        conn.simulate_jobs([config] * 7)
    assert "max_configs" in str(raised.value)
    assert "configs 0 to 6 of 7 were not submitted" in "".join(raised.value.__notes__)


def lower_quota(server: TeamServer, name: str, max_configs: int) -> None:
    """Lower a user's quota in the server's store, as ``dshpc-jupyter users set`` does while it serves."""
    store = Store(Home.open(server.home).db_path)
    try:
        Team(store).change(name, quotas=Quotas(max_configs=max_configs), actor="test")
    finally:
        store.close()


@pytest.fixture
def alice_over_3(tmp_path: Path) -> Iterator[tuple[TeamServer, Recorder, Connection]]:
    """A server for a team where alice's quota is 3 configs a call, and her connection, which has read it."""
    with team_server(tmp_path / "home", quotas={"alice": Quotas(max_configs=3)}) as server:
        recorder = Recorder()
        with connect_http(server.url, recorder, api_key=server.tokens["alice"]) as conn:
            conn.simulate_jobs(unknown_files(3))
            assert requests(recorder) == (1, 1)
            yield server, recorder, conn


def unknown_files(n: int) -> list[dict[str, Any]]:
    """``n`` distinct configs that need no job (their file is unknown), so no worker runs."""
    return [{"file_hash": "0" * 64, "method_name": WORDS, "parameters": {"i": i}} for i in range(n)]


def requests(recorder: Recorder) -> tuple[int, int]:
    """How many status reads and ``simulate-jobs`` calls ``recorder`` saw."""
    return recorder.count("GET", "/services/status"), recorder.count("POST", "/simulate-jobs")


def test_a_call_over_a_quota_lowered_while_connected_still_goes_through_as_one_batch(
    alice_over_3: tuple[TeamServer, Recorder, Connection],
) -> None:
    server, recorder, conn = alice_over_3
    lower_quota(server, "alice", 2)
    configs = unknown_files(5)
    answer = conn.simulate_jobs(configs, name="swept")
    assert requests(recorder) == (2, 1 + 1 + 3), "a chunk of 3 refused (nothing recorded), then 2 + 2 + 1"
    assert [r.parameters for r in answer.results] == [c["parameters"] for c in configs]
    assert (answer.total_jobs, answer.failed_submissions) == (5, 5)
    batch = conn.batch(answer.batch_id or "")
    assert (batch.name, [r.parameters for r in batch.results]) == ("swept", [c["parameters"] for c in configs])
    assert len(conn.batches()) == 2, "the first call's batch and this one: the refused chunk recorded none"


def test_the_limit_is_read_again_only_after_a_413(alice_over_3: tuple[TeamServer, Recorder, Connection]) -> None:
    server, recorder, conn = alice_over_3
    lower_quota(server, "alice", 2)
    conn.simulate_jobs(unknown_files(2))
    assert requests(recorder) == (1, 2), "within the new quota: no status read, one call"
    conn.simulate_jobs(unknown_files(4))
    assert requests(recorder) == (2, 2 + 1 + 2), "a chunk of 3 refused, the quota read again, then 2 + 2"
    conn.simulate_jobs(unknown_files(4))
    assert requests(recorder) == (2, 5 + 2), "the new quota respected: not read again"


def test_a_413_the_limit_does_not_explain_is_not_sent_again(prepared_home: Path) -> None:
    big = [{"file_hash": "0" * 64, "method_name": WORDS, "parameters": {"pad": "x" * 3000}}] * 2
    with thread_server(prepared_home, max_configs=3, max_body_bytes=4000) as url:
        recorder = Recorder()
        with connect_http(url, recorder) as conn, pytest.raises(LimitExceededError, match="4000"):
            conn.simulate_jobs(big)  # under max_configs, over the body limit: the limit read again is no smaller
        assert requests(recorder) == (2, 1)
        given = Recorder()
        with connect_http(url, given, max_configs=5) as conn, pytest.raises(LimitExceededError, match="max_configs"):
            conn.simulate_jobs(unknown_files(5))
        assert requests(given) == (0, 1), "a chunk size the caller gave is theirs: the server's is never read"


def test_idempotent_calls_are_retried_after_5xx_and_submissions_are_not(small_server: str) -> None:
    recorder = Recorder()
    with connect_http(small_server, recorder, retries=3) as conn:
        recorder.fail["/files"] = [httpx.Response(503, json={"detail": "busy"}), httpx.Response(502)]
        assert len(conn.list_files()) == len(data_files())
        assert recorder.count("GET", "/files") == 3

        recorder.fail["/simulate-jobs"] = [httpx.Response(503, json={"detail": "scheduler is down"})]
        with pytest.raises(SchedulerError, match="scheduler is down"):
            conn.simulate_jobs([{"file_hash": "0" * 64, "method_name": WORDS}])
        assert recorder.count("POST", "/simulate-jobs") == 1

        recorder.fail["/batches"] = [httpx.Response(503, json={"detail": "busy"})] * 4
        with pytest.raises(SchedulerError, match="busy"):
            conn.batches()
        assert recorder.count("GET", "/batches") == 4

        recorder.fail["/jobs"] = [httpx.Response(500, text="<html>boom</html>")]
        with pytest.raises(BackendError, match="boom") as raised:
            conn.list_jobs()
        assert raised.value.status_code == 500 and recorder.count("GET", "/jobs") == 1


def test_an_unreachable_server_fails_after_the_retries(tmp_path: Path) -> None:
    sock = listening_socket()
    url = url_of(sock)
    sock.close()  # nothing listens there now: connections are refused
    recorder = Recorder()
    with connect_http(url, recorder, retries=2, max_configs=100) as conn:
        with pytest.raises(BackendError, match=f"cannot reach the dsHPC service at {url}"):
            conn.list_files()
        assert recorder.count("GET", "/files") == 3
        with pytest.raises(BackendError):  # never sent, so retried even though it submits
            conn.simulate_jobs([{"file_hash": "0" * 64, "method_name": WORDS}])
        assert recorder.count("POST", "/simulate-jobs") == 3


class Silent:
    """A server that accepts connections and never answers (a hung service): counts the connections."""

    def __init__(self) -> None:
        self.sock = listening_socket()
        self.connections: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                self.connections.append(self.sock.accept()[0])
            except OSError:
                return

    def close(self) -> None:
        self.sock.close()
        for connection in self.connections:
            connection.close()


def test_timeouts_apply_to_every_call_and_submissions_are_not_resent() -> None:
    silent = Silent()
    try:
        with connect_http(url_of(silent.sock), timeout=0.3, retries=1, max_configs=100) as conn:
            with pytest.raises(BackendError, match="ReadTimeout"):
                conn.list_methods()
            assert len(silent.connections) == 2
            with pytest.raises(BackendError, match="may or may not have applied it"):
                conn.simulate_jobs([{"file_hash": "0" * 64, "method_name": WORDS}])
            assert len(silent.connections) == 3
    finally:
        silent.close()


def test_server_errors_become_the_shared_exceptions_with_the_servers_detail(prepared_home: Path) -> None:
    with thread_server(prepared_home, api_key="k1", max_body_bytes=2000) as url:
        with connect_http(url, api_key="wrong") as conn, pytest.raises(AuthenticationError, match="Invalid API key"):
            conn.list_files()
        with connect_http(url) as conn, pytest.raises(AuthenticationError, match="Missing X-API-Key"):
            conn.list_files()
        with connect_http(url, api_key="k1") as conn:
            with pytest.raises(NotFoundError, match="Job 'x' not found"):
                conn.get_job("x")
            with pytest.raises(LimitExceededError, match="limit of 2000 bytes"):
                conn.upload_file(b"x" * 3000)
            assert isinstance(conn.backend, HttpBackend)
            assert conn.run(conn.backend.services_status).limits.max_body_bytes == 2000


def test_configuration_from_the_environment(prepared_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with thread_server(prepared_home, api_key="env-key") as url:
        monkeypatch.setenv("DSHPC_URL", url)
        monkeypatch.setenv("DSHPC_API_KEY", "env-key")
        conn = dshpc_jupyter.connect()
        try:
            assert conn.location == url and isinstance(conn.backend, HttpBackend)
            assert len(conn.list_files()) == len(data_files())
        finally:
            conn.close()
    monkeypatch.delenv("DSHPC_URL")
    with pytest.raises(InvalidInputError, match="DSHPC_URL"):
        HttpBackend()
    with pytest.raises(InvalidInputError, match="http:// or https://"):
        HttpBackend("localhost:8001")
    with pytest.raises(InvalidInputError, match="api_key"):
        HttpBackend("http://127.0.0.1:1", api_key="caf\xe9")


def test_uploads_check_hashes_first_and_polling_is_one_request(small_server: str, tmp_path: Path) -> None:
    recorder = Recorder()
    paths = []
    for index in range(3):
        paths.append(tmp_path / f"input{index}.txt")
        paths[-1].write_text(f"input {index}\n", encoding="utf-8")
    with connect_http(small_server, recorder) as conn:
        hashes = conn.upload_files(paths + data_files())
        assert recorder.count("POST", "/files/upload") == 3
        conn.upload_files(paths)
        assert recorder.count("POST", "/files/upload") == 3
        assert conn.upload_file(paths[0]).file_hash == hashes[0]
        assert recorder.count("POST", "/files/upload") == 3

        response = conn.simulate_jobs([{"file_hash": h, "method_name": WORDS} for h in hashes[:3]])
        ids = [r.job_id or "" for r in response.results]
        before = recorder.count("POST", "/jobs/batch")
        assert [j.job_id for j in conn.job_statuses(ids * 100)] == ids * 100
        assert recorder.count("POST", "/jobs/batch") == before + 1
        wait_for_jobs(conn, ids)  # type: ignore[arg-type]


def test_an_upload_without_exist_ok_is_sent_as_is_and_a_409_raised(small_server: str) -> None:
    recorder = Recorder()
    with connect_http(small_server, recorder) as conn:
        info = conn.upload_file(b"new content", exist_ok=False)
        assert (recorder.count("POST", "/files/check-hashes"), recorder.count("POST", "/files/upload")) == (0, 1)
        with pytest.raises(ConflictError, match=f"File '{info.file_hash}' already exists"):
            conn.upload_file(b"new content", exist_ok=False)
        assert recorder.count("POST", "/files/upload") == 2
        assert recorder.count("GET", f"/files/{info.file_hash}") == 0


def test_one_connection_pool_per_backend(small_server: str) -> None:
    async def scenario() -> None:
        backend = HttpBackend(small_server)
        await backend.list_files()
        pool = backend._client
        await asyncio.gather(*(backend.list_methods() for _ in range(20)))
        assert backend._client is pool and pool is not None
        await backend.aclose()
        assert pool.is_closed

    asyncio.run(scenario())


def test_connect_passes_client_options_to_the_http_backend(small_server: str) -> None:
    """``connect(url, ...)`` hands its keyword options to the HTTP client (the scheduler's go to the engine)."""
    config = {"file_hash": "0" * 64, "method_name": WORDS}
    conn = dshpc_jupyter.connect(small_server, max_configs=2, retries=0, timeout=7.0)
    try:
        backend = conn.backend
        assert isinstance(backend, HttpBackend)
        assert (backend.max_configs, backend.retries) == (2, 0)
        response = conn.simulate_jobs([config] * 5)
        assert response.total_jobs == 5 and response.failed_submissions == 5
    finally:
        conn.close()
