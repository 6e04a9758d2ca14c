"""The magics in real Jupyter kernels: submitting, waiting, dry runs, --from, caching, the live widget updating
while another cell sleeps, a kernel restart, and one clear line for every mistake."""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kernels import Kernel, dshpc_kernel
from support import write_method

from dshpc_jupyter.examples import data_files, methods_dir
from dshpc_jupyter.service.factory import open_engine

SEED_REQUEST = (Path(__file__).parent / "test_sweep.py").read_text().split('SEED_REQUEST = """')[1].split('"""')[0]

COUNTED = """import json, sys, time
p = json.load(open(sys.argv[2]))
with open(p["log"], "a") as log:
    log.write(p["tag"] + "\\n")
time.sleep(p["seconds"])
print(json.dumps({"tag": p["tag"], "scale": p["scale"]}))
"""
COUNTED_PARAMETERS: list[dict[str, Any]] = [
    {"name": "log", "type": "string", "required": True},
    {"name": "tag", "type": "string", "default": ""},
    {"name": "seconds", "type": "number", "default": 0.0},
    {"name": "scale", "type": "number", "default": 1.0},
]
SEED_PARAMETERS: dict[str, list[dict[str, Any]]] = {
    "Example Method": [{"name": "param1", "type": "string"}, {"name": "param2", "type": "string"}],
    "Another Method": [{"name": "threshold", "type": "number"}, {"name": "verbose", "type": "boolean"}],
}
ECHO = "import json, sys\nprint(json.dumps(json.load(open(sys.argv[2]))))\n"


@pytest.fixture
def project(home: Path, tmp_path: Path) -> Path:
    """A home with the example methods, two ``Counted`` look-alikes (Alpha, Beta) and the seed's two methods;
    and a working folder with two local text files."""
    methods = tmp_path / "methods"
    for name in ("Alpha", "Beta"):
        write_method(methods, name, COUNTED, parameters=COUNTED_PARAMETERS)
    for name, parameters in SEED_PARAMETERS.items():
        write_method(methods, name, ECHO, parameters=parameters)
    engine = open_engine(home)
    try:
        engine.register_method(methods_dir())
        engine.register_method(methods)
        for path in data_files():
            engine.upload_file(path)
    finally:
        engine.close()
    work = tmp_path / "work"
    work.mkdir()
    (work / "one.txt").write_text("one\n")
    (work / "two.txt").write_text("two two\n")
    return work


@pytest.fixture
def kernel(project: Path, home: Path) -> Iterator[Kernel]:
    with dshpc_kernel(project, home) as kernel:
        yield kernel


def sweep(log: Path, extra: str = "", seconds: float = 0.0) -> str:
    return textwrap.dedent(f"""\
        methods: [Alpha, Beta]
        files: ["*.txt"]
        parameters: {{log: "{log}", seconds: {seconds}}}
        grid: {{scale: [1, 2, 3]}}
        {extra}""")


def assert_one_line_error(result: object, *fragments: str) -> None:
    from kernels import CellResult

    assert isinstance(result, CellResult)
    assert result.status == "error", result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("UsageError: "), result.stderr
    assert "Traceback" not in result.stderr + result.stdout and not result.error["traceback"]  # type: ignore[index]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_seed_request_pasted_into_the_cell_works(kernel: Kernel, tmp_path: Path) -> None:
    result = kernel.ok("%%dshpc_batch --out b --wait\n" + SEED_REQUEST)
    assert "2 configs · 0 completed (0 cached) · 0 failed · 2 errors" in result.text
    assert kernel.value("b.df.message.tolist()") == [
        "File 'hash_of_file_1' not found",
        "File 'hash_of_file_2' not found",
    ]
    hashes = kernel.value("{f.filename: f.file_hash for f in dshpc_jupyter.current().list_files()}")
    body = SEED_REQUEST.replace("hash_of_file_1", hashes["poem.txt"]).replace("hash_of_file_2", hashes["hello.txt"])
    result = kernel.ok("%%dshpc_batch --out b --wait\n" + body)
    assert "2 configs · 2 completed (0 cached)" in result.text
    outputs = kernel.value("b.df.output.tolist()")
    assert [json.loads(o) for o in outputs] == [
        {"param1": "value1", "param2": "value2"}, {"threshold": 0.5, "verbose": True},
    ]  # fmt: skip


def test_sweep_gives_twelve_rows_and_the_second_run_is_all_cached(kernel: Kernel, tmp_path: Path) -> None:
    log = tmp_path / "runs.log"
    first = kernel.ok("%%dshpc_batch --out b --wait\n" + sweep(log))
    assert "12 configs · 12 completed (0 cached) · 0 failed · 0 errors · done in" in first.text
    assert "2 local file(s) hashed" in first.stdout
    final = [d for d in first.displays if d["msg_type"] == "display_data"][-1]["data"]
    assert set(final) == {"text/html", "text/plain"}  # the saved notebook keeps plain HTML and text
    assert kernel.value("len(b.df)") == 12
    assert kernel.value("b.df.method_name.tolist()") == ["Alpha"] * 6 + ["Beta"] * 6
    assert kernel.value("b.df.scale.tolist()") == [1, 2, 3] * 4
    assert kernel.value("b.outputs().groupby('scale')['output.scale'].count().to_dict()") == {1: 4, 2: 4, 3: 4}
    assert len(log.read_text().splitlines()) == 12
    second = kernel.ok("%%dshpc_batch --out b2 --wait\n" + sweep(log))
    assert "12 configs · 12 completed (12 cached)" in second.text
    assert kernel.value("bool(b2.df.cached.all()) and b2.df.job_id.tolist() == b.df.job_id.tolist()") is True
    assert len(log.read_text().splitlines()) == 12  # nothing ran again
    assert kernel.value("len(dshpc_jupyter.current().list_files())") == 6  # 4 examples + the two local files


def test_dry_run_submits_nothing(kernel: Kernel, tmp_path: Path) -> None:
    result = kernel.ok("%%dshpc_batch --dry-run --out d\n" + sweep(tmp_path / "log"))
    assert "dry run: 12 configs: 0 cached, 0 in progress, 0 new, 0 resubmitted, 12 invalid" in result.text
    assert "2 local file(s) not on the service yet" in result.stdout
    kernel.ok("import dshpc_jupyter; c = dshpc_jupyter.current()")
    assert kernel.value("(len(c.list_jobs()), len(c.batches()), len(c.list_files()))") == (0, 0, 4)
    kernel.ok("%%dshpc_batch --wait\n" + sweep(tmp_path / "log"))
    result = kernel.ok("%%dshpc_batch --dry-run --out d\n" + sweep(tmp_path / "log"))
    assert "dry run: 12 configs: 12 cached" in result.text
    assert kernel.value("len(c.batches())") == 1


def test_from_a_dataframe_and_resubmitting_the_failed_rows(kernel: Kernel, tmp_path: Path) -> None:
    kernel.ok(
        textwrap.dedent("""\
        import pandas as pd, dshpc_jupyter
        h = {f.filename: f.file_hash for f in dshpc_jupyter.current().list_files()}
        frame = pd.DataFrame({"method_name": "Threshold Filter", "file_hash": [h["readings_a.csv"]] * 3,
                              "threshold": [0.2, -1.0, 0.5]})""")
    )
    result = kernel.ok("%dshpc_batch --from frame --out b --wait")
    assert "3 configs · 2 completed (0 cached) · 1 failed · 0 errors" in result.text
    assert "threshold must be non-negative" in result.text  # the error text is at hand in the table
    assert 'class="dshpc-failed"' in result.html
    kernel.ok("failed = b.df[b.df.state == 'failed']")
    kernel.ok("%dshpc_batch --from failed --out again --wait")
    assert kernel.value("again.df.outcome.tolist()") == ["resubmitted"]
    assert kernel.value("again.df.old_status.tolist()") == ["F"]


def test_the_live_display_updates_while_another_cell_sleeps(kernel: Kernel, tmp_path: Path) -> None:
    log = tmp_path / "runs.log"
    body = f'method: Alpha\nfiles: [one.txt]\nparameters: {{log: "{log}", seconds: 1.0}}\ngrid: {{tag: [a, b, c]}}'
    submitted = kernel.ok("%%dshpc_batch --out b --poll 0.2\n" + body)
    widget, snapshot = submitted.displays[-2:]  # the live widget, and a dated snapshot for what cannot show it
    assert set(widget["data"]) == {"application/vnd.jupyter.widget-view+json"}
    assert "3 pending" in snapshot["data"]["text/plain"] or "running" in snapshot["data"]["text/plain"]
    assert " · as of " in snapshot["data"]["text/plain"] and 'class="dshpc-snapshot"' in snapshot["data"]["text/html"]
    ids = (widget["transient"]["display_id"], snapshot["transient"]["display_id"])
    progress_id = next(m["content"]["comm_id"] for m in submitted.messages if m["msg_type"] in ("comm_open", "comm_msg")
                       and 'class="dshpc-bar"' in str(m["content"]["data"].get("state", {}).get("value")))  # fmt: skip
    assert kernel.value("b.done") is False
    sleeping = kernel.ok("import time; time.sleep(8)")  # the jobs end while this cell blocks
    during = [m for m in sleeping.messages if m["msg_type"] in ("comm_msg", "update_display_data")]
    progress = [str(m["content"]["data"]["state"].get("value")) for m in during if m["msg_type"] == "comm_msg"
                and m["content"]["comm_id"] == progress_id]  # fmt: skip
    assert any(">3/3<" in bar and 'title="3 completed"' in bar for bar in progress), progress
    updates = [m["content"] for m in during if m["msg_type"] == "update_display_data"]
    assert [u["transient"]["display_id"] for u in updates[-2:]] == list(ids)  # the widget's goes, then the final
    assert updates[-2]["data"] == {}
    assert "3 completed" in updates[-1]["data"]["text/plain"] and "text/html" in updates[-1]["data"]
    final = updates[-1]["data"]
    assert "dshpc-snapshot" not in final["text/html"] and " as of " not in final["text/plain"]
    assert kernel.value("(b.done, b.stats.completed, b.df.state.tolist())") == (True, 3, ["completed"] * 3)


def test_kernel_restart_then_load_shows_the_same_jobs_none_run_twice(kernel: Kernel, tmp_path: Path) -> None:
    log = tmp_path / "runs.log"
    body = (
        f'method: Alpha\nfiles: [one.txt, two.txt]\nparameters: {{log: "{log}", seconds: 1.5}}\ngrid: {{tag: [x, y]}}'
    )
    kernel.ok("%%dshpc_batch --out b\n" + body)
    batch_id, job_ids = kernel.value("(b.batch_id, b.df.job_id.tolist())")
    kernel.restart()
    kernel.ok("%load_ext dshpc_jupyter")
    assert kernel.value("'b' in dir()") is False
    listed = kernel.ok("%dshpc_batches")
    assert batch_id in listed.text
    kernel.ok(f"from dshpc_jupyter import Batch\nb = Batch.load({batch_id!r}).wait(60)")
    assert kernel.value("b.df.job_id.tolist()") == job_ids
    assert kernel.value("b.df.state.tolist()") == ["completed"] * 4
    again = kernel.ok("%%dshpc_batch --out again --wait\n" + body)
    assert "4 completed (4 cached)" in again.text
    assert kernel.value("again.df.job_id.tolist()") == job_ids
    assert sorted(log.read_text().split()) == ["x", "x", "y", "y"]  # each job ran exactly once


def test_listing_magics_return_dataframes(kernel: Kernel) -> None:
    methods = kernel.ok("m = %dshpc_methods\nm")
    assert "Threshold Filter" in methods.text and "threshold: number = 0.5" in methods.text
    assert kernel.value("sorted(m.columns)")[0] == "description"
    kernel.ok("files = %dshpc_files\njobs = %dshpc_jobs")
    assert kernel.value("(len(files), sorted(files.filename)[0], len(jobs))") == (4, "hello.txt", 0)
    kernel.ok("%%dshpc_batch --wait\n- {method_name: Word Count (bash), file_hash: " + "f" * 64 + "}")
    kernel.ok("jobs = %dshpc_jobs\nbatches = %dshpc_batches --limit 5")
    assert kernel.value("(len(jobs), len(batches))") == (0, 1)  # the config had no job: its file is unknown
    for magic in ("dshpc_batch", "dshpc_connect", "dshpc_methods", "dshpc_files", "dshpc_jobs", "dshpc_batches"):
        help_text = kernel.ok(f"%{magic}?").paged
        assert "Examples" in help_text and f"%{magic}" in help_text, magic


MISTAKES = [
    ("%%dshpc_batch\nmethod: [unclosed", ("batch: invalid YAML at line 2",)),  # line 1 is the %% line
    ("%%dshpc_batch\n\nmethod: A\nfiles: [x]\ngrid: {a: [1}", ("batch: invalid YAML at line 5",)),
    ("%%dshpc_batch --wiat\nmethod: A", ("unrecognized arguments: --wiat (did you mean '--wait'?)",)),
    ("%%dshpc_batch\nmethod: A\nfile: [x]", ("sweep: unknown field 'file'", "(did you mean 'files'?)")),
    ("%%dshpc_batch\n- {method_name: A, file_hsh: x}", ("unknown field 'file_hsh'", "(did you mean 'file_hash'?)")),
    ("%%dshpc_batch --base /nonexistent\nmethod: A\nfiles: [a.txt]", ("nor a file in /nonexistent",)),
    ("%%dshpc_batch --bogus\nmethod: A", ("unrecognized arguments: --bogus",)),
    ("%dshpc_batch --from nothing", ("--from: no variable named 'nothing'",)),
    ("%%dshpc_batch\n- {method_name: 3, file_hash: x}", ("configs[0].method_name: must be a string",)),
    ("%%dshpc_batch\nmethod: Alpha\nfiles: [nope/*.txt]", ("sweep.files[0]: no file matches 'nope/*.txt' in /",)),
    ("%%dshpc_batch\nmethod: Alpha\nfiles: [one.txt]\ngrid: {scale: 2}", ("sweep.grid.scale: must be a non-empty",)),
    ("%%dshpc_batch\n", ("cell body is empty",)),
    ("%%dshpc_batch\n  \n", ("batch: the cell is empty",)),
    ("frame = 1\n%dshpc_batch --from frame\n", ("batch: expected a sweep (mapping), a list of configs",)),
    ("%dshpc_batch --wait", ("give the batch in the cell body",)),
    ("x = [1]\n%dshpc_batch --from x", ("configs[0]: a config must be a mapping",)),
    ("%%dshpc_batch --from x\nmethod: A", ("--from: give the configs either in a variable or",)),
    ("%%dshpc_batch --out 1b\nmethod: Alpha\nfiles: [one.txt]", ("--out: '1b' is not a valid variable name",)),
    ("%%dshpc_batch --poll 0\nmethod: Alpha\nfiles: [one.txt]", ("--poll: must be a positive number",)),
    ("%%dshpc_batch --concurrency 0\nmethod: Alpha\nfiles: [one.txt]", ("concurrency: must be at least 1",)),
    ("%%dshpc_batch --timeout soon\nmethod: A", ("argument --timeout: invalid float value: 'soon'",)),
    ("%dshpc_connect --scheduler cloud", ("scheduler: unknown scheduler 'cloud'",)),
    ("%dshpc_connect --url http://127.0.0.1:9 --api-key-env NO_SUCH_VARIABLE_SET", ("'NO_SUCH_VARIABLE_SET'",)),
    ("%dshpc_connect --url http://127.0.0.1:9 --token-env NO_SUCH_TOKEN_SET", ("--token-env: the environment",)),
    ("%dshpc_connect --url http://127.0.0.1:9 --token-env A --api-key-env B", ("give --api-key-env or --token-env",)),
    ("%dshpc_jobs --limit 0", ("--limit: must be at least 1",)),
    ("%dshpc_methods --bogus", ("unrecognized arguments: --bogus",)),
]


def test_every_mistake_prints_one_clear_line(kernel: Kernel) -> None:
    """One kernel for all the mistakes: each gives one ``UsageError`` line naming the problem, and none of them
    reaches the service."""
    for cell, fragments in MISTAKES:
        assert_one_line_error(kernel.run(cell), *fragments)
    assert kernel.value("len(dshpc_jupyter.current().batches())") == 0


def test_without_a_kernel_it_prints_a_text_summary(
    project: Path, home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    from dshpc_jupyter.front import connection

    monkeypatch.chdir(project)
    monkeypatch.setattr(connection, "_current", None)
    shell = InteractiveShell.instance()
    try:
        shell.run_line_magic("load_ext", "dshpc_jupyter")
        shell.run_line_magic("dshpc_connect", f"--home {home}")
        shell.run_cell_magic("dshpc_batch", "--wait --out b", sweep(tmp_path / "log"))  # type: ignore[no-untyped-call]
        out = capsys.readouterr().out
        assert f"Connected to {home} (embedded engine, local scheduler)" in out
        assert re.search(r"12 configs · 12 completed \(0 cached\) · 0 failed · 0 errors · done in", out), out
        assert "#   method  file" in out and "Alpha" in out
        assert len(shell.user_ns["b"].df) == 12
    finally:
        InteractiveShell.clear_instance()
        connection.current().close()
