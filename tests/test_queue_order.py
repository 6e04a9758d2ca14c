"""Priorities and fair share on the real local worker (issue 12, point 5): pending jobs start by priority, then
round-robin across batches of equal priority, and a pending job's record says its place in the queue; a bad
priority is refused naming the field; a store of schema version 2 is upgraded with its jobs queued at 0."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from http_support import thread_server
from store_versions import downgrade_to_2
from support import wait_for_jobs, wait_until, write_method

from dshpc_jupyter.backends.http import HttpBackend
from dshpc_jupyter.domain import status as st
from dshpc_jupyter.domain.errors import InvalidInputError
from dshpc_jupyter.front.batch import Batch
from dshpc_jupyter.front.connection import Connection
from dshpc_jupyter.jupyter.display import state_label
from dshpc_jupyter.schedulers.slot_runner import AHEAD_ENV
from dshpc_jupyter.service.engine import Engine
from dshpc_jupyter.service.factory import open_engine
from dshpc_jupyter.store import queue as store_queue
from dshpc_jupyter.store.schema import SCHEMA_VERSION

HOLD = "import json, sys, time\ntime.sleep(json.load(open(sys.argv[1]))['seconds'])\n"
ECHO = "import json, sys\nprint(json.dumps(json.load(open(sys.argv[1]))))\n"


@pytest.fixture
def one_slot(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """An engine whose local worker runs one job at a time, with a holding method and a quick one.

    Its worker hands no job ahead (``DSHPC_WORKER_AHEAD_S=0``): these tests pin the queue's order, and a slot
    runner may hold up to three tiny jobs claimed before a later batch arrived (docs/design.md section 7.6,
    tests/test_slot_ahead.py), which would shift the turns they count by as many."""
    monkeypatch.setenv(AHEAD_ENV, "0")
    engine = open_engine(home, slots=1)
    engine.register_method(
        write_method(tmp_path / "m", "Hold", HOLD, parameters=[{"name": "seconds", "type": "number"}])
    )
    engine.register_method(write_method(tmp_path / "m", "Echo", ECHO, parameters=[{"name": "tag", "type": "string"}]))
    yield engine
    engine.close()


def hold(engine: Engine, seconds: float = 3.0) -> str:
    """Occupy the only slot, so that what is submitted next waits in the queue."""
    job_id = engine.simulate_jobs([{"method_name": "Hold", "parameters": {"seconds": seconds}}]).results[0].job_id
    assert job_id
    wait_until(lambda: engine.job_statuses([job_id])[0].status == st.RUNNING, 30, "the slot to be held")
    return job_id


def echo(engine: Engine, tags: list[str], priority: int = 0) -> dict[str, str]:
    response = engine.simulate_jobs(
        [{"method_name": "Echo", "parameters": {"tag": t}} for t in tags], priority=priority
    )
    assert [r.outcome for r in response.results] == ["new"] * len(tags)
    return {r.job_id or "": tag for r, tag in zip(response.results, tags, strict=True)}


def start_order(engine: Engine, tags: dict[str, str]) -> list[str]:
    records = wait_for_jobs(engine, list(tags), timeout=120)
    assert {r.status for r in records} == {st.COMPLETED}
    return [tags[r.job_id] for r in sorted(records, key=lambda r: r.started_at or r.created_at)]


def queue(engine: Engine, tags: dict[str, str]) -> list[str]:
    """The tags in the order of their jobs' queue positions (every one of them pending)."""
    records = engine.job_statuses(list(tags))
    assert all(r.status == st.PENDING and r.queue_position is not None for r in records), records
    return [tags[r.job_id] for r in sorted(records, key=lambda r: r.queue_position or 0)]


def test_higher_priority_starts_first(one_slot: Engine) -> None:
    hold(one_slot)
    tags = echo(one_slot, ["a0", "a1", "a2"]) | echo(one_slot, ["low"], priority=-1)
    tags |= echo(one_slot, ["urgent0", "urgent1"], priority=5)
    expected = ["urgent0", "urgent1", "a0", "a1", "a2", "low"]
    assert queue(one_slot, tags) == expected
    positions = sorted(r.queue_position or 0 for r in one_slot.job_statuses(list(tags)))
    assert positions == list(range(1, 7))
    assert start_order(one_slot, tags) == expected
    assert all(r.queue_position is None for r in one_slot.job_statuses(list(tags)))


def test_a_small_batch_behind_a_big_one_starts_at_once(one_slot: Engine) -> None:
    hold(one_slot)
    big = echo(one_slot, [f"big{i}" for i in range(6)])
    small = echo(one_slot, ["small0", "small1", "small2"])
    expected = ["small0", "small1", "small2", *big.values()]
    assert queue(one_slot, big | small) == expected
    assert start_order(one_slot, big | small) == expected


def test_batches_of_equal_priority_take_turns_after_the_head_start(
    one_slot: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a head start of 2 turns: the newcomer's first two, then one job of each batch in turn."""
    monkeypatch.setattr(store_queue, "HEAD_START", 2)
    hold(one_slot)
    big = echo(one_slot, [f"big{i}" for i in range(6)])
    small = echo(one_slot, [f"small{i}" for i in range(5)])
    tags = big | small
    expected = ["small0", "small1", "big0", "small2", "big1", "small3", "big2", "small4", "big3", "big4", "big5"]
    assert queue(one_slot, tags) == expected
    assert start_order(one_slot, tags) == expected


def test_a_batch_arriving_later_joins_the_turns_where_the_queue_is(
    one_slot: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not at the back (it would wait for all of the big batch), and ahead of it by its head start only."""
    monkeypatch.setattr(store_queue, "HEAD_START", 1)
    holder = hold(one_slot)
    big = echo(one_slot, [f"big{i}" for i in range(8)])
    wait_for_jobs(one_slot, [holder])
    wait_until(
        lambda: sum(r.status == st.COMPLETED for r in one_slot.job_statuses(list(big))) >= 3, 60, "3 big jobs to end"
    )
    hold_again = hold(one_slot, 2.0)  # at priority 0 too: it takes its turn, then holds the slot
    small = echo(one_slot, ["small0", "small1"])
    order = start_order(one_slot, big | small)
    wait_for_jobs(one_slot, [hold_again])
    first_small = order.index("small0")
    assert order[first_small : first_small + 4] == ["small0", order[first_small + 1], "small1", order[first_small + 3]]
    assert order[first_small + 1].startswith("big") and order[first_small + 3].startswith("big")


def test_batch_submit_passes_the_priority(one_slot: Engine) -> None:
    from dshpc_jupyter.backends.embedded import EmbeddedBackend

    conn = Connection(EmbeddedBackend(one_slot))
    hold(one_slot)
    plain = Batch.submit([{"method_name": "Echo", "parameters": {"tag": "plain"}}], connection=conn)
    urgent = Batch.submit([{"method_name": "Echo", "parameters": {"tag": "urgent"}}], connection=conn, priority=9)
    urgent.refresh()
    plain.refresh()
    assert (urgent.df.loc[0, "queue_position"], plain.df.loc[0, "queue_position"]) == (1, 2)
    assert state_label(plain.rows()[0]) == "pending (new) · #2 in queue"
    urgent.wait(timeout=60)
    plain.wait(timeout=60)
    assert urgent.df.loc[0, "started_at"] < plain.df.loc[0, "started_at"]


@pytest.mark.parametrize("priority", [True, 10**6, -10_001, "3"])
def test_a_bad_priority_is_refused_naming_it(one_slot: Engine, priority: Any) -> None:
    with pytest.raises(InvalidInputError, match="priority: must be an integer from -10000 to 10000"):
        one_slot.simulate_jobs([{"method_name": "Echo", "parameters": {"tag": "x"}}], priority=priority)


def test_a_bad_priority_over_http_is_a_422_naming_it(home: Path, tmp_path: Path) -> None:
    with thread_server(home) as url:
        conn = Connection(HttpBackend(url))
        try:
            conn.register_method(
                write_method(tmp_path / "m", "Echo", ECHO, parameters=[{"name": "tag", "type": "string"}])
            )
            config = {"method_name": "Echo", "parameters": {"tag": "x"}}
            with pytest.raises(InvalidInputError, match="priority: must be an integer"):
                conn.simulate_jobs([config], priority=20_000)
            answer = httpx.post(f"{url}/simulate-jobs", json={"jobs": [config], "priority": "high"}, timeout=30)
            assert answer.status_code == 422 and "priority" in answer.json()["detail"]
            done = conn.simulate_jobs([config], priority=3)
            assert done.results[0].outcome == "new"
        finally:
            conn.close()


def test_a_version_2_store_is_upgraded_with_its_pending_jobs_in_order(home: Path, tmp_path: Path) -> None:
    engine = open_engine(home, slots=1)
    engine.register_method(
        write_method(tmp_path / "m", "Hold", HOLD, parameters=[{"name": "seconds", "type": "number"}])
    )
    engine.register_method(write_method(tmp_path / "m", "Echo", ECHO, parameters=[{"name": "tag", "type": "string"}]))
    holder = hold(engine, 2.0)
    tags = echo(engine, ["first", "second"])
    engine.close()
    with sqlite3.connect(home / "store.sqlite") as conn:  # back to version 2, as an older package left it
        downgrade_to_2(conn)
    engine = open_engine(home, slots=1)
    try:
        with sqlite3.connect(home / "store.sqlite") as conn:
            assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
            assert conn.execute("SELECT DISTINCT priority, queue_rank FROM jobs").fetchall() == [(0, 0)]
        assert start_order(engine, tags) == ["first", "second"]
        wait_for_jobs(engine, [holder])
    finally:
        engine.close()
