"""The batch state's columns (front/batch_columns.py), which ``Batch.df`` and ``Batch.outputs()`` are built
from: they must say what the rows say, row by row, after every change, on both backends; and the frames made
from them keep their columns and dtypes (docs/design.md section 14.2)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from support import write_method
from test_backends_shared import BACKENDS, open_connection

from dshpc_jupyter.domain.models import JobRecord, MethodInfo, MultiJobResult, MultiJobSimulationResponse
from dshpc_jupyter.front.batch import Batch
from dshpc_jupyter.front.batch_columns import FIELDS
from dshpc_jupyter.front.batch_frames import outputs_frame
from dshpc_jupyter.front.batch_parameters import ParameterColumns
from dshpc_jupyter.front.batch_row import Row
from dshpc_jupyter.front.batch_state import BatchState
from dshpc_jupyter.front.batch_views import ParameterDefaults
from dshpc_jupyter.front.connection import Connection

SHAPES = """import json, sys, time
p = json.load(open(sys.argv[2]))
kind, n = p["kind"], p["n"]
if kind == "fail":
    sys.exit(3)
if kind == "sleep":
    time.sleep(60)
if kind == "nested":
    print(json.dumps({"n": n, "a": {"b": n * 10}}))
elif kind == "text":
    print("plain words, not JSON")
elif kind == "list":
    print(json.dumps([n, n]))
elif kind != "silent":
    print(json.dumps({"n": n}))
"""

#: What each field of the columns is, read from a Row: the oracle the columns are checked against.
FROM_ROW: dict[str, Callable[[Row], Any]] = {
    **{name: (lambda r, name=name: None if r.result is None else getattr(r.result, name))
       for name in ("job_id", "function_hash", "new_status", "old_status", "outcome")},
    **{name: (lambda r, name=name: getattr(r, name)) for name in ("message", "status", "output", "error", "state")},
    **{name: (lambda r, name=name: None if r.job is None else getattr(r.job, name))
       for name in ("exit_code", "attempt", "created_at", "started_at", "finished_at", "queue_position",
                    "output_files")},
}  # fmt: skip

#: The dtypes of ``Batch.df``'s fixed columns, as the notebooks and the display read them.
DF_DTYPES = {
    "job_id": "str", "method_name": "category", "file_hash": "category", "function_hash": "category",
    "parameters": "object", "new_status": "category", "old_status": "category", "message": "category",
    "output": "str", "outcome": "category", "status": "category", "state": "category", "cached": "bool",
    "error": "str", "exit_code": "Int64", "attempt": "Int64", "submitted_at": "datetime64[us, UTC]",
    "started_at": "datetime64[us, UTC]", "finished_at": "datetime64[us, UTC]", "queue_position": "Int64",
    "duration": "Float64",
}  # fmt: skip


@pytest.fixture(params=BACKENDS)
def conn(request: pytest.FixtureRequest, home: Path, tmp_path: Path) -> Iterator[Connection]:
    with ExitStack() as stack:
        connection = open_connection(request.param, home, stack)
        connection.register_method(
            write_method(tmp_path / "methods", "Shapes", SHAPES, parameters=[
                {"name": "kind", "type": "string", "default": "flat"}, {"name": "n", "type": "integer", "default": 0},
            ])
        )  # fmt: skip
        yield connection


def shapes(conn: Connection, *parameters: dict[str, Any]) -> list[dict[str, Any]]:
    poem = {f.filename: f.file_hash for f in conn.list_files()}["poem.txt"]
    return [{"method_name": "Shapes", "file_hash": poem, "parameters": p} for p in parameters]


def assert_columns_say_what_rows_say(batch: Batch) -> None:
    """One snapshot of each, with the poller stopped between them (so nothing changes in between)."""
    batch.stop()
    try:
        columns, rows = batch.state.columns().columns, batch.rows()
    finally:
        batch.start()
    for name in FIELDS:
        assert getattr(columns, name) == [FROM_ROW[name](r) for r in rows], name
    assert columns.parameters == [r.config.get("parameters", {}) for r in rows]
    assert columns.method_name == [r.config.get("method_name") for r in rows]


def wait_for(batch: Batch, condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}: {batch.stats.summary()}"
        batch.wait_for_change(batch.version, 1)


def test_columns_follow_every_change_and_the_frames_keep_their_columns(conn: Connection) -> None:
    configs = shapes(conn, {"kind": "flat", "n": 1}, {"n": 2}, {"kind": "nested", "n": 3}, {"kind": "text"},
                     {"kind": "list", "n": 4}, {"kind": "silent"}, {"kind": "fail"}, {"kind": "sleep"},
                     {"kind": "flat", "n": 1})  # fmt: skip
    configs.append({"method_name": "No Such Method", "file_hash": configs[0]["file_hash"], "parameters": {"x": 1}})
    batch = Batch.submit(configs, connection=conn, poll=0.1, retry={"attempts": 2, "on": ["F"]})
    assert_columns_say_what_rows_say(batch)  # as answered: mostly pending
    wait_for(batch, lambda: batch.rows()[6].state == "failed" and batch.rows()[7].status == "R", "the jobs to run")
    assert_columns_say_what_rows_say(batch)  # mid-way: one running, the others ended
    batch.cancel().wait(60)
    assert_columns_say_what_rows_say(batch)

    df = batch.df
    assert {name: str(df[name].dtype) for name in DF_DTYPES} == DF_DTYPES
    assert list(df.columns) == [*DF_DTYPES, "kind", "n", "x", "output_files"]
    assert list(df["state"]) == [*["completed"] * 6, "failed", "failed", "completed", "error"]
    assert list(df["attempt"])[6] == 2, "the failed job was retried once"
    assert df["status"][7] == "CA" and df["exit_code"][6] == 3
    assert list(df["kind"].iloc[:9]) == ["flat", "flat", "nested", "text", "list", "silent", "fail", "sleep", "flat"]
    assert df["kind"].isna()[9] and df["x"][9] == 1, "a config with no method: its given parameters only"
    assert list(df["n"].iloc[:9]) == [1, 2, 3, 0, 4, 0, 0, 0, 1], "the method's default where none was given"
    assert df["job_id"][0] == df["job_id"][8], "the same config, the same job"
    assert df["duration"][0] >= 0 and df["error"][9] == df["message"][9]

    outputs = batch.outputs()
    assert list(outputs.columns) == ["method_name", "file_hash", "kind", "n", "x", "output_files",
                                     "output.n", "a.b", "text", "value"]  # fmt: skip
    assert list(outputs["output.n"].iloc[:3]) == [1, 2, 3] and outputs["a.b"][2] == 30
    assert outputs["text"][3] == "plain words, not JSON" and outputs["value"][4] == [4, 4]
    assert outputs.iloc[5][["output.n", "a.b", "text", "value"]].isna().all(), "a silent job adds nothing"
    assert outputs.iloc[6:8][["output.n", "text"]].isna().all().all(), "failed and cancelled rows have no outputs"


def test_rows_held_back_get_their_values_and_defaults_once_sent(conn: Connection) -> None:
    configs = shapes(conn, {"kind": "flat", "n": 5}, {"n": 6}, {"kind": "list"})
    batch = Batch.submit(configs, connection=conn, poll=0.1, concurrency=1)
    before = batch.df
    assert (
        list(before["state"])[1:] == ["queued", "queued"]
        and list(before["message"])[1:] == ["Queued (held back by --concurrency)"] * 2
    )
    assert before["kind"].isna()[1], "no method resolved yet: the given values only"
    assert_columns_say_what_rows_say(batch)
    batch.wait(60)
    after = batch.df
    assert list(after["state"]) == ["completed"] * 3 and list(after["kind"]) == ["flat", "flat", "list"]
    assert list(after["n"]) == [5, 6, 0]
    assert_columns_say_what_rows_say(batch)
    assert list(Batch.load(batch.batch_ids[1], connection=conn).df["n"]) == [6], "a reloaded sending, the same"


def test_parameter_columns_are_made_again_only_when_answers_or_defaults_change(conn: Connection) -> None:
    batch = Batch.submit(shapes(conn, {"n": 1}, {"kind": "text"}), connection=conn, poll=0.1).wait(60)
    memo, snapshot = ParameterColumns(), batch.state.columns()
    first = memo.of(snapshot, batch.defaults)
    assert memo.of(batch.state.columns(), batch.defaults) is first, "a job's change keeps them"
    assert [first["kind"].values, first["n"].values] == [["flat", "text"], [1, 0]]
    assert first["kind"].strings and not first["n"].strings
    relearned = ParameterDefaults()
    relearned.learn(conn.list_methods(latest_only=False))
    again = memo.of(snapshot, relearned)
    assert again is not first and again == first, "new defaults: made again (the same values here)"
    none_known = ParameterDefaults()
    none_known.learn([m for m in conn.list_methods(latest_only=False) if m.name != "Shapes"] or list[MethodInfo]())
    assert memo.of(snapshot, none_known)["kind"].values == [None, "text"], "without the defaults, the given ones"


def test_a_completed_job_without_output_adds_no_output_columns() -> None:
    """Its output column holds a missing value, not text: parsed from the plain column (once, the frame's
    missing value was handed to the JSON parser, a TypeError)."""
    configs = [{"method_name": "M", "file_hash": "h", "parameters": {"n": n}} for n in range(3)]
    state = BatchState(configs)
    results = [
        MultiJobResult(job_id=f"j{n}", new_status="PD", message="Job submitted", outcome="new") for n in range(3)
    ]
    state.record(state.take_queued(), MultiJobSimulationResponse(results=results))
    now = datetime.now(UTC)
    state.apply(
        JobRecord(job_id=f"j{n}", file_hash="h", method_name="M", function_hash="f", parameters={"n": n}, status="CD",
                  output=output, created_at=now, started_at=now, finished_at=now, scheduler="local")
        for n, output in enumerate([None, '{"a": 1}', ""])
    )  # fmt: skip
    outputs = outputs_frame(state.columns(), ParameterColumns().of(state.columns(), ParameterDefaults()), {})
    assert list(outputs.columns) == ["method_name", "file_hash", "n", "output_files", "a"]
    assert outputs["a"].isna().tolist() == [True, False, True] and outputs["a"][1] == 1
