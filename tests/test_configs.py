"""Configs read once (domain/configs.py): one validator for the request model, the engine and batch documents,
one message per problem; jobs and their batch recorded before the scheduler hears, refusals recorded after."""

from __future__ import annotations

import io
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import pytest

from dshpc_jupyter.domain.configs import DOCUMENT_TYPES, Config, ConfigError, json_type, parse_config
from dshpc_jupyter.domain.errors import SchedulerError
from dshpc_jupyter.domain.hashing import sha256_bytes, sha256_copy
from dshpc_jupyter.domain.home import Home
from dshpc_jupyter.domain.models import (
    JobConfig,
    MultiJobResult,
    MultiJobSimulationRequest,
    ResultRow,
    read_config,
)
from dshpc_jupyter.front.sweep import BatchSpecError, expand
from dshpc_jupyter.schedulers.base import Refusal, Submission
from dshpc_jupyter.schedulers.local import LocalScheduler
from dshpc_jupyter.service.engine import Engine
from dshpc_jupyter.store.sqlite import Store

WORDS = "Word Count (bash)"
H = "a" * 64


@pytest.mark.parametrize(
    ("value", "json", "document"),
    [
        (None, "null", "null"), (True, "boolean", "boolean"), (3, "integer", "integer"), (1.5, "number", "number"),
        ("x", "string", "string"), ([1], "array", "list"), ({}, "object", "mapping"),
        (OrderedDict(), "object", "mapping"), (b"x", "bytes", "bytes"), ((1,), "tuple", "tuple"),
    ],
)  # fmt: skip
def test_json_type_names_a_value_in_either_vocabulary(value: object, json: str, document: str) -> None:
    assert json_type(value) == json
    assert json_type(value, DOCUMENT_TYPES) == document


def test_a_readable_config_is_typed() -> None:
    assert parse_config({"file_hash": H, "method_name": "M"}) == Config(H, "M", {})
    assert parse_config(OrderedDict(file_hash=H, method_name="M", parameters=[1])) == Config(H, "M", [1])
    typed = Config(H, "M", {"x": 1})
    assert parse_config(typed) is typed
    assert read_config(JobConfig(file_hash=H, method_name="M", parameters={"x": 1})) == typed


BOTH = "cannot be given together with field 'file_hash': name the inputs one way"
NAMED = "must be an object from input name to file hash,"
NAME_RULE = "must be 1-64 of A-Z a-z 0-9 _ . - (not starting with '.')"
ARRAY_ITEM = "must be an array of file hashes (strings), got an item of type integer"
ONE_OR_MANY = "must be a file hash or an array of them,"


def test_a_config_without_inputs_is_parameters_only_and_named_inputs_are_kept() -> None:
    assert parse_config({"method_name": "M", "parameters": 3}) == Config("", "M", 3)
    named = parse_config({"method_name": "M", "file_inputs": {"data": H, "reps": [H, H]}})
    assert named == Config("", "M", {}, {"data": H, "reps": [H, H]})


@pytest.mark.parametrize(
    ("item", "field", "problem", "echo"),
    [
        ([1], None, "a job must be a JSON object, got array", (None, None, None)),
        (None, None, "a job must be a JSON object, got null", (None, None, None)),
        ({"file_hash": H}, "method_name", "is required", (H, None, {})),
        ({"file_hash": H, "method_name": None}, "method_name", "is required", (H, None, {})),
        (
            {"file_hash": H, "file_inputs": {"a": H}, "method_name": "M", "parameters": 3},
            "file_inputs",
            BOTH,
            (H, "M", 3),
        ),
        ({"file_inputs": [H], "method_name": "M"}, "file_inputs", f"{NAMED} got array", (None, "M", {})),
        (
            {"file_inputs": {"a/b": H}, "method_name": "M"},
            "file_inputs",
            f"input name 'a/b' {NAME_RULE}",
            (None, "M", {}),
        ),
        (
            {"file_inputs": {".a": H}, "method_name": "M"},
            "file_inputs",
            f"input name '.a' {NAME_RULE}",
            (None, "M", {}),
        ),
        (
            {"file_inputs": {"a": []}, "method_name": "M"},
            "file_inputs.a",
            "must not be an empty array",
            (None, "M", {}),
        ),
        ({"file_inputs": {"a": [H, 3]}, "method_name": "M"}, "file_inputs.a", ARRAY_ITEM, (None, "M", {})),
        (  # a null item too: the fuzzer's {"k": [null]} once passed this check and reached a 500
            {"file_inputs": {"a": [None]}, "method_name": "M"},
            "file_inputs.a",
            "must be an array of file hashes (strings), got an item of type null",
            (None, "M", {}),
        ),
        ({"file_inputs": {"a": 3}, "method_name": "M"}, "file_inputs.a", f"{ONE_OR_MANY} got integer", (None, "M", {})),
        ({"file_hash": 7, "method_name": 8}, "method_name", "must be a string, got integer", (None, None, {})),
        ({"file_hash": [H], "method_name": "M"}, "file_hash", "must be a string, got array", (None, "M", {})),
    ],
)
def test_an_unreadable_config_names_its_first_bad_field(
    item: object, field: str | None, problem: str, echo: tuple[Any, Any, Any]
) -> None:
    error = parse_config(item)
    assert isinstance(error, ConfigError)
    assert (error.field, error.problem) == (field, problem)
    assert (error.file_hash, error.method_name, error.parameters) == echo
    assert error.message == (f"Invalid config: field '{field}' {problem}" if field else f"Invalid config: {problem}")
    assert parse_config(error) is error


def test_the_request_model_reads_every_item_and_refuses_none() -> None:
    body = b'{"jobs": [{"file_hash": "%s", "method_name": "M"}, 3, {"file_hash": 7, "method_name": "M"}]}' % H.encode()
    jobs = MultiJobSimulationRequest.model_validate_json(body).jobs
    assert jobs[0] == Config(H, "M", {})
    assert [(j.field, j.problem) for j in jobs[1:] if isinstance(j, ConfigError)] == [
        (None, "a job must be a JSON object, got integer"),
        ("file_hash", "must be a string, got integer"),
    ]


@pytest.mark.parametrize(
    "item", [{"file_hash": H}, {"file_hash": H, "method_name": 3}, {"method_name": "M", "file_hash": [H]}]
)
def test_the_engine_and_a_batch_document_give_one_problem_the_same_words(engine: Engine, item: Any) -> None:
    error = parse_config(item)
    assert isinstance(error, ConfigError)
    [result] = engine.simulate_jobs([item], dry_run=True).results
    assert result.message == f"Invalid config: field '{error.field}' {error.problem}"
    with pytest.raises(BatchSpecError) as caught:
        expand([item])
    assert str(caught.value) == f"configs[0].{error.field}: {error.problem}"


def test_the_engine_takes_configs_in_every_form(engine: Engine, example_hashes: dict[str, str]) -> None:
    poem = example_hashes["poem.txt"]
    forms: list[Any] = [
        {"file_hash": poem, "method_name": WORDS},
        JobConfig(file_hash=poem, method_name=WORDS),
        Config(poem.upper(), WORDS, {}),
        ConfigError("file_hash", "is required", None, WORDS, {}),
    ]
    response = engine.simulate_jobs(forms, dry_run=True)
    assert [r.outcome for r in response.results] == ["new", "in_progress", "in_progress", "invalid"]
    assert response.results[2].file_hash == poem.upper(), "echoed as sent"
    assert response.results[3].message == "Invalid config: field 'file_hash' is required"


def test_a_result_row_has_the_fields_of_a_result() -> None:
    assert list(ResultRow.__annotations__) == list(MultiJobResult.model_fields)


class Watching(LocalScheduler):
    """The local scheduler, noting what the store held when it was asked to submit; it may refuse or raise."""

    refuse = fail = False
    seen: tuple[list[str], int] | None = None

    def __init__(self, home: Home, store: Store) -> None:
        super().__init__(home, store)
        self.store = store  # the test looks at the whole store; a scheduler itself only gets the ledger

    def submit(self, submissions: Sequence[Submission]) -> list[Refusal]:
        recorded = [job.job_id for job in self.store.get_jobs([s.job_id for s in submissions])]
        self.seen = (recorded, len(self.store.list_batches()))
        if self.fail:
            raise SchedulerError("the queue is down")
        return [Refusal(s.job_id, "no room") for s in submissions] if self.refuse else super().submit(submissions)


@pytest.mark.parametrize("refuse", [False, True])
def test_jobs_and_their_batch_are_recorded_before_the_scheduler_hears(
    engine: Engine, example_hashes: dict[str, str], refuse: bool
) -> None:
    scheduler = Watching(engine.home, engine.store)
    scheduler.refuse = refuse
    watched = Engine(engine.home, engine.store, scheduler)
    config = {"file_hash": example_hashes["poem.txt"], "method_name": WORDS}
    response = watched.simulate_jobs([config, config])
    assert scheduler.seen == ([response.results[0].job_id], 1)
    detail = engine.batch(response.batch_id or "")
    assert [r.outcome for r in detail.results] == (["refused"] * 2 if refuse else ["new", "in_progress"])
    assert [r.message for r in detail.results] == [r.message for r in response.results]
    assert detail.statistics.model_dump() == {k: getattr(response, k) for k in detail.statistics.model_dump()}


class AppendingMeanwhile(Watching):
    """Refuses, but first lets another caller append a chunk to the batch being submitted."""

    other: Engine | None = None
    config: dict[str, str] | None = None

    def submit(self, submissions: Sequence[Submission]) -> list[Refusal]:
        assert self.other is not None and self.config is not None
        [batch] = self.other.batches()
        self.other.simulate_jobs([self.config], append_to=batch.batch_id)
        return [Refusal(s.job_id, "no room") for s in submissions]


def test_recording_refusals_keeps_a_chunk_appended_meanwhile(engine: Engine, example_hashes: dict[str, str]) -> None:
    scheduler = AppendingMeanwhile(engine.home, engine.store)
    scheduler.other, scheduler.config = engine, {"file_hash": example_hashes["hello.txt"], "method_name": WORDS}
    response = Engine(engine.home, engine.store, scheduler).simulate_jobs(
        [{"file_hash": example_hashes["poem.txt"], "method_name": WORDS}, {"file_hash": "?", "method_name": WORDS}]
    )
    detail = engine.batch(response.batch_id or "")
    assert [r.outcome for r in detail.results] == ["refused", "invalid", "new"]
    assert (detail.statistics.total_jobs, detail.statistics.failed_submissions) == (3, 2)
    assert detail.statistics.successful_submissions == 1


def test_a_scheduler_that_raises_still_leaves_the_batch_recorded(
    engine: Engine, example_hashes: dict[str, str]
) -> None:
    scheduler = Watching(engine.home, engine.store)
    scheduler.fail = True
    watched = Engine(engine.home, engine.store, scheduler)
    with pytest.raises(SchedulerError, match="the queue is down"):
        watched.simulate_jobs([{"file_hash": example_hashes["poem.txt"], "method_name": WORDS}])
    [summary] = engine.batches()
    [job] = engine.list_jobs()
    assert [r.job_id for r in engine.batch(summary.batch_id).results] == [job.job_id]


def test_sha256_copy_hashes_and_copies_in_one_pass() -> None:
    data = bytes(range(256)) * 10_000
    out = io.BytesIO()
    assert sha256_copy(io.BytesIO(data), out) == (sha256_bytes(data), len(data))
    assert out.getvalue() == data
    assert sha256_copy(io.BytesIO(b"")) == (sha256_bytes(b""), 0)
