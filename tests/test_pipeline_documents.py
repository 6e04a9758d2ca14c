"""Pipeline documents (``steps:``): a swept step fans out, its dependents fan out with it, ``$gather`` fans in,
``after`` waits for every instance; mistakes name the step. The issue's example works as written, from Python on
both backends, from ``dshpc-jupyter submit`` and from ``%%dshpc_batch`` in a real kernel (whose live display is
a Mermaid graph, redrawn as steps complete)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from http_support import BACKENDS, connection_of
from kernels import dshpc_kernel

from dshpc_jupyter import cli
from dshpc_jupyter.examples import data_dir, methods_dir
from dshpc_jupyter.front.connection import Connection
from dshpc_jupyter.front.pipeline import Pipeline
from dshpc_jupyter.front.pipeline_sweep import expand_pipeline
from dshpc_jupyter.front.sweep import BatchSpecError, parse_text
from dshpc_jupyter.service.factory import open_engine

H = [c * 64 for c in "abc"]
ISSUE_EXAMPLE = """\
steps:
  filter:
    method: Threshold Filter
    files: [readings_*.csv]
    grid: {threshold: [0.2, 0.5, 0.8]}
  summary:
    method: Summarize Tables
    inputs: {tables: {$gather: filter, output: kept.csv}}
"""


def test_a_swept_step_fans_out_its_dependents_follow_and_gather_fans_in() -> None:
    document = {"steps": {
        "make": {"method": "M", "files": H[:2], "grid": {"k": [1, 2]}},
        "each": {"method": "E", "file_hash": {"$ref": "make", "output": "o.csv"},
                 "parameters": {"v": {"$ref": "make", "path": "x"}}},
        "all": {"method": "A", "inputs": {"t": {"$gather": "each"}},
                "parameters": {"vs": {"$gather": "make", "path": "x"}}, "after": ["make"]},
        "alone": {"method_name": "Z", "file_hash": H[2]},
    }}  # fmt: skip
    expansion = expand_pipeline(document)
    assert list(expansion.steps) == [*(f"make.{i}" for i in range(4)), "alone", *(f"each.{i}" for i in range(4)),
                                     "all"]  # fmt: skip
    assert expansion.steps["make.1"] == {"method_name": "M", "file_hash": H[0], "parameters": {"k": 2}}
    assert expansion.steps["each.1"] == {
        "method_name": "E", "file_hash": {"$ref": "make.1", "output": "o.csv"},
        "parameters": {"v": {"$ref": "make.1", "path": "x"}},
    }  # fmt: skip
    assert expansion.steps["all"]["file_inputs"] == {"t": [{"$ref": f"each.{i}"} for i in range(4)]}
    assert expansion.steps["all"]["parameters"] == {"vs": [{"$ref": f"make.{i}", "path": "x"} for i in range(4)]}
    assert expansion.steps["all"]["after"] == [f"make.{i}" for i in range(4)]
    assert expansion.instances["each.2"].step == "each"
    assert expansion.instances["each.2"].labels == {"file": H[1], "k": 1}, "a dependent inherits what made it"
    assert expansion.graph == {"make": [], "each": ["make"], "all": ["each", "make"], "alone": []}


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ({"a": {"method": "M", "after": ["b"]}, "b": {"method": "M", "after": ["a"]}},
         "steps: the dependencies form a cycle"),
        ({"a": {"method": "M", "file_hash": {"$ref": "filtr"}}, "filter": {"method": "M"}},
         "steps.a: references step 'filtr', which is not in the pipeline (did you mean 'filter'?)"),
        ({"a": {"metod": "M"}}, "steps.a: unknown field 'metod'"),
        ({"a": {"files": H[:1]}}, "steps.a: give one of 'method', 'methods' or 'method_name'"),
        ({"a": {"method": "M", "files": H[:1], "inputs": {"x": H[0]}}}, "steps.a: give one of files, inputs"),
        ({"a": {"method": "M", "grid": {"k": []}}}, "steps.a.grid: must map each parameter name"),
        ([], "steps: must be a non-empty mapping"),
    ],
)  # fmt: skip
def test_mistakes_name_the_step_and_field(steps: Any, message: str) -> None:
    with pytest.raises(BatchSpecError) as caught:
        expand_pipeline({"steps": steps})
    assert str(caught.value).startswith(message), str(caught.value)


@pytest.fixture(params=BACKENDS)
def conn(request: pytest.FixtureRequest, home: Path) -> Iterator[Connection]:
    with ExitStack() as stack:
        connection = connection_of(request.param, home, stack)
        connection.register_method(methods_dir())
        yield connection


def test_the_issue_example_works_as_written(conn: Connection) -> None:
    pipeline = Pipeline.submit(parse_text(ISSUE_EXAMPLE), connection=conn, base=data_dir()).wait(timeout=120)
    frame = pipeline.df
    assert frame["step"].tolist() == ["filter"] * 6 + ["summary"]
    assert set(frame["state"]) == {"completed"}
    assert sorted(zip(frame["file"][:6], frame["threshold"][:6], strict=True)) == [
        (f, t) for f in ("readings_a.csv", "readings_b.csv") for t in (0.2, 0.5, 0.8)
    ]
    filters = pipeline.outputs(step="filter")
    summary = pipeline.outputs(step="summary").iloc[0]
    assert summary["tables"] == 6 and summary["rows"] == filters["above"].tolist()
    assert summary["total_rows"] == filters["above"].sum()
    graph = pipeline.graph()
    assert 's0["filter<br/>Threshold Filter<br/>6 completed"]:::completed' in graph and "s0 --> s1" in graph
    again = Pipeline.submit(parse_text(ISSUE_EXAMPLE), connection=conn, base=data_dir())
    assert again.detail.statistics.new_jobs == 0 and set(again.df["outcome"][:6]) == {"cached"}
    with pytest.raises(Exception, match="no step 'nope' \\(steps: filter, summary\\)"):
        pipeline.outputs(step="nope")


def test_submit_runs_a_pipeline_file(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--home", str(home), "methods", "register", str(methods_dir())]) == 0
    text = ISSUE_EXAMPLE.replace("readings_*.csv", str(data_dir() / "readings_*.csv"))
    (tmp_path / "pipeline.yaml").write_text(text, encoding="utf-8")
    capsys.readouterr()
    code = cli.main(["--home", str(home), "submit", str(tmp_path / "pipeline.yaml"), "--wait", "--timeout", "120"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "filter: 6 completed" in out and "summary: 1 completed" in out
    pipeline_id = out.split("pipeline ", 1)[1].split()[0]
    assert cli.main(["--home", str(home), "pipelines", "show", pipeline_id]) == 0
    assert "Summarize Tables" in capsys.readouterr().out


def test_the_magic_draws_the_graph_and_redraws_it_as_steps_complete(home: Path, tmp_path: Path) -> None:
    engine = open_engine(home)
    engine.register_method(methods_dir())
    engine.close()
    with dshpc_kernel(tmp_path, home) as kernel:
        cell = f"%%dshpc_batch --out p --base {data_dir()}\n" + ISSUE_EXAMPLE
        first = kernel.ok(cell)
        markdown = first.displays[0]["data"]["text/markdown"]
        assert "```mermaid\nflowchart LR" in markdown and "summary<br/>Summarize Tables<br/>1 waiting" in markdown
        kernel.ok("p.wait(timeout=120)")
        kernel.drain(1.5)
        updates = [m for m in kernel.messages if m["msg_type"] == "update_display_data"]
        seen = [u["content"]["data"]["text/markdown"] for u in updates]
        assert seen and seen[-1] != markdown, "the shown graph is redrawn as steps complete"
        assert 'summary<br/>Summarize Tables<br/>1 completed"]:::completed' in seen[-1]
        assert kernel.value("p.df['step'].tolist()") == ["filter"] * 6 + ["summary"]
        waited = kernel.ok(f"%%dshpc_batch --out q --wait --base {data_dir()}\n" + ISSUE_EXAMPLE)
        assert '6 completed"]:::completed' in waited.displays[-1]["data"]["text/markdown"]
        assert json.loads(kernel.value("q.detail.steps['summary'].output"))["tables"] == 6
