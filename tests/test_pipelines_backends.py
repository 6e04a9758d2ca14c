"""Pipelines on both backends (the embedded engine, and the HTTP client against a real uvicorn server), with
the local scheduler: outputs and JSON values flowing down a chain, fan-out and fan-in, caching by content,
failures cancelling dependents while independent branches go on, and refused pipelines recording nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from http_support import BACKENDS, connection_of, thread_server
from pipeline_support import SCALE, chain, register, wait_done

from dshpc_jupyter.domain.errors import InvalidInputError, NotFoundError
from dshpc_jupyter.front.connection import Connection


@pytest.fixture(params=BACKENDS)
def conn(request: pytest.FixtureRequest, home: Path, tmp_path: Path) -> Iterator[Connection]:
    with ExitStack() as stack:
        connection = connection_of(request.param, home, stack)
        register(connection, tmp_path / "methods")
        yield connection


def test_a_chain_passes_an_output_file_and_a_json_value(conn: Connection, tmp_path: Path) -> None:
    submitted = conn.submit_pipeline(chain())
    assert submitted.steps["make"].state in ("pending", "running", "completed")
    assert (submitted.steps["scale"].state, submitted.steps["scale"].reason) == ("waiting", "waiting for make")
    assert (submitted.steps["count"].status, submitted.steps["count"].reason) == ("PD", "waiting for scale")
    done = wait_done(conn, submitted.pipeline_id)
    assert {name: s.state for name, s in done.steps.items()} == dict.fromkeys(chain(), "completed")
    make, scale, count = (done.steps[n] for n in ("make", "scale", "count"))
    assert json.loads(make.output or "") == {"summary": {"mean": 2.5, "n": 4}}
    assert json.loads(scale.output or "") == {"total": 25.0}  # (1 + 2 + 3 + 4) * 2.5
    scale_job = conn.get_job(scale.job_id or "")
    assert scale_job.parameters == {"factor": 2.5}
    assert scale_job.file_inputs == {"table": make.output_files["table.csv"]}
    assert json.loads(count.output or "") == {"bytes": len(scale.output or "")}
    assert done.statistics.new_jobs == 3 and done.statistics.completed == 3

    again = wait_done(conn, conn.submit_pipeline(chain()).pipeline_id)
    assert again.pipeline_id != done.pipeline_id
    assert [s.outcome for s in again.steps.values()] == ["cached"] * 3
    assert again.statistics.new_jobs == 0
    assert [s.job_id for s in again.steps.values()] == [s.job_id for s in done.steps.values()]


def test_a_changed_middle_method_reruns_it_and_only_what_its_new_output_changes(
    conn: Connection, tmp_path: Path
) -> None:
    first = wait_done(conn, conn.submit_pipeline(chain()).pipeline_id)
    register(conn, tmp_path / "methods2", Scale_Table=SCALE + "# same output, new version\n")
    same = wait_done(conn, conn.submit_pipeline(chain()).pipeline_id)
    assert {n: s.outcome for n, s in same.steps.items()} == {"make": "cached", "scale": "new", "count": "cached"}
    assert same.steps["count"].job_id == first.steps["count"].job_id, "identical upstream output: cached"
    changed = SCALE.replace('{"total": sum(numbers)}', '{"total": sum(numbers), "version": 3}')
    register(conn, tmp_path / "methods3", Scale_Table=changed)
    rerun = wait_done(conn, conn.submit_pipeline(chain()).pipeline_id)
    assert {n: s.outcome for n, s in rerun.steps.items()} == {"make": "cached", "scale": "new", "count": "new"}
    assert json.loads(rerun.steps["count"].output or "") == {"bytes": len(rerun.steps["scale"].output or "")}


def test_a_twelve_point_fan_out_is_gathered_by_one_step(conn: Connection) -> None:
    steps: dict[str, Any] = {f"t{n}": {"method_name": "Make Table", "parameters": {"n": n}} for n in range(1, 13)}
    steps["sum"] = {
        "method_name": "Sum Tables",
        "file_inputs": {"tables": [{"$ref": f"t{n}", "output": "table.csv"} for n in range(1, 13)]},
    }
    submitted = conn.submit_pipeline(steps)
    assert submitted.steps["sum"].reason == "waiting for " + ", ".join(f"t{n}" for n in range(1, 13))
    done = wait_done(conn, submitted.pipeline_id)
    assert done.statistics.completed == 13
    assert json.loads(done.steps["sum"].output or "") == {"total": sum(n * (n + 1) / 2 for n in range(1, 13))}
    assert len(conn.get_job(done.steps["sum"].job_id or "").file_inputs["tables"]) == 12  # type: ignore[index]


def test_a_failure_cancels_its_dependents_and_an_independent_branch_completes(conn: Connection) -> None:
    steps = {
        "bad": {"method_name": "Fail If", "parameters": {"fail": True}},
        "next": {"method_name": "Count Bytes", "file_hash": {"$ref": "bad"}},
        "last": {"method_name": "Count Bytes", "file_hash": {"$ref": "next"}, "after": ["other"]},
        "other": {"method_name": "Make Table", "parameters": {"n": 2}},
    }
    done = wait_done(conn, conn.submit_pipeline(steps).pipeline_id)
    states = {n: (s.state, s.status, s.reason) for n, s in done.steps.items()}
    assert states["bad"][:2] == ("failed", "F")
    assert states["next"] == ("cancelled", "CA", "dependency bad failed")
    assert states["last"] == ("cancelled", "CA", "dependency bad failed")
    assert states["other"][:2] == ("completed", "CD")
    assert (done.statistics.failed, done.statistics.cancelled, done.statistics.completed) == (1, 2, 1)
    assert done.steps["next"].job_id is None, "a cancelled dependent never got a job"

    resumed = wait_done(conn, conn.submit_pipeline(steps).pipeline_id)
    assert resumed.steps["bad"].outcome == "resubmitted" and resumed.steps["other"].outcome == "cached"


def test_cancelling_a_pipeline_ends_its_waiting_steps(conn: Connection) -> None:
    steps = {
        "slow": {"method_name": "Make Table", "parameters": {"n": 1, "sleep": 30}},
        "after": {"method_name": "Count Bytes", "file_hash": {"$ref": "slow"}},
    }
    submitted = conn.submit_pipeline(steps)
    cancelled = conn.cancel_pipeline(submitted.pipeline_id)
    assert cancelled.steps["after"].state == "cancelled"
    assert cancelled.steps["after"].reason == "cancelled with the pipeline"
    done = wait_done(conn, submitted.pipeline_id)
    assert done.steps["slow"].state == "cancelled"
    with pytest.raises(NotFoundError, match="Pipeline 'nope' not found"):
        conn.pipeline("nope")


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ({"a": {"method_name": "Make Table", "parameters": {"n": 1}, "after": ["b"]},
          "b": {"method_name": "Count Bytes", "file_hash": {"$ref": "a"}}},
         "steps: the dependencies form a cycle: a -> b -> a"),
        ({"a": {"method_name": "Make Table", "parameters": {"n": 1}},
          "b": {"method_name": "Count Bytes", "file_hash": {"$ref": "nope"}}},
         "steps.b: references step 'nope', which is not in the pipeline (steps: a, b)"),
        ({"a": {"method_name": "Make Table", "parameters": {"n": "x"}},
          "b": {"method_name": "Count Bytes", "file_hash": {"$ref": "a"}}},
         "steps.a: Invalid parameters: parameter 'n' must be an integer"),
        ({"a": {"method_name": "Nope"}}, "steps.a.method_name: Method 'Nope' not found"),
        ({"a": {"method_name": "Make Table", "parameters": {"n": 1}},
          "b": {"method_name": "Scale Table", "parameters": {"factor": {"$ref": "a", "output": "x"}}}},
         "steps.b.parameters.factor: a parameter reference takes 'path'"),
        ({"a": {"method_name": "Make Table", "parameters": {"n": 1}},
          "b": {"method_name": "Scale Table", "parameters": {"factr": {"$ref": "a"}}}},
         "steps.b.parameters: unknown parameter 'factr' (known: factor)"),
    ],
    ids=["cycle", "unknown-step", "invalid-root", "unknown-method", "bad-ref-kind", "unknown-parameter"],
)  # fmt: skip
def test_a_refused_pipeline_names_the_step_and_records_nothing(
    conn: Connection, steps: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidInputError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        conn.submit_pipeline(steps)
    assert conn.list_jobs() == [], "nothing of a refused pipeline was submitted"


def test_references_to_what_the_upstream_did_not_produce_fail_that_step(conn: Connection) -> None:
    steps = {
        "make": {"method_name": "Make Table", "parameters": {"n": 2}},
        "path": {"method_name": "Scale Table", "file_inputs": {"table": {"$ref": "make", "output": "table.csv"}},
                 "parameters": {"factor": {"$ref": "make", "path": "summary/median"}}},
        "file": {"method_name": "Count Bytes", "file_hash": {"$ref": "make", "output": "missing.csv"}},
        "below": {"method_name": "Count Bytes", "file_hash": {"$ref": "path"}},
    }  # fmt: skip
    done = wait_done(conn, conn.submit_pipeline(steps).pipeline_id)
    assert done.steps["path"].state == "error"
    assert done.steps["path"].reason == (
        "step 'path': parameter 'factor': $ref 'make' path 'summary/median': no 'median' in the output of step "
        "'make' (found: mean, n)"
    )
    assert done.steps["file"].reason == (
        "step 'file': file_hash: $ref 'make' output 'missing.csv': step 'make' produced no such output file "
        "(it produced: table.csv)"
    )
    assert (done.steps["below"].state, done.steps["below"].reason) == ("cancelled", "dependency path failed")


def test_a_malformed_body_is_a_422_naming_the_field(home: Path) -> None:
    import httpx

    with thread_server(home) as url:
        answer = httpx.post(f"{url}/pipelines", json={"steps": {"a": {"method_name": 3}}}, timeout=30)
        assert answer.status_code == 422
        assert answer.json()["detail"] == "steps.a.method_name: must be a string, got integer"
        answer = httpx.post(f"{url}/pipelines", json={"stepz": {}}, timeout=30)
        assert answer.status_code == 422 and "steps" in answer.json()["detail"]
        assert httpx.get(f"{url}/pipelines/nope", timeout=30).status_code == 404
