"""The per-config logic of docs/design.md section 3: messages, statistics, order, exactly-once, dry runs, batches."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from support import file_hashes, wait_for_jobs, write_method

from dshpc_jupyter.domain import status as st
from dshpc_jupyter.domain.errors import NotFoundError
from dshpc_jupyter.domain.models import BatchStatistics, MultiJobSimulationResponse
from dshpc_jupyter.schedulers.base import Refusal, Submission
from dshpc_jupyter.schedulers.local import LocalScheduler
from dshpc_jupyter.service.engine import Engine

PY = "Example Python Method"
WORK = "Simulated Workload"
UNKNOWN_FILE = "0" * 64


def stats(response: MultiJobSimulationResponse) -> dict[str, int]:
    return BatchStatistics.model_validate(response.model_dump()).model_dump()


def assert_invariant(response: MultiJobSimulationResponse) -> None:
    assert response.completed_jobs + response.in_progress_jobs + response.failed_submissions == response.total_jobs
    assert response.total_jobs == len(response.results)
    assert response.resubmitted_jobs <= response.successful_submissions


def job_count(engine: Engine) -> int:
    return len(engine.list_jobs(limit=1_000_000))


def test_new_job_then_completed_job_found(engine: Engine, example_hashes: dict[str, str]) -> None:
    config = {"file_hash": example_hashes["poem.txt"], "method_name": PY, "parameters": {"uppercase": True}}
    first = engine.simulate_jobs([config])
    [result] = first.results
    assert result.message == "New job submitted"
    assert (result.new_status, result.old_status, result.output, result.outcome) == ("PD", None, None, "new")
    assert result.job_id is not None and first.batch_id is not None
    assert stats(first) == {
        "total_jobs": 1, "successful_submissions": 1, "failed_submissions": 0, "completed_jobs": 0,
        "in_progress_jobs": 1, "resubmitted_jobs": 0,
    }  # fmt: skip

    [record] = wait_for_jobs(engine, [result.job_id])
    assert record.status == "CD" and record.exit_code == 0
    second = engine.simulate_jobs([config])
    [cached] = second.results
    assert cached.message == "Completed job found"
    assert (cached.job_id, cached.new_status, cached.old_status) == (result.job_id, "CD", None)
    assert cached.output == record.output and json.loads(cached.output or "")["result"].startswith("THE")
    assert stats(second) == {
        "total_jobs": 1, "successful_submissions": 0, "failed_submissions": 0, "completed_jobs": 1,
        "in_progress_jobs": 0, "resubmitted_jobs": 0,
    }  # fmt: skip


def test_job_in_progress_is_joined_not_duplicated(queued_engine: Engine) -> None:
    example_hashes = file_hashes(queued_engine)
    engine = queued_engine
    config = {"file_hash": example_hashes["poem.txt"], "method_name": PY}
    first = engine.simulate_jobs([config]).results[0]
    again = engine.simulate_jobs([config])
    [joined] = again.results
    assert joined.message == "Job in progress"
    assert (joined.job_id, joined.new_status, joined.old_status, joined.output) == (first.job_id, "PD", None, None)
    assert stats(again) == {
        "total_jobs": 1, "successful_submissions": 0, "failed_submissions": 0, "completed_jobs": 0,
        "in_progress_jobs": 1, "resubmitted_jobs": 0,
    }  # fmt: skip
    # A running job (the one holding the slot) is joined the same way, with its current code.
    hello = example_hashes["hello.txt"]
    running = engine.simulate_jobs([{"file_hash": hello, "method_name": WORK, "parameters": {"seconds": 110}}])
    assert (running.results[0].message, running.results[0].new_status) == ("Job in progress", "R")


def test_resubmission_after_failure(engine: Engine, example_hashes: dict[str, str]) -> None:
    config = {"file_hash": example_hashes["readings_a.csv"], "method_name": "Threshold Filter",
              "parameters": {"threshold": -1}}  # fmt: skip
    failed = engine.simulate_jobs([config]).results[0]
    [record] = wait_for_jobs(engine, [failed.job_id or ""])
    assert (record.status, record.exit_code) == ("F", 2)
    assert "threshold must be non-negative" in (record.error or "")

    again = engine.simulate_jobs([config])
    [result] = again.results
    assert result.message == "New job submitted after previous failure"
    assert (result.old_status, result.new_status, result.outcome) == ("F", "PD", "resubmitted")
    assert result.job_id not in (None, failed.job_id)
    assert stats(again) == {
        "total_jobs": 1, "successful_submissions": 1, "failed_submissions": 0, "completed_jobs": 0,
        "in_progress_jobs": 1, "resubmitted_jobs": 1,
    }  # fmt: skip
    assert engine.get_job(failed.job_id or "").status == "F", "the failed job is kept as it was"


def test_unknown_method_and_file(engine: Engine, example_hashes: dict[str, str]) -> None:
    params = {"b": 1, "a": [2]}
    response = engine.simulate_jobs(
        [
            {"file_hash": example_hashes["poem.txt"], "method_name": "No Such Method", "parameters": params},
            {"file_hash": UNKNOWN_FILE, "method_name": PY},
        ]
    )
    missing_method, missing_file = response.results
    assert missing_method.model_dump(exclude={"outcome"}) == {
        "job_id": None, "new_status": None, "old_status": None, "output": None,
        "message": "Method 'No Such Method' not found", "file_hash": example_hashes["poem.txt"],
        "method_name": "No Such Method", "function_hash": None, "parameters": params, "file_inputs": None,
    }  # fmt: skip
    assert list(missing_method.parameters) == ["b", "a"], "parameters echoed as given"
    assert missing_file.message == f"File '{UNKNOWN_FILE}' not found"
    assert (missing_file.job_id, missing_file.new_status, missing_file.outcome) == (None, None, "invalid")
    assert stats(response) == {
        "total_jobs": 2, "successful_submissions": 0, "failed_submissions": 2, "completed_jobs": 0,
        "in_progress_jobs": 0, "resubmitted_jobs": 0,
    }  # fmt: skip
    assert job_count(engine) == 0


def test_mixed_batch_serves_the_valid_configs_in_order(
    engine: Engine, example_hashes: dict[str, str], tmp_path: Path
) -> None:
    [needs] = engine.register_method(
        write_method(tmp_path, "Needs Word", "import sys\nprint(open(sys.argv[2]).read())\n",
                     parameters=[{"name": "word", "type": "string", "required": True}])
    )  # fmt: skip
    poem, hello = example_hashes["poem.txt"], example_hashes["hello.txt"]
    configs: list[Any] = [
        {"file_hash": poem, "method_name": PY, "parameters": {"prefix": ">", "uppercase": True}},
        {"file_hash": poem, "method_name": "Nope"},
        {"file_hash": UNKNOWN_FILE, "method_name": PY},
        {"file_hash": poem, "method_name": PY, "parameters": {"uppercase": "yes"}},
        {"file_hash": hello, "method_name": "Needs Word", "parameters": {}},
        {"file_hash": hello, "method_name": "Needs Word", "parameters": {"word": "hi"}},
        {"file_hash": poem, "method_name": PY, "parameters": "uppercase"},
        ["not", "an", "object"],
        {"method_name": PY, "file_hash": poem, "file_inputs": {"data": poem}},
        {"file_hash": poem},
        {"file_hash": 7, "method_name": PY},
        {"file_hash": hello, "method_name": "Word Count (bash)"},
    ]
    response = engine.simulate_jobs(configs)
    expected = [
        ("new", "New job submitted"),
        ("invalid", "Method 'Nope' not found"),
        ("invalid", f"File '{UNKNOWN_FILE}' not found"),
        ("invalid", "Invalid parameters: parameter 'uppercase' must be a boolean, got string \"yes\""),
        ("invalid", "Invalid parameters: missing required parameter 'word'"),
        ("new", "New job submitted"),
        ("invalid", "Invalid parameters: parameters must be a JSON object, got string"),
        ("invalid", "Invalid config: a job must be a JSON object, got array"),
        (
            "invalid",
            "Invalid config: field 'file_inputs' cannot be given together with field 'file_hash': name the"
            " inputs one way",
        ),
        ("invalid", "Invalid config: field 'method_name' is required"),
        ("invalid", "Invalid config: field 'file_hash' must be a string, got integer"),
        ("new", "New job submitted"),
    ]
    assert [(r.outcome, r.message) for r in response.results] == expected
    assert_invariant(response)
    assert (response.failed_submissions, response.successful_submissions, response.in_progress_jobs) == (9, 3, 3)

    methods = {m.name: m.function_hash for m in engine.list_methods()}
    for config, result in zip(configs, response.results, strict=True):
        if not isinstance(config, dict):
            assert (result.file_hash, result.method_name, result.parameters) == (None, None, None)
            continue
        if isinstance(config.get("file_hash"), str):
            assert result.file_hash == config["file_hash"]
        assert result.method_name == config.get("method_name")
        assert result.parameters == config.get("parameters", {})
        if result.outcome == "new" or config.get("file_hash") == UNKNOWN_FILE:
            assert result.function_hash == methods[config["method_name"]]
    assert response.results[5].function_hash == needs.function_hash

    served = [r.job_id for r in response.results if r.job_id]
    records = wait_for_jobs(engine, [job_id for job_id in served if job_id])
    assert [r.status for r in records] == ["CD", "CD", "CD"]
    assert json.loads(records[0].output or "")["result"].startswith(">THE")
    assert json.loads(records[1].output or "") == {"word": "hi"}
    assert json.loads(records[2].output or "") == {"unit": "words", "count": 13}
    assert job_count(engine) == 3


def test_identical_configs_in_one_batch_make_one_job(queued_engine: Engine) -> None:
    example_hashes = file_hashes(queued_engine)
    poem, hello = example_hashes["poem.txt"], example_hashes["hello.txt"]
    configs: list[dict[str, Any]] = [
        {"file_hash": poem, "method_name": PY, "parameters": {"uppercase": True, "prefix": ""}},
        {"file_hash": hello, "method_name": PY},
        {"file_hash": poem, "method_name": PY, "parameters": {"prefix": "", "uppercase": True}},
        {"file_hash": poem, "method_name": PY, "parameters": {"uppercase": True}},
        {"file_hash": hello, "method_name": PY, "parameters": {"uppercase": False}},
        {"file_hash": hello, "method_name": PY, "parameters": {"uppercase": False, "prefix": ""}},
    ]
    before = job_count(queued_engine)
    response = queued_engine.simulate_jobs(configs)
    results = response.results
    assert [r.message for r in results] == ["New job submitted", "New job submitted"] + ["Job in progress"] * 4
    assert results[0].job_id == results[2].job_id == results[3].job_id
    assert results[1].job_id == results[4].job_id == results[5].job_id != results[0].job_id
    assert all(r.new_status == "PD" and r.old_status is None for r in results)
    assert [r.parameters for r in results] == [c.get("parameters", {}) for c in configs]
    assert (response.successful_submissions, response.in_progress_jobs, response.completed_jobs) == (2, 6, 0)
    assert_invariant(response)
    assert job_count(queued_engine) == before + 2


def test_equivalent_parameters_find_the_same_completed_job(engine: Engine, example_hashes: dict[str, str]) -> None:
    csv = example_hashes["readings_b.csv"]
    first = engine.simulate_jobs(
        [{"file_hash": csv, "method_name": "Threshold Filter", "parameters": {"threshold": 1}}]
    )
    wait_for_jobs(engine, [first.results[0].job_id or ""])
    variants: list[dict[str, Any]] = [
        {"threshold": 1.0},
        {"column": "value", "threshold": 1},
        {"threshold": 1, "column": "value"},
    ]
    again = engine.simulate_jobs(
        [{"file_hash": csv, "method_name": "Threshold Filter", "parameters": p} for p in variants]
    )
    assert [r.message for r in again.results] == ["Completed job found"] * 3
    assert {r.job_id for r in again.results} == {first.results[0].job_id}
    assert [r.parameters for r in again.results] == variants, "each result echoes its own parameters"
    assert again.completed_jobs == 3 and again.successful_submissions == 0
    # {} and {"uppercase": false}: the default makes them one job, served from the cache once completed.
    poem = example_hashes["poem.txt"]
    plain = engine.simulate_jobs([{"file_hash": poem, "method_name": PY, "parameters": {}}]).results[0]
    wait_for_jobs(engine, [plain.job_id or ""])
    explicit = engine.simulate_jobs([{"file_hash": poem, "method_name": PY, "parameters": {"uppercase": False}}])
    assert (explicit.results[0].message, explicit.results[0].job_id) == ("Completed job found", plain.job_id)
    boolean_as_int = engine.simulate_jobs([{"file_hash": poem, "method_name": PY, "parameters": {"uppercase": 0}}])
    assert boolean_as_int.results[0].outcome == "invalid", "0 is not False for a boolean parameter"


def test_simulate_job_single_config(engine: Engine, example_hashes: dict[str, str]) -> None:
    config = {"file_hash": example_hashes["hello.txt"], "method_name": PY, "parameters": {"prefix": "#"}}
    first = engine.simulate_job(config)
    assert (first.message, first.new_status, first.outcome) == ("New job submitted", "PD", "new")
    wait_for_jobs(engine, [first.job_id or ""])
    second = engine.simulate_job(config)
    assert (second.message, second.job_id, second.new_status) == ("Completed job found", first.job_id, "CD")
    assert second.output is not None
    missing = engine.simulate_job({"file_hash": UNKNOWN_FILE, "method_name": "Nope"})
    assert (missing.message, missing.job_id, missing.new_status) == ("Method 'Nope' not found", None, None)
    assert engine.batches() == [], "a single-job call records no batch"


# --- dry run ----------------------------------------------------------------------------------------


def test_dry_run_answers_without_submitting_or_recording(engine: Engine, example_hashes: dict[str, str]) -> None:
    poem, hello, csv = example_hashes["poem.txt"], example_hashes["hello.txt"], example_hashes["readings_a.csv"]
    cached = {"file_hash": poem, "method_name": PY}
    failed = {"file_hash": csv, "method_name": "Threshold Filter", "parameters": {"threshold": -2}}
    running = {"file_hash": hello, "method_name": WORK, "parameters": {"seconds": 60}}
    setup = engine.simulate_jobs([cached, failed, running])
    wait_for_jobs(engine, [r.job_id or "" for r in setup.results[:2]])
    jobs_before, batches_before = job_count(engine), len(engine.batches())

    fresh = {"file_hash": hello, "method_name": "Word Count (bash)", "parameters": {"unit": "lines"}}
    configs: list[dict[str, Any]] = [
        cached,
        failed,
        running,
        fresh,
        {"file_hash": hello, "method_name": "Nope"},
        fresh,
        failed,
    ]
    dry = engine.simulate_jobs(configs, dry_run=True)
    assert dry.dry_run is True and dry.batch_id is None
    assert [(r.outcome, r.message) for r in dry.results] == [
        ("cached", "Completed job found"),
        ("resubmitted", "Would resubmit after previous failure"),
        ("in_progress", "Job in progress"),
        ("new", "Would submit a new job"),
        ("invalid", "Method 'Nope' not found"),
        ("in_progress", "Would share the job of an identical config in this batch"),
        ("in_progress", "Would share the job of an identical config in this batch"),
    ]
    assert dry.results[0].job_id == setup.results[0].job_id and dry.results[0].output is not None
    assert (dry.results[1].old_status, dry.results[1].job_id) == ("F", None)
    assert dry.results[2].job_id == setup.results[2].job_id and dry.results[2].new_status in st.IN_PROGRESS_CODES
    assert dry.results[3].job_id is None
    assert stats(dry) == {
        "total_jobs": 7, "successful_submissions": 2, "failed_submissions": 1, "completed_jobs": 1,
        "in_progress_jobs": 5, "resubmitted_jobs": 1,
    }  # fmt: skip
    assert (job_count(engine), len(engine.batches())) == (jobs_before, batches_before)

    real = engine.simulate_jobs(configs[:4])
    assert [r.outcome for r in real.results] == ["cached", "resubmitted", "in_progress", "new"], "nothing changed"


# --- job statuses, cancellation ---------------------------------------------------------------------


def test_job_statuses_for_many_ids_in_one_call(queued_engine: Engine) -> None:
    example_hashes = file_hashes(queued_engine)
    files = [example_hashes[name] for name in ("poem.txt", "hello.txt", "readings_a.csv", "readings_b.csv")]
    configs = [
        {"file_hash": f, "method_name": WORK, "parameters": {"seconds": i / 100}} for i in range(75) for f in files
    ]
    response = queued_engine.simulate_jobs(configs)
    ids = [r.job_id or "" for r in response.results]
    assert len(set(ids)) == 300
    asked = [*reversed(ids), "not-a-job", ids[0]]
    records = queued_engine.job_statuses(asked)
    assert [r.job_id for r in records] == [*reversed(ids), ids[0]], "asked order, unknown ids left out"
    assert {r.status for r in records} == {"PD"}
    record = records[-1]
    assert (record.file_hash, record.method_name, record.scheduler) == (files[0], WORK, "local")
    assert record.parameters == {"seconds": 0.0, "memory_mb": 0, "exit_code": 0}, "canonical, defaults filled"
    assert record.function_hash == response.results[0].function_hash
    assert queued_engine.job_statuses([]) == []
    with pytest.raises(NotFoundError, match="Job 'nope' not found"):
        queued_engine.get_job("nope")


def test_cancel_pending_jobs_then_resubmit(queued_engine: Engine) -> None:
    example_hashes = file_hashes(queued_engine)
    engine = queued_engine
    configs = [{"file_hash": example_hashes["poem.txt"], "method_name": PY, "parameters": {"prefix": str(i)}}
               for i in range(3)]  # fmt: skip
    ids = [r.job_id or "" for r in engine.simulate_jobs(configs).results]
    response = engine.cancel([ids[0], ids[1], ids[1], "ghost"])
    assert (response.cancelled, response.already_finished, response.not_found) == ([ids[0], ids[1]], [], ["ghost"])
    records = engine.job_statuses(ids)
    assert [r.status for r in records] == ["CA", "CA", "PD"], "pending jobs end at once"
    assert records[0].error == "cancelled while pending" and records[0].finished_at is not None
    again = engine.cancel([ids[0]])
    assert (again.cancelled, again.already_finished) == ([], [ids[0]])

    resubmitted = engine.simulate_jobs(configs)
    assert [(r.outcome, r.old_status) for r in resubmitted.results] == [
        ("resubmitted", "CA"), ("resubmitted", "CA"), ("in_progress", None),
    ]  # fmt: skip
    assert (
        resubmitted.resubmitted_jobs == 2
        and resubmitted.results[0].message == "New job submitted after previous failure"
    )


# --- batches ----------------------------------------------------------------------------------------


def test_batches_listed_newest_first_and_reopened_live(engine: Engine, example_hashes: dict[str, str]) -> None:
    poem, hello = example_hashes["poem.txt"], example_hashes["hello.txt"]
    first = engine.simulate_jobs([{"file_hash": poem, "method_name": PY}, {"file_hash": poem, "method_name": "Nope"}])
    second = engine.simulate_jobs([{"file_hash": hello, "method_name": "Word Count (bash)"}])
    third = engine.simulate_jobs(
        [
            {"file_hash": hello, "method_name": WORK, "parameters": {"seconds": 60}},
            {"file_hash": poem, "method_name": PY},
        ]
    )
    listed = engine.batches()
    assert [b.batch_id for b in listed] == [third.batch_id, second.batch_id, first.batch_id]
    assert [b.total_jobs for b in listed] == [2, 1, 2]
    assert listed[2].statistics.model_dump() == stats(first)
    assert [b.batch_id for b in engine.batches(limit=1)] == [third.batch_id]

    wait_for_jobs(engine, [first.results[0].job_id or "", second.results[0].job_id or ""])
    detail = engine.batch(first.batch_id or "")
    assert detail.statistics.model_dump() == stats(first), "statistics as answered at submission"
    assert [(r.job_id, r.message, r.outcome) for r in detail.results] == [
        (r.job_id, r.message, r.outcome) for r in first.results
    ]
    assert detail.results[0].output is not None and detail.results[0].output == detail.jobs[0].output
    assert [j.status for j in detail.jobs] == ["CD"]
    assert detail.live.model_dump() == {"pending": 0, "running": 0, "completed": 1, "failed": 0, "errors": 1}

    live = engine.batch(third.batch_id or "")
    assert live.live.completed == 1 and live.live.pending + live.live.running == 1
    cancelled = engine.cancel_batch(third.batch_id or "")
    assert cancelled.cancelled == [third.results[0].job_id]
    assert cancelled.already_finished == [third.results[1].job_id]
    wait_for_jobs(engine, [third.results[0].job_id or ""], timeout=20)
    after = engine.batch(third.batch_id or "")
    assert [j.status for j in after.jobs] == ["CA", "CD"]
    assert after.live.model_dump() == {"pending": 0, "running": 0, "completed": 1, "failed": 1, "errors": 0}

    with pytest.raises(NotFoundError, match="Batch 'missing' not found"):
        engine.batch("missing")
    with pytest.raises(NotFoundError):
        engine.cancel_batch("missing")


def test_batch_reopened_by_another_engine(engine: Engine, example_hashes: dict[str, str], home: Path) -> None:
    from dshpc_jupyter.service.factory import open_engine

    response = engine.simulate_jobs([{"file_hash": example_hashes["hello.txt"], "method_name": PY}])
    other = open_engine(home)
    try:
        assert [b.batch_id for b in other.batches()] == [response.batch_id]
        job_id = response.results[0].job_id or ""
        wait_for_jobs(other, [job_id])
        assert other.batch(response.batch_id or "").live.completed == 1
    finally:
        other.close()


# --- a scheduler that refuses (a fault the local scheduler cannot produce) ---------------------------


class RefusingScheduler(LocalScheduler):
    """The real local scheduler, refusing jobs of one file: how a Slurm ``sbatch`` rejection looks."""

    refuse_file = ""

    def submit(self, submissions: Sequence[Submission]) -> list[Refusal]:
        refused = [s for s in submissions if s.file_hash == self.refuse_file]
        super().submit([s for s in submissions if s.file_hash != self.refuse_file])
        return [Refusal(s.job_id, "queue is full") for s in refused]


def test_refused_submissions_count_as_failed(engine: Engine, example_hashes: dict[str, str]) -> None:
    scheduler = RefusingScheduler(engine.home, engine.store)
    scheduler.refuse_file = example_hashes["hello.txt"]
    refusing = Engine(engine.home, engine.store, scheduler)
    configs: list[dict[str, Any]] = [
        {"file_hash": example_hashes["hello.txt"], "method_name": PY},
        {"file_hash": example_hashes["poem.txt"], "method_name": PY},
        {"file_hash": example_hashes["hello.txt"], "method_name": PY, "parameters": {"uppercase": False}},
    ]
    response = refusing.simulate_jobs(configs)
    assert [(r.outcome, r.new_status, r.message) for r in response.results] == [
        ("refused", "F", "Submission failed: queue is full"),
        ("new", "PD", "New job submitted"),
        ("refused", "F", "Submission failed: queue is full"),
    ]
    assert (response.failed_submissions, response.successful_submissions, response.in_progress_jobs) == (2, 1, 1)
    assert_invariant(response)
    refused_job = engine.get_job(response.results[0].job_id or "")
    assert refused_job.status == "F" and "scheduler refused the job: queue is full" in (refused_job.error or "")
    recorded = engine.batch(response.batch_id or "")
    assert recorded.statistics.model_dump() == stats(response), "the batch records the refusals"
    assert recorded.results[0].outcome == "refused"

    retry = engine.simulate_jobs(configs[:1])
    assert (retry.results[0].outcome, retry.results[0].old_status) == ("resubmitted", "F")
    wait_for_jobs(engine, [r.job_id or "" for r in (response.results[1], retry.results[0])])


def test_file_hash_is_echoed_as_given(queued_engine: Engine) -> None:
    """An upper-case spelling finds the file (hashes are case-insensitive hex), and is echoed as sent."""
    poem = file_hashes(queued_engine)["poem.txt"]
    configs = [{"file_hash": poem.upper(), "method_name": PY}, {"file_hash": poem, "method_name": PY}]
    response = queued_engine.simulate_jobs(configs)
    assert [r.file_hash for r in response.results] == [poem.upper(), poem]
    assert [r.outcome for r in response.results] == ["new", "in_progress"], "one file, so one job"
    assert queued_engine.get_job(response.results[0].job_id or "").file_hash == poem
    reopened = queued_engine.batch(response.batch_id or "")
    assert [r.file_hash for r in reopened.results] == [poem.upper(), poem]
