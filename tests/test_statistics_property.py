"""Property test: over random sequences of batches (valid, invalid and duplicate configs, equivalent spellings
of one parameter set), dry runs and cancellations, every answer matches a model of docs/design.md section 3 and the
statistics add up.

The store is real and the worker is real; the worker's only slot is held by a long job, so every job submitted
stays pending and the model can say exactly what each config must get.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs
from support import file_hashes, hold_the_slot, wait_for_jobs

from dshpc_jupyter.domain.models import MultiJobSimulationResponse
from dshpc_jupyter.examples import data_files, methods_dir
from dshpc_jupyter.service.engine import Engine
from dshpc_jupyter.service.factory import open_engine

WORK = "Simulated Workload"
UNKNOWN_FILE = "e" * 64
Key = tuple[str, float, int]

MESSAGES = {
    "cached": "Completed job found",
    "in_progress": "Job in progress",
    "new": "New job submitted",
    "resubmitted": "New job submitted after previous failure",
}
DRY_MESSAGES = {
    "cached": "Completed job found",
    "in_progress": "Job in progress",
    "new": "Would submit a new job",
    "resubmitted": "Would resubmit after previous failure",
}


@hs.composite
def valid_config(draw: hs.DrawFn, files: list[str]) -> tuple[dict[str, Any], Key]:
    """A config for the workload method and its key, spelled any of the ways that mean the same job."""
    file_hash = draw(hs.sampled_from(files))
    seconds = draw(hs.sampled_from([0, 0.1, 1, 2.5]))
    exit_code = draw(hs.sampled_from([0, 3]))
    items: list[tuple[str, Any]] = []
    if seconds != 0.1 or draw(hs.booleans()):
        items.append(("seconds", float(seconds) if draw(hs.booleans()) else seconds))
    if exit_code != 0 or draw(hs.booleans()):
        items.append(("exit_code", float(exit_code) if draw(hs.booleans()) else exit_code))
    if draw(hs.booleans()):
        items.append(("memory_mb", 0))
    parameters = dict(draw(hs.permutations(items)))
    return {"file_hash": file_hash, "method_name": WORK, "parameters": parameters}, (
        file_hash,
        float(seconds),
        exit_code,
    )


def invalid_configs(files: list[str]) -> hs.SearchStrategy[Any]:
    file_hash = files[0]
    return hs.sampled_from(
        [
            {"file_hash": file_hash, "method_name": "Missing Method"},
            {"file_hash": UNKNOWN_FILE, "method_name": WORK},
            {"file_hash": file_hash, "method_name": WORK, "parameters": {"seconds": "1"}},
            {"file_hash": file_hash, "method_name": WORK, "parameters": {"exit_code": True}},
            {"file_hash": file_hash, "method_name": WORK, "parameters": {"speed": 1}},
            {"file_hash": file_hash, "method_name": WORK, "parameters": [1]},
            {"file_hash": file_hash, "file_inputs": {"data": file_hash}, "method_name": WORK},  # inputs named twice
            "not a config",
            None,
        ]
    )


class Model:
    """What the store holds, as the per-config logic sees it: the state of each job key."""

    def __init__(self) -> None:
        self.state: dict[Key, str] = {}  # "CD", a failure code, or "PD" while in progress
        self.job: dict[Key, str] = {}

    def expect(self, items: list[tuple[Any, Key | None]]) -> list[tuple[str, str | None]]:
        """(outcome, old_status) of each config, in order."""
        expected: list[tuple[str, str | None]] = []
        leaders: dict[Key, str] = {}
        for _, key in items:
            if key is None:
                expected.append(("invalid", None))
            elif key in leaders:
                expected.append(("cached" if leaders[key] == "cached" else "in_progress", None))
            else:
                state = self.state.get(key)
                outcome = {None: "new", "CD": "cached", "PD": "in_progress"}.get(state, "resubmitted")
                expected.append((outcome, state if outcome == "resubmitted" else None))
                leaders[key] = outcome
        return expected


def check_statistics(response: MultiJobSimulationResponse, outcomes: list[str]) -> None:
    count = outcomes.count
    assert response.total_jobs == len(outcomes)
    assert response.completed_jobs == count("cached")
    assert response.in_progress_jobs == count("in_progress") + count("new") + count("resubmitted")
    assert response.successful_submissions == count("new") + count("resubmitted")
    assert response.resubmitted_jobs == count("resubmitted")
    assert response.failed_submissions == count("invalid")
    assert response.completed_jobs + response.in_progress_jobs + response.failed_submissions == response.total_jobs


def prepare(engine: Engine, model: Model) -> list[str]:
    """Completed and failed jobs for some keys (run for real), then the slot held. Returns the files used."""
    engine.register_method(methods_dir())
    for path in data_files():
        engine.upload_file(path)
    hashes = file_hashes(engine)
    files = [hashes["poem.txt"], hashes["readings_a.csv"]]
    seeded = [(f, 0.0, code) for f in files for code in (0, 3)]
    response = engine.simulate_jobs(
        [{"file_hash": f, "method_name": WORK, "parameters": {"seconds": s, "exit_code": c}} for f, s, c in seeded]
    )
    records = wait_for_jobs(engine, [r.job_id or "" for r in response.results])
    for key, record in zip(seeded, records, strict=True):
        model.state[key], model.job[key] = record.status, record.job_id
    assert sorted(model.state.values()) == ["CD", "CD", "F", "F"]
    hold_the_slot(engine)
    return files


def test_answers_and_statistics_match_the_model(home: Path) -> None:
    engine = open_engine(home, slots=1)
    model = Model()
    try:
        files = prepare(engine, model)
        invalid = invalid_configs(files).map(lambda c: (c, None))
        config = hs.integers(0, 3).flatmap(lambda i: invalid if i == 0 else valid_config(files))  # 3 valid : 1
        action = hs.one_of(
            hs.tuples(hs.sampled_from(["batch", "dry"]), hs.lists(config, min_size=1, max_size=8)),
            hs.tuples(hs.just("cancel"), hs.integers(min_value=0, max_value=50)),
        )

        @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(hs.lists(action, min_size=1, max_size=4))
        def run(actions: list[tuple[str, Any]]) -> None:
            for kind, argument in actions:
                if kind == "cancel":
                    cancel_one(engine, model, argument)
                else:
                    submit(engine, model, argument, dry_run=kind == "dry")

        run()
    finally:
        engine.close()


def cancel_one(engine: Engine, model: Model, index: int) -> None:
    pending = sorted(key for key, state in model.state.items() if state == "PD")
    if not pending:
        return
    key = pending[index % len(pending)]
    assert engine.cancel([model.job[key]]).cancelled == [model.job[key]]
    assert engine.job_statuses([model.job[key]])[0].status == "CA", "a pending job is cancelled at once"
    model.state[key] = "CA"


def submit(engine: Engine, model: Model, items: list[tuple[Any, Key | None]], *, dry_run: bool) -> None:
    jobs_before = len(engine.list_jobs(limit=1_000_000))
    batches_before = len(engine.batches(limit=1_000_000))
    response = engine.simulate_jobs([config for config, _ in items], dry_run=dry_run)
    expected = model.expect(items)
    assert [(r.outcome, r.old_status) for r in response.results] == expected
    messages = DRY_MESSAGES if dry_run else MESSAGES
    first_of: dict[Key, str | None] = {}
    for (config, key), result in zip(items, response.results, strict=True):
        if key is None:
            assert result.job_id is None and result.new_status is None
            continue
        assert result.parameters == config["parameters"], "parameters echoed as given"
        assert result.file_hash == config["file_hash"] and result.method_name == WORK
        if key in first_of:
            assert result.job_id == first_of[key], "identical configs share one job"
            if dry_run and result.outcome == "in_progress":
                assert result.message == "Would share the job of an identical config in this batch"
            else:
                assert result.message == messages[result.outcome]
            continue
        first_of[key] = result.job_id
        assert result.message == messages[result.outcome]
        if result.outcome in ("cached", "in_progress"):
            assert result.job_id == model.job[key]
            assert result.new_status == ("CD" if result.outcome == "cached" else "PD")
        elif dry_run:
            assert result.job_id is None
        else:
            assert result.job_id is not None and result.new_status == "PD"
            model.state[key], model.job[key] = "PD", result.job_id
    check_statistics(response, [outcome for outcome, _ in expected])
    jobs_after = len(engine.list_jobs(limit=1_000_000))
    batches_after = len(engine.batches(limit=1_000_000))
    if dry_run:
        assert (jobs_after, batches_after, response.batch_id) == (jobs_before, batches_before, None)
    else:
        assert (jobs_after, batches_after) == (jobs_before + response.successful_submissions, batches_before + 1)
