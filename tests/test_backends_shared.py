"""One behavioural suite, two backends: the embedded engine, and the HTTP client against a real uvicorn server.

Every test runs on both with the same expectations, and ``test_transcripts_agree`` runs one scenario on both
side by side and compares every field of every answer (job ids, pids and times aside), so they cannot drift.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from http_support import BACKENDS, connection_of
from support import shutdown_home, wait_for_jobs, write_method

from dshpc_jupyter import __version__
from dshpc_jupyter.backends.embedded import NO_LIMITS
from dshpc_jupyter.backends.http import HttpBackend
from dshpc_jupyter.domain.errors import ConflictError, DshpcError, InvalidInputError, MethodSpecError, NotFoundError
from dshpc_jupyter.domain.models import BatchStatistics, MultiJobSimulationResponse
from dshpc_jupyter.examples import data_files, methods_dir
from dshpc_jupyter.front.connection import Connection
from dshpc_jupyter.server.app import DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_CONFIGS

EXAMPLE = "Example Python Method"
WORDS = "Word Count (bash)"
WORKLOAD = "Simulated Workload"


def open_connection(kind: str, home: Path, stack: ExitStack, wrap: Callable[[Any], Any] = lambda b: b) -> Connection:
    """A connection of ``kind`` on a fresh home, with the example methods and data (sent the backend's way)."""
    conn = connection_of(kind, home, stack, wrap)
    conn.register_method(methods_dir())
    conn.upload_files(data_files())
    return conn


@pytest.fixture(params=BACKENDS)
def conn(request: pytest.FixtureRequest, home: Path) -> Iterator[Connection]:
    with ExitStack() as stack:
        yield open_connection(request.param, home, stack)


@pytest.fixture
def hashes(conn: Connection) -> dict[str, str]:
    return {f.filename or "": f.file_hash for f in conn.list_files()}


def stats(response: MultiJobSimulationResponse) -> dict[str, int]:
    return {name: getattr(response, name) for name in BatchStatistics.model_fields}


def expected_stats(**counts: int) -> dict[str, int]:
    return {**dict.fromkeys(BatchStatistics.model_fields, 0), **counts}


def job_ids(response: MultiJobSimulationResponse) -> list[str]:
    return [r.job_id for r in response.results if r.job_id]


def test_new_jobs_then_completed_jobs_found(conn: Connection, hashes: dict[str, str]) -> None:
    configs: list[dict[str, Any]] = [
        {"file_hash": hashes["poem.txt"], "method_name": EXAMPLE, "parameters": {"uppercase": True}},
        {"file_hash": hashes["hello.txt"], "method_name": WORDS},
    ]
    first = conn.simulate_jobs(configs)
    assert [r.message for r in first.results] == ["New job submitted"] * 2
    assert [(r.new_status, r.old_status, r.outcome) for r in first.results] == [("PD", None, "new")] * 2
    assert stats(first) == expected_stats(total_jobs=2, successful_submissions=2, in_progress_jobs=2)
    assert first.batch_id
    latest = {m.name: m.function_hash for m in conn.list_methods()}
    assert [(r.file_hash, r.method_name, r.function_hash, r.parameters) for r in first.results] == [
        (hashes["poem.txt"], EXAMPLE, latest[EXAMPLE], {"uppercase": True}),
        (hashes["hello.txt"], WORDS, latest[WORDS], {}),
    ]
    records = wait_for_jobs(conn, job_ids(first))  # type: ignore[arg-type]
    assert [r.status for r in records] == ["CD", "CD"]

    second = conn.simulate_jobs(configs)
    assert [r.message for r in second.results] == ["Completed job found"] * 2
    assert job_ids(second) == job_ids(first)
    assert [r.output for r in second.results] == [r.output for r in records]
    assert '"count": 13' in (second.results[1].output or "")
    assert stats(second) == expected_stats(total_jobs=2, completed_jobs=2)


def test_identical_configs_make_one_job(conn: Connection, hashes: dict[str, str]) -> None:
    config = {"file_hash": hashes["poem.txt"], "method_name": EXAMPLE}
    explicit_default = {**config, "parameters": {"uppercase": False}}
    response = conn.simulate_jobs([config, config, explicit_default])
    assert len(set(job_ids(response))) == 1 and len(job_ids(response)) == 3
    assert [r.message for r in response.results] == ["New job submitted", "Job in progress", "Job in progress"]
    assert stats(response) == expected_stats(total_jobs=3, successful_submissions=1, in_progress_jobs=3)
    wait_for_jobs(conn, job_ids(response)[:1])  # type: ignore[arg-type]


def test_malformed_configs_get_their_own_error_and_never_stop_the_batch(
    conn: Connection, hashes: dict[str, str]
) -> None:
    poem = hashes["poem.txt"]
    configs: list[Any] = [
        {"file_hash": poem, "method_name": "No Such Method"},
        {"file_hash": "0" * 64, "method_name": WORDS},
        {"file_hash": poem, "method_name": WORDS, "parameters": {"unit": "pages"}},
        {"file_hash": poem, "method_name": EXAMPLE, "parameters": {"uppercase": "yes"}},
        {"file_hash": poem, "method_name": EXAMPLE, "parameters": {"colour": 1}},
        {"file_hash": poem, "file_inputs": {"data": poem}, "method_name": WORDS},
        {"file_hash": 5, "method_name": WORDS},
        "not an object",
        {"file_hash": poem, "method_name": WORDS, "parameters": [1]},
        {"file_hash": poem, "method_name": WORDS},
    ]
    response = conn.simulate_jobs(configs)
    messages = [r.message for r in response.results]
    assert messages[0] == "Method 'No Such Method' not found"
    assert messages[1] == f"File '{'0' * 64}' not found"
    assert "'unit'" in messages[2] and "pages" in messages[2]
    assert "'uppercase'" in messages[3] and "boolean" in messages[3]
    assert "'colour'" in messages[4]
    assert "'file_hash'" in messages[5] and "'file_inputs'" in messages[5]
    assert "'file_hash'" in messages[6] and "string" in messages[6]
    assert "JSON object" in messages[7]
    assert "parameters" in messages[8]
    assert messages[9] == "New job submitted"
    assert [r.outcome for r in response.results] == ["invalid"] * 9 + ["new"]
    assert all(r.job_id is None for r in response.results[:9])
    assert stats(response) == expected_stats(
        total_jobs=10, failed_submissions=9, successful_submissions=1, in_progress_jobs=1
    )
    wait_for_jobs(conn, job_ids(response))  # type: ignore[arg-type]


def test_in_progress_cancel_and_resubmission(conn: Connection, hashes: dict[str, str]) -> None:
    slow = {"file_hash": hashes["hello.txt"], "method_name": WORKLOAD, "parameters": {"seconds": 60}}
    first = conn.simulate_jobs([slow])
    (job_id,) = job_ids(first)
    again = conn.simulate_jobs([slow])
    assert again.results[0].job_id == job_id
    assert again.results[0].message == "Job in progress"
    assert again.results[0].new_status in ("PD", "R")
    assert stats(again) == expected_stats(total_jobs=1, in_progress_jobs=1)

    cancelled = conn.cancel([job_id, "no-such-job"])
    assert (cancelled.cancelled, cancelled.not_found) == ([job_id], ["no-such-job"])
    (record,) = wait_for_jobs(conn, [job_id])  # type: ignore[arg-type]
    assert record.status == "CA"
    assert conn.cancel([job_id]).already_finished == [job_id]

    third = conn.simulate_jobs([slow])
    result = third.results[0]
    assert (result.message, result.old_status, result.outcome) == (
        "New job submitted after previous failure",
        "CA",
        "resubmitted",
    )
    assert result.job_id != job_id
    assert stats(third) == expected_stats(
        total_jobs=1, successful_submissions=1, resubmitted_jobs=1, in_progress_jobs=1
    )
    conn.cancel([result.job_id or ""])
    wait_for_jobs(conn, [result.job_id or ""])  # type: ignore[arg-type]


def test_failed_job_is_resubmitted(conn: Connection, hashes: dict[str, str]) -> None:
    failing = {"file_hash": hashes["hello.txt"], "method_name": WORKLOAD, "parameters": {"seconds": 0, "exit_code": 3}}
    first = conn.simulate_jobs([failing])
    (record,) = wait_for_jobs(conn, job_ids(first))  # type: ignore[arg-type]
    assert (record.status, record.exit_code) == ("F", 3)
    assert "failing on purpose" in (record.error or "")
    second = conn.simulate_jobs([failing])
    assert (second.results[0].old_status, second.results[0].message) == (
        "F",
        "New job submitted after previous failure",
    )
    assert stats(second)["resubmitted_jobs"] == 1
    wait_for_jobs(conn, job_ids(second))  # type: ignore[arg-type]


def test_dry_run_submits_and_records_nothing(conn: Connection, hashes: dict[str, str]) -> None:
    config = {"file_hash": hashes["poem.txt"], "method_name": WORDS, "parameters": {"unit": "lines"}}
    dry = conn.simulate_jobs([config, config, {"file_hash": hashes["poem.txt"], "method_name": "Nope"}], dry_run=True)
    assert [r.message for r in dry.results] == [
        "Would submit a new job",
        "Would share the job of an identical config in this batch",
        "Method 'Nope' not found",
    ]
    assert dry.dry_run and dry.batch_id is None and job_ids(dry) == []
    assert conn.batches() == [] and conn.list_jobs() == []

    real = conn.simulate_jobs([config])
    wait_for_jobs(conn, job_ids(real))  # type: ignore[arg-type]
    cached = conn.simulate_jobs([config], dry_run=True)
    assert cached.results[0].message == "Completed job found"
    assert cached.results[0].output is not None
    assert len(conn.batches()) == 1


def test_batches_reopen_with_live_state(conn: Connection, hashes: dict[str, str]) -> None:
    configs: list[Any] = [
        {"file_hash": hashes["poem.txt"], "method_name": WORDS},
        {"file_hash": hashes["poem.txt"], "method_name": "Nope"},
        {"file_hash": hashes["hello.txt"], "method_name": WORDS, "parameters": {"unit": "bytes"}},
    ]
    response = conn.simulate_jobs(configs)
    records = wait_for_jobs(conn, job_ids(response))  # type: ignore[arg-type]
    detail = conn.batch(response.batch_id or "")
    assert detail.batch_id == response.batch_id and detail.total_jobs == 3
    assert [(r.job_id, r.message) for r in detail.results] == [(r.job_id, r.message) for r in response.results]
    assert [r.output for r in detail.results] == [records[0].output, None, records[1].output]
    assert [j.status for j in detail.jobs] == ["CD", "CD"]
    assert (detail.live.completed, detail.live.errors, detail.live.pending, detail.live.running) == (2, 1, 0, 0)
    assert detail.statistics.model_dump() == stats(response)
    assert [b.batch_id for b in conn.batches()] == [response.batch_id]
    finished = conn.cancel_batch(response.batch_id or "")
    assert (finished.cancelled, sorted(finished.already_finished)) == ([], sorted(job_ids(response)))
    with pytest.raises(NotFoundError, match="Batch 'nope' not found"):
        conn.batch("nope")
    with pytest.raises(NotFoundError, match="Batch 'nope' not found"):
        conn.cancel_batch("nope")


def test_job_lookups(conn: Connection, hashes: dict[str, str]) -> None:
    response = conn.simulate_jobs([{"file_hash": hashes["hello.txt"], "method_name": WORDS}])
    (job_id,) = job_ids(response)
    wait_for_jobs(conn, [job_id])  # type: ignore[arg-type]
    assert [j.job_id for j in conn.job_statuses(["missing", job_id])] == [job_id]
    assert conn.job_statuses([]) == []
    record = conn.get_job(job_id)
    assert (record.status, record.method_name, record.parameters) == ("CD", WORDS, {"unit": "words"})
    assert [j.job_id for j in conn.list_jobs(status="CD")] == [job_id]
    assert conn.list_jobs(status="F") == []
    with pytest.raises(NotFoundError, match="Job 'missing' not found"):
        conn.get_job("missing")
    single = conn.simulate_job({"file_hash": hashes["hello.txt"], "method_name": WORDS})
    assert (single.job_id, single.message, single.outcome) == (job_id, "Completed job found", "cached")
    unknown = conn.simulate_job({"file_hash": hashes["hello.txt"], "method_name": "Nope"})
    assert (unknown.job_id, unknown.message) == (None, "Method 'Nope' not found")


def test_files(conn: Connection, hashes: dict[str, str], tmp_path: Path) -> None:
    known = hashes["poem.txt"]
    check = conn.check_hashes([known, "f" * 64])
    assert (check.existing_hashes, check.missing_hashes) == ([known], ["f" * 64])
    first = conn.upload_file(b"some bytes", filename="a.bin", metadata={"owner": "me"})
    again = conn.upload_file(b"some bytes", filename="b.bin")
    assert again == first and first.filename == "a.bin" and first.metadata == {"owner": "me"}
    assert first.file_size == len(b"some bytes")
    assert first.file_hash in {f.file_hash for f in conn.list_files()}
    with pytest.raises(InvalidInputError, match="does not match the content"):
        conn.upload_file(b"other bytes", file_hash=known)
    with pytest.raises(InvalidInputError, match="file_hash: must be 64"):
        conn.upload_file(b"other bytes", file_hash="ABC")
    with pytest.raises(InvalidInputError, match="is not a readable file"):
        conn.upload_file(tmp_path / "missing.txt")
    assert "f" * 64 in conn.check_hashes(["f" * 64]).missing_hashes


def test_getting_one_file(conn: Connection, hashes: dict[str, str]) -> None:
    listed = {f.file_hash: f for f in conn.list_files()}
    poem = conn.get_file(hashes["poem.txt"])
    assert poem == listed[hashes["poem.txt"]] and poem.filename == "poem.txt"
    with pytest.raises(NotFoundError, match=f"File '{'f' * 64}' not found"):
        conn.get_file("f" * 64)


def test_an_upload_without_exist_ok_refuses_stored_content(conn: Connection, hashes: dict[str, str]) -> None:
    created = conn.upload_file(b"fresh bytes", filename="fresh.bin", exist_ok=False)
    assert created.filename == "fresh.bin" and conn.get_file(created.file_hash) == created
    with pytest.raises(ConflictError, match=f"File '{created.file_hash}' already exists"):
        conn.upload_file(b"fresh bytes", exist_ok=False)
    with pytest.raises(ConflictError, match="already exists"):
        conn.upload_file(data_files("poem.txt")[0], exist_ok=False)
    assert conn.upload_file(b"fresh bytes") == created  # exist_ok (the default) gives the stored record


def test_configs_appended_to_a_batch_join_it_in_order(conn: Connection, hashes: dict[str, str]) -> None:
    first = {"file_hash": hashes["poem.txt"], "method_name": WORDS}
    more = [
        {"file_hash": hashes["hello.txt"], "method_name": WORDS},
        {"file_hash": hashes["poem.txt"], "method_name": "Nope"},
    ]
    created = conn.simulate_jobs([first])
    appended = conn.simulate_jobs(more, append_to=created.batch_id)
    assert appended.batch_id == created.batch_id
    assert [r.message for r in appended.results] == ["New job submitted", "Method 'Nope' not found"]
    assert stats(appended) == expected_stats(
        total_jobs=2, successful_submissions=1, in_progress_jobs=1, failed_submissions=1
    )
    wait_for_jobs(conn, job_ids(created) + job_ids(appended))  # type: ignore[arg-type]
    detail = conn.batch(created.batch_id or "")
    assert detail.total_jobs == 3
    assert [r.job_id for r in detail.results] == [r.job_id for r in (*created.results, *appended.results)]
    assert [b.batch_id for b in conn.batches()] == [created.batch_id]
    with pytest.raises(NotFoundError, match="Batch 'nope' not found"):
        conn.simulate_jobs(more, append_to="nope")
    with pytest.raises(InvalidInputError, match=r"^batch_id: a dry run records nothing"):
        conn.simulate_jobs(more, dry_run=True, append_to=created.batch_id)
    assert conn.batch(created.batch_id or "").total_jobs == 3


def test_services_status(conn: Connection, home: Path) -> None:
    status = conn.services_status()
    assert (status.status, status.version, status.store) == ("ok", __version__, str(home))
    assert (status.scheduler, status.schedulers) == ("local", ["local"])
    assert (status.jobs_db.status, status.files_db.status) == ("up", "up")
    assert not status.auth_required
    if isinstance(conn.backend, HttpBackend):  # limits are the server's own
        assert (status.limits.max_configs, status.limits.max_body_bytes) == (
            DEFAULT_MAX_CONFIGS,
            DEFAULT_MAX_BODY_BYTES,
        )
    else:
        assert status.limits == NO_LIMITS


def test_methods(conn: Connection, tmp_path: Path) -> None:
    assert sorted(m.name for m in conn.list_methods()) == sorted(
        [EXAMPLE, WORKLOAD, "Summarize Tables", "Text Statistics", "Threshold Filter", WORDS]
    )
    directory = write_method(tmp_path / "src", "Echo", "print('v1')\n")
    (v1,) = conn.register_method(directory)
    (directory / "main.py").write_text("print('v2')\n", encoding="utf-8")
    (v2,) = conn.register_method(directory)
    assert v1.function_hash != v2.function_hash
    versions = conn.method_versions("Echo")
    assert [(v.function_hash, v.latest) for v in versions] == [(v2.function_hash, True), (v1.function_hash, False)]
    assert len(conn.list_methods(latest_only=False)) == len(conn.list_methods()) + 1
    (again,) = conn.register_method(directory)
    assert again.function_hash == v2.function_hash
    with pytest.raises(NotFoundError, match="Method 'Nope' not found"):
        conn.method_versions("Nope")
    with pytest.raises(MethodSpecError, match="does not exist"):
        conn.register_method(tmp_path / "nowhere")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "method.json").write_text('{"name": "Bad"}', encoding="utf-8")
    with pytest.raises(MethodSpecError, match="command"):
        conn.register_method(tmp_path / "bad")


# --- side by side ----------------------------------------------------------------------------------------

VOLATILE = {"created_at", "started_at", "finished_at", "upload_date", "registered_at", "scheduler_id"}


class Normalizer:
    """Replaces ids with their order of appearance and drops times and pids, leaving what must agree."""

    def __init__(self) -> None:
        self.ids: dict[str, str] = {}

    def __call__(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: self._field(k, v) for k, v in value.items()}
        if isinstance(value, list):
            return [self(v) for v in value]
        return value

    def _field(self, key: str, value: Any) -> Any:
        if key in VOLATILE:
            return "<volatile>" if value is not None else None
        if key in ("job_id", "batch_id") and isinstance(value, str):
            return self.ids.setdefault(value, f"<{key} {len(self.ids)}>")
        if key in ("job_ids", "cancelled", "already_finished") and isinstance(value, list):
            return [self.ids.setdefault(v, f"<id {len(self.ids)}>") for v in value]
        return self(value)


def scenario(conn: Connection) -> list[Any]:
    """Every kind of answer, recorded as JSON."""
    transcript: list[Any] = []
    normalize = Normalizer()

    def record(value: Any) -> None:
        dumped = (
            [v.model_dump(mode="json") for v in value] if isinstance(value, list) else value.model_dump(mode="json")
        )
        transcript.append(normalize(dumped))

    files = {f.filename: f.file_hash for f in conn.list_files()}
    configs: list[Any] = [
        {"file_hash": files["poem.txt"], "method_name": EXAMPLE, "parameters": {"prefix": ">> "}},
        {"file_hash": files["readings_a.csv"], "method_name": "Threshold Filter", "parameters": {"threshold": 1}},
        {"file_hash": files["poem.txt"], "method_name": EXAMPLE, "parameters": {"prefix": ">> ", "uppercase": False}},
        {"file_hash": files["hello.txt"], "method_name": "Text Statistics", "parameters": {"top": 2}},
        {"file_hash": files["hello.txt"], "method_name": "Threshold Filter", "parameters": {"threshold": -1}},
        {"file_hash": files["hello.txt"], "method_name": "Nope"},
        {"file_hash": files["hello.txt"], "method_name": WORDS, "parameters": {"unit": 3}},
        [1, 2],
    ]
    first = conn.simulate_jobs(configs)
    record(first)
    record(wait_for_jobs(conn, job_ids(first)))  # type: ignore[arg-type]
    record(conn.simulate_jobs(configs))
    record(conn.simulate_jobs([*configs[:2], {**configs[0], "parameters": {"prefix": "!"}}], dry_run=True))
    record(conn.batch(first.batch_id or ""))
    record(conn.job_statuses(job_ids(first)))
    record(conn.batches())
    record(conn.simulate_job(configs[1]))
    record(conn.check_hashes([files["poem.txt"], "e" * 64]))
    record(sorted(conn.list_files(), key=lambda f: f.file_hash))
    record(conn.get_file(files["readings_a.csv"]))
    record(conn.list_methods(latest_only=False))
    record(conn.cancel([*job_ids(first)[:1], "nope"]))
    failing_calls = (
        lambda: conn.get_job("nope"), lambda: conn.method_versions("nope"), lambda: conn.batch("x"),
        lambda: conn.get_file("d" * 64), lambda: conn.simulate_jobs(configs[:1], append_to="x"),
    )  # fmt: skip
    for failing in failing_calls:
        try:
            failing()
        except DshpcError as exc:
            transcript.append([type(exc).__name__, str(exc)])
    return transcript


def test_transcripts_agree(tmp_path: Path) -> None:
    transcripts = {}
    for kind in BACKENDS:
        home = tmp_path / kind
        try:
            with ExitStack() as stack:
                transcripts[kind] = scenario(open_connection(kind, home, stack))
        finally:
            shutdown_home(home)
    embedded, http = transcripts["embedded"], transcripts["http"]
    assert len(embedded) == len(http)
    for step, (left, right) in enumerate(zip(embedded, http, strict=True)):
        assert left == right, f"step {step} differs"
