"""Engine additions the HTTP client relies on: appending configs to a recorded batch (how a chunked batch
stays one batch), and batches whose echoed parameters hold integers beyond 64 bits."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from dshpc_jupyter.domain.errors import InvalidInputError, NotFoundError
from dshpc_jupyter.domain.models import BatchStatistics, JobRecord
from dshpc_jupyter.schedulers.base import Refusal, Submission
from dshpc_jupyter.service.engine import Engine
from dshpc_jupyter.store.sqlite import JobUpdate

WORDS = "Word Count (bash)"


def counts(statistics: BatchStatistics) -> dict[str, int]:
    return statistics.model_dump()


def test_appended_configs_join_the_batch_in_order(engine: Engine, example_hashes: dict[str, str]) -> None:
    poem, hello = example_hashes["poem.txt"], example_hashes["hello.txt"]
    first = engine.simulate_jobs([{"file_hash": poem, "method_name": WORDS}, {"file_hash": poem, "method_name": "?"}])
    second = engine.simulate_jobs(
        [{"file_hash": hello, "method_name": WORDS}, {"file_hash": poem, "method_name": WORDS}],
        append_to=first.batch_id,
    )
    assert second.batch_id == first.batch_id
    assert [r.message for r in second.results] == ["New job submitted", "Job in progress"]
    detail = engine.batch(first.batch_id or "")
    assert detail.total_jobs == 4
    assert [r.job_id for r in detail.results] == [r.job_id for r in first.results + second.results]
    expected = {k: getattr(first, k) + getattr(second, k) for k in BatchStatistics.model_fields}
    assert counts(detail.statistics) == expected
    assert [b.batch_id for b in engine.batches()] == [first.batch_id]


def test_appending_to_an_unknown_batch_changes_nothing(engine: Engine, example_hashes: dict[str, str]) -> None:
    config = {"file_hash": example_hashes["poem.txt"], "method_name": WORDS}
    with pytest.raises(NotFoundError, match="Batch 'nope' not found"):
        engine.simulate_jobs([config], append_to="nope")
    assert engine.list_jobs() == [] and engine.batches() == []
    with pytest.raises(InvalidInputError, match="dry run"):
        engine.simulate_jobs([config], dry_run=True, append_to="nope")


class Refusing:
    """A scheduler that refuses every job: a fault a real scheduler gives only when broken."""

    name = "local"

    def submit(self, submissions: Sequence[Submission]) -> list[Refusal]:
        return [Refusal(s.job_id, "no capacity") for s in submissions]

    def poll(self, jobs: Sequence[JobRecord]) -> list[JobUpdate]:
        return []

    def cancel(self, jobs: Sequence[JobRecord]) -> None:
        pass

    def close(self) -> None:
        pass


def test_refusals_in_an_appended_chunk_are_recorded_at_their_place(
    engine: Engine, example_hashes: dict[str, str]
) -> None:
    poem, hello = example_hashes["poem.txt"], example_hashes["hello.txt"]
    first = engine.simulate_jobs([{"file_hash": poem, "method_name": "?"}])
    refusing = Engine(engine.home, engine.store, Refusing())
    second = refusing.simulate_jobs([{"file_hash": hello, "method_name": WORDS}], append_to=first.batch_id)
    assert second.results[0].message == "Submission failed: no capacity"
    detail = engine.batch(first.batch_id or "")
    assert [r.message for r in detail.results] == ["Method '?' not found", "Submission failed: no capacity"]
    assert (detail.statistics.total_jobs, detail.statistics.failed_submissions) == (2, 2)


def test_parameters_beyond_64_bits_are_recorded(engine: Engine, example_hashes: dict[str, str]) -> None:
    config = {"file_hash": example_hashes["poem.txt"], "method_name": WORDS, "parameters": {"unit": 10**30}}
    response = engine.simulate_jobs([config])
    assert "'unit'" in response.results[0].message
    assert engine.batch(response.batch_id or "").results[0].parameters == {"unit": 10**30}
