"""The Slurm scheduler's view of its jobs in progress, kept up to date from the store's change stamps
(``Store.active_changes``, ``schedulers/slurm_active.py``): a refresh returns what changed since the last one
and nothing else, on a real store; ended jobs leave it (docs/design.md section 14.1)."""

from __future__ import annotations

from dshpc_jupyter.domain import status as st
from dshpc_jupyter.schedulers.slurm_active import ActiveView
from dshpc_jupyter.service.engine import Engine

EXAMPLE = "Example Python Method"


def pending(engine: Engine, *prefixes: str) -> list[str]:
    hello = {f.filename: f.file_hash for f in engine.list_files()}["hello.txt"]
    configs = [{"file_hash": hello, "method_name": EXAMPLE, "parameters": {"prefix": p}} for p in prefixes]
    ids = [r.job_id for r in engine.simulate_jobs(configs).results]
    assert all(ids)
    return [i for i in ids if i]


def test_a_refresh_reads_only_what_changed_since_the_last_one(queued_engine: Engine) -> None:
    engine = queued_engine
    first = pending(engine, "a", "b", "c")
    view = ActiveView("local")
    everything = view.refresh(engine.store)
    assert set(first) <= everything and set(first) <= set(view.jobs), "the first refresh reads every job"
    assert view.refresh(engine.store) == set(), "nothing changed"
    engine.store.set_scheduler_ids([(first[0], "7_0"), (first[1], "7_0")])
    assert view.refresh(engine.store) == {first[0], first[1]}
    assert view.by_task["7_0"] == {first[0], first[1]} and view.of_tasks({"7_0", "8_0"}) == {first[0], first[1]}
    view.watch = {first[0]}
    engine.cancel([first[0]])
    assert view.refresh(engine.store) == set(), "a cancelled job changed, but is no longer in progress"
    assert first[0] not in view.jobs and first[0] not in view.watch and view.by_task["7_0"] == {first[1]}
    (later,) = pending(engine, "d")
    assert view.refresh(engine.store) == {later} and view.jobs[later].status == st.PENDING


def test_another_schedulers_jobs_never_enter_the_view(queued_engine: Engine) -> None:
    engine = queued_engine
    view = ActiveView("slurm")
    assert view.refresh(engine.store) == set() and view.cursor is not None
    pending(engine, "x")
    assert view.refresh(engine.store) == set() and view.jobs == {}
