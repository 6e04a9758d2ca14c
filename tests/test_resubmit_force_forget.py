"""Resubmission modes, forced reruns and forgetting, on both backends (the embedded engine, and the HTTP client
against a real uvicorn server), with the same expectations (docs/design.md sections 10.2 and 10.3)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from http_support import thread_server
from support import wait_for_jobs, write_method
from test_backends_shared import BACKENDS, WORDS, WORKLOAD, open_connection

from dshpc_jupyter.backends.http import HttpBackend
from dshpc_jupyter.domain import status as st
from dshpc_jupyter.domain.errors import InvalidInputError
from dshpc_jupyter.domain.retries import SubmitOptions
from dshpc_jupyter.examples import data_files, methods_dir
from dshpc_jupyter.front.batch import Batch
from dshpc_jupyter.front.connection import Connection

# Writes outputs/out.txt holding ``text``: two configs with the same text write the same stored file.
WRITER = """\
import json, os, sys
text = json.load(open(sys.argv[-1]))["text"]  # a parameters-only job: the params file is the only argument
os.makedirs("outputs", exist_ok=True)
open("outputs/out.txt", "w").write(text)
print(json.dumps({"wrote": text}))
"""
READER = """\
import json, sys
print(json.dumps({"read": open(sys.argv[1]).read()}))
"""


@pytest.fixture(params=BACKENDS)
def conn(request: pytest.FixtureRequest, home: Path, tmp_path: Path) -> Iterator[Connection]:
    with ExitStack() as stack:
        connection = open_connection(request.param, home, stack)
        text = [{"name": "text", "type": "string", "required": True}, {"name": "tag", "type": "string"}]
        connection.register_method(write_method(tmp_path / "m", "Writer", WRITER, parameters=text))
        connection.register_method(write_method(tmp_path / "m", "Reader", READER))
        yield connection


def _hello(conn: Connection) -> str:
    return next(f.file_hash for f in conn.list_files() if f.filename == "hello.txt")


def _failed(conn: Connection) -> tuple[dict[str, Any], str]:
    """A config whose job has failed (exit 3), and that job's id."""
    config = {"file_hash": _hello(conn), "method_name": WORKLOAD, "parameters": {"seconds": 0, "exit_code": 3}}
    job_id = conn.simulate_jobs([config]).results[0].job_id or ""
    [record] = wait_for_jobs(conn, [job_id])  # type: ignore[arg-type]
    assert record.status == st.FAILED
    return config, job_id


@pytest.mark.parametrize(
    ("resubmit", "retry", "runs_again"),
    [("failed", None, True), ("retriable", None, False), ("retriable", {"on": ["F"]}, True), ("never", None, False)],
)
def test_each_resubmit_mode(conn: Connection, resubmit: str, retry: object, runs_again: bool) -> None:
    config, failed_id = _failed(conn)
    options = SubmitOptions.of(retry=retry, resubmit=resubmit)
    dry = conn.simulate_jobs([config], dry_run=True, options=options)
    live = conn.simulate_jobs([config], options=options)
    [would], [did] = dry.results, live.results
    if runs_again:
        assert (would.outcome, would.message) == ("resubmitted", "Would resubmit after previous failure")
        assert (did.outcome, did.old_status, did.new_status) == ("resubmitted", "F", "PD")
        assert did.job_id not in (None, failed_id)
        assert (live.resubmitted_jobs, live.successful_submissions, live.failed_submissions) == (1, 1, 0)
        wait_for_jobs(conn, [did.job_id or ""])  # type: ignore[arg-type]
    else:
        message = f"Failed job found; not resubmitted (resubmit={resubmit})"
        assert (would.outcome, would.message, would.job_id) == ("failed", message, failed_id)
        assert (did.outcome, did.old_status, did.new_status, did.job_id) == ("failed", "F", "F", failed_id)
        assert (live.resubmitted_jobs, live.successful_submissions, live.failed_submissions) == (0, 0, 1)
        assert len(conn.list_jobs(limit=1000)) == 1, "no job was made"
    assert live.completed_jobs + live.in_progress_jobs + live.failed_submissions == live.total_jobs


def test_the_dry_run_and_the_live_table_say_how_many_failed_jobs_run_again(conn: Connection) -> None:
    config, _ = _failed(conn)
    words = {"file_hash": _hello(conn), "method_name": WORDS}
    kept = Batch.submit([config, words], connection=conn, dry_run=True, resubmit="never")
    assert "1 new, 0 resubmitted, 0 invalid, 1 failed kept; nothing was submitted" in kept.stats.summary()
    again = Batch.submit([config, words], connection=conn, dry_run=True)
    assert "1 new, 1 resubmitted, 0 invalid; nothing was submitted" in again.stats.summary()
    forced = Batch.submit([config, words], connection=conn, dry_run=True, force=True)
    assert "1 new, 1 resubmitted, 0 invalid; nothing" in forced.stats.summary(), "force runs a failed job again"
    never = Batch.submit([config], connection=conn, resubmit="never").wait(30)
    assert never.stats.kept_failures == 1 and "1 failed kept" in never.stats.summary()
    assert never.df["state"].tolist() == ["failed"] and never.df["outcome"].tolist() == ["failed"]
    live = Batch.submit([config], connection=conn)
    assert "1 resubmitted" in live.stats.summary()
    live.wait(30)


def test_a_forced_rerun_runs_a_cached_config_and_becomes_the_cached_job(conn: Connection) -> None:
    config = {"file_hash": _hello(conn), "method_name": WORDS, "parameters": {"unit": "lines"}}
    first = conn.simulate_jobs([config]).results[0]
    [done] = wait_for_jobs(conn, [first.job_id or ""])  # type: ignore[arg-type]
    force = SubmitOptions.of(force=True)
    [would] = conn.simulate_jobs([config], dry_run=True, options=force).results
    assert (would.outcome, would.message, would.job_id) == (
        "rerun",
        "Completed job found; would run again (force)",
        None,
    )
    forced = conn.simulate_jobs([config, config], options=force)
    [rerun, shared] = forced.results
    assert (rerun.outcome, rerun.old_status, rerun.new_status) == ("rerun", "CD", "PD")
    assert rerun.job_id not in (None, done.job_id) and shared.job_id == rerun.job_id
    assert (shared.outcome, forced.successful_submissions, forced.resubmitted_jobs) == ("in_progress", 1, 0)
    slow = {"file_hash": _hello(conn), "method_name": WORKLOAD, "parameters": {"seconds": 30}}
    running = conn.simulate_jobs([slow]).results[0].job_id
    joined = conn.simulate_jobs([slow], options=force).results[0]
    assert (joined.outcome, joined.job_id) == ("in_progress", running), "joined, never doubled, even when forced"
    conn.cancel([running or ""])
    [new] = wait_for_jobs(conn, [rerun.job_id or ""])  # type: ignore[arg-type]
    again = conn.simulate_jobs([config]).results[0]
    assert (again.outcome, again.job_id, again.output) == ("cached", new.job_id, new.output)
    assert conn.get_job(done.job_id).status == "CD", "the replaced job stays in the history"
    dry = Batch.submit([config], connection=conn, force=True, dry_run=True)
    assert "0 new, 0 resubmitted, 0 invalid, 1 cached rerun; nothing" in dry.stats.summary()
    rerun_batch = Batch.submit([config], connection=conn, force=True).wait(30)
    assert rerun_batch.df["outcome"].tolist() == ["rerun"] and rerun_batch.df["attempt"].tolist() == [1]
    assert "1 cached rerun" in rerun_batch.stats.summary()


def _write(conn: Connection, text: str, tag: str = "") -> Any:
    config = {"method_name": "Writer", "parameters": {"text": text, "tag": tag}}
    [record] = wait_for_jobs(conn, [conn.simulate_jobs([config]).results[0].job_id or ""])  # type: ignore[arg-type]
    assert record.status == "CD", record.error
    return record


def test_forget_removes_ended_jobs_and_keeps_what_is_still_needed(conn: Connection, home: Path) -> None:
    alone, twin_a, twin_b = _write(conn, "alone"), _write(conn, "twin", "a"), _write(conn, "twin", "b")
    used = _write(conn, "used")
    [alone_hash], [twin_hash], [used_hash] = (r.output_files.values() for r in (alone, twin_a, used))
    assert twin_b.output_files == twin_a.output_files, "the twins wrote one stored file"
    reader = {"file_hash": used_hash, "method_name": "Reader"}
    [read] = wait_for_jobs(conn, [conn.simulate_jobs([reader]).results[0].job_id or ""])  # type: ignore[arg-type]
    assert read.status == "CD", "the output of 'used' is the input of another job"
    uploaded_first = conn.upload_file(b"mine")
    owned = _write(conn, "mine")
    running = conn.simulate_jobs([{"file_hash": _hello(conn), "method_name": WORKLOAD,
                                   "parameters": {"seconds": 30}}]).results[0].job_id or ""  # fmt: skip

    answer = conn.forget([alone.job_id, twin_a.job_id, used.job_id, owned.job_id, running, "nope", alone.job_id])
    assert answer.forgotten == [alone.job_id, twin_a.job_id, used.job_id, owned.job_id]
    assert (answer.in_progress, answer.not_found) == ([running], ["nope"])
    assert answer.removed_files == [alone_hash], "only the file nothing else needs"
    assert conn.job_statuses([alone.job_id, twin_a.job_id, twin_b.job_id]) == [conn.get_job(twin_b.job_id)]
    assert not (home / "jobs" / alone.job_id[:2] / alone.job_id).exists(), "its workspace went with it"
    stored = {f.file_hash for f in conn.list_files()}
    assert alone_hash not in stored and {twin_hash, used_hash, uploaded_first.file_hash} <= stored
    assert not (home / "files" / alone_hash[:2] / alone_hash).exists()
    assert conn.read_bytes(twin_hash) == b"twin" and conn.read_bytes(used_hash) == b"used"
    assert conn.read_bytes(uploaded_first.file_hash) == b"mine", "an upload made first keeps its file"

    again = conn.simulate_jobs([{"method_name": "Writer", "parameters": {"text": "alone", "tag": ""}}]).results[0]
    assert again.outcome == "new", "a forgotten job is out of the cache"
    assert conn.forget([twin_b.job_id]).removed_files == [twin_hash], "the last twin takes the file with it"
    conn.cancel([running])
    wait_for_jobs(conn, [running, again.job_id or ""])  # type: ignore[arg-type]


def test_batch_forget_forgets_the_batch_s_ended_jobs(conn: Connection) -> None:
    batch = Batch.submit([{"method_name": "Writer", "parameters": {"text": t}} for t in "ab"], connection=conn)
    answer = batch.wait(30).forget()
    assert sorted(answer.forgotten) == sorted(batch.df["job_id"].tolist())
    assert conn.job_statuses(answer.forgotten) == []


def test_http_routes_for_forgetting_and_bad_options(home: Path) -> None:
    with thread_server(home) as url, httpx.Client(base_url=url, timeout=30) as http:
        conn = Connection(HttpBackend(url))
        try:
            conn.register_method(methods_dir())
            conn.upload_files(data_files("hello.txt"))
            config = {"file_hash": _hello(conn), "method_name": WORKLOAD, "parameters": {"seconds": 30}}
            running = conn.simulate_jobs([config]).results[0].job_id or ""
            assert http.delete("/job/nope").status_code == 404
            busy = http.delete(f"/job/{running}")
            assert busy.status_code == 409 and "cancel it before forgetting it" in busy.json()["detail"]
            conn.cancel([running])
            wait_for_jobs(conn, [running])  # type: ignore[arg-type]
            gone = http.delete(f"/job/{running}")
            assert (gone.status_code, gone.json()["forgotten"]) == (200, [running])
            assert http.get(f"/job/{running}").status_code == 404
            listed = http.post("/jobs/forget", json={"job_ids": [running]}).json()
            assert listed == {"forgotten": [], "in_progress": [], "not_found": [running], "removed_files": []}
            assert http.post("/jobs/forget", json={"job_ids": "x"}).status_code == 422
        finally:
            conn.close()
        bad = [({"retry": {"on": ["CA"]}}, "retry"), ({"resubmit": "sometimes"}, "resubmit"),
               ({"retry": {"attempts": 99}}, "retry"), ({"force": "maybe"}, "force")]  # fmt: skip
        for extra, field in bad:
            response = http.post("/simulate-jobs", json={"jobs": [], **extra})
            assert response.status_code == 422 and field in response.json()["detail"], response.text
        caps = http.post("/simulate-jobs", json={"jobs": [], "retry": {"max_time": "soon"}})
        assert caps.status_code == 422
        assert caps.json()["detail"] == "retry.max_time: 'soon' is not a Slurm time (M, M:S, H:M:S or D-H:M:S)"


def test_options_are_checked_by_the_front_before_anything_is_sent(conn: Connection) -> None:
    with pytest.raises(InvalidInputError, match="resubmit: Input should be 'failed', 'retriable' or 'never'"):
        Batch.submit([], connection=conn, resubmit="sometimes")
