"""The job form without a browser, over the embedded engine and a real HTTP server alike: driven through its
widgets' values and ``.click()``, as a person would, and checked against what the service then holds."""

from __future__ import annotations

import datetime as dt
import json
import warnings
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import pytest
from support import CountingBackend, wait_until, write_method
from test_backends_shared import BACKENDS, open_connection

from dshpc_jupyter import JobForm
from dshpc_jupyter.backends.embedded import EmbeddedBackend
from dshpc_jupyter.examples import data_files, methods_dir
from dshpc_jupyter.front.connection import Connection
from dshpc_jupyter.jupyter.display import BatchView
from dshpc_jupyter.jupyter.form_fields import UNSET
from dshpc_jupyter.jupyter.form_files import MAX_SHOWN
from dshpc_jupyter.service.factory import open_engine

LOGGED = """import json, sys, time
p = json.load(open(sys.argv[2]))
with open(p["log"], "a") as log:
    log.write(json.dumps(p, sort_keys=True) + "\\n")
time.sleep(p["seconds"])
print(json.dumps({"level": p["level"], "mode": p["mode"], "size": len(open(sys.argv[1]).read())}))
"""
LOGGED_PARAMETERS: list[dict[str, Any]] = [
    {"name": "log", "type": "string", "required": True, "description": "Where each run writes a line."},
    {"name": "level", "type": "integer", "default": 1, "description": "A level."},
    {"name": "mode", "type": "string", "default": "fast", "choices": ["fast", "exact"], "description": "How."},
    {"name": "seconds", "type": "number", "default": 0.0, "description": "How long to sleep."},
    {"name": "verbose", "type": "boolean", "default": False, "description": "Say more."},
    {"name": "scale", "type": "number", "description": "No default: empty means not sent."},
    {"name": "tags", "type": "array", "default": [], "description": "JSON list."},
]


@pytest.fixture(params=BACKENDS)
def conn(request: pytest.FixtureRequest, home: Path, tmp_path: Path) -> Iterator[Connection]:
    """The example methods and data plus ``Logged`` (every run logged), over the embedded engine or HTTP."""
    with ExitStack() as stack:
        connection = open_connection(request.param, home, stack)
        connection.register_method(write_method(tmp_path / "methods", "Logged", LOGGED, parameters=LOGGED_PARAMETERS))
        yield connection


@pytest.fixture
def form(conn: Connection) -> Iterator[JobForm]:
    form = JobForm(conn, poll=0.1)
    yield form
    form.close()


def hashes(connection: Connection) -> dict[str, str]:
    return {f.filename or "": f.file_hash for f in connection.list_files()}


def pick_files(form: JobForm, search: str) -> list[str]:
    """Clear the selection, type a search, then select every file the list shows, as a person would."""
    form.files.clear.click()
    form.files.search.value = search
    form.files.select.value = tuple(value for _, value in form.files.select.options)
    return form.files.selected


def add_list(form: JobForm, method: str, parameter: str, values: str, files: str) -> None:
    """Choose a method, sweep one parameter over comma-separated values, pick files by a search, click Add."""
    form.method.value = method
    field = form.parameter(parameter)
    field.mode.value = "list"
    field.values_text.value = values
    pick_files(form, files)
    form.add_button.click()


def models() -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return len(widgets.Widget.widgets)


def runs(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_fields_follow_the_method_spec(form: JobForm) -> None:
    assert [value for _, value in form.method.options] == [
        "Example Python Method", "Logged", "Simulated Workload", "Summarize Tables", "Text Statistics",
        "Threshold Filter", "Word Count (bash)",
    ]  # fmt: skip
    assert form.method.value is None and "choose a method" in form.method_help.value
    form.method.value = "Logged"
    assert "v1 · test method Logged" in form.method_help.value
    kinds = {f.param.name: type(f.input) for f in form.fields}
    assert kinds == {"log": widgets.Text, "level": widgets.IntText, "mode": widgets.Dropdown,
                     "seconds": widgets.FloatText, "verbose": widgets.Checkbox, "scale": widgets.Text,
                     "tags": widgets.Text}  # fmt: skip
    assert form.parameter("level").input.value == 1 and form.parameter("mode").input.value == "fast"
    assert form.parameter("log").input.placeholder == "required" and "*" in form.parameter("log").label.value
    assert "*" not in form.parameter("level").label.value
    assert form.parameter("log").label.tooltip == "Where each run writes a line."
    assert "Where each run writes a line." in form.parameter("log").help.value
    modes = {f.param.name: list(f.mode.options) for f in form.fields}
    assert modes["level"] == ["value", "list", "range"] and modes["seconds"] == ["value", "list", "range"]
    assert modes["mode"] == ["value", "list"] and modes["log"] == ["value", "list"] and modes["tags"] == ["value"]
    assert form.parameter("level").read() is UNSET  # the default is not sent; the service fills it in
    with pytest.raises(KeyError, match="'Logged' has no parameter 'nope'"):
        form.parameter("nope")
    fields = form.fields
    form.method.value = "Word Count (bash)"
    before = models()
    form.method.value = "Logged"
    form.method.value = "Word Count (bash)"
    assert models() == before  # each method's fields are built once, then reused
    form.method.value = "Logged"
    assert form.fields == fields
    form.method.value = "Word Count (bash)"
    assert [f.param.name for f in form.fields] == ["unit"] and form.parameter("unit").input.label == "words"


def test_configs_for_two_methods_with_a_sweep_preview_submit_and_results(form: JobForm, tmp_path: Path) -> None:
    log = tmp_path / "runs.log"
    form.method.value = "Logged"
    form.parameter("log").input.value = str(log)
    level = form.parameter("level")
    level.mode.value = "range"
    level.start.value, level.stop.value, level.step.value = 1, 3, 1
    mode = form.parameter("mode")
    mode.mode.value = "list"
    mode.values_text.value = "fast, exact"
    form.parameter("verbose").input.value = True
    names = {h: n for n, h in hashes(form.connection).items()}
    assert [names[h] for h in pick_files(form, "readings")] == ["readings_a.csv", "readings_b.csv"]
    form.add_button.click()
    assert "added 12 config(s): Logged, 2 file(s) × 3 values of level × 2 values of mode" in form.add_status.value
    pending = form.pending
    assert len(pending) == 12
    assert pending[0]["parameters"] == {"log": str(log), "verbose": True, "level": 1, "mode": "fast"}
    assert [(c["parameters"]["level"], c["parameters"]["mode"]) for c in pending[:6]] == [
        (1, "fast"), (1, "exact"), (2, "fast"), (2, "exact"), (3, "fast"), (3, "exact"),
    ]  # fmt: skip

    # a second method, the values typed for the first one are kept while it is away
    add_list(form, "Word Count (bash)", "unit", "lines, bytes", "hello")
    assert len(form.pending) == 14 and form.pending[12:] == [
        {"file_hash": hashes(form.connection)["hello.txt"], "method_name": "Word Count (bash)",
         "parameters": {"unit": u}} for u in ("lines", "bytes")
    ]  # fmt: skip
    form.method.value = "Logged"
    assert form.parameter("log").input.value == str(log) and form.parameter("level").mode.value == "range"

    assert form.preview_counts() == {"cached": 0, "in_progress": 0, "new": 14, "resubmitted": 0, "invalid": 0}
    assert "14 pending config(s) · preview: 0 cached · 0 in progress · 14 new · 0 invalid" in form.summary()
    assert form.pending_list.options[12][0].startswith("13. Word Count (bash) · hello.txt ")
    assert form.pending_list.options[12][0].endswith(' · {"unit": "lines"} → new')
    assert runs(log) == []  # the preview ran nothing

    form.submit_button.click()
    batch = form.batch
    assert batch is not None and form.batches == [batch]
    view = form.results.children[0]
    assert isinstance(view, BatchView) and view.batch is batch
    assert f"batch {batch.batch_id}: 14 config(s) → 14 new job(s)" in form.submit_status.value
    form.wait(120)
    assert ">14/14<" in view.progress.value and 'title="14 completed"' in view.progress.value
    assert "done in" in view.summary.value
    assert form.cancel_button.disabled
    df = batch.df
    assert df["state"].tolist() == ["completed"] * 14
    outputs = batch.outputs()
    assert outputs["level"].tolist()[:6] == [1, 1, 2, 2, 3, 3] and outputs["mode"].tolist()[:2] == ["fast", "exact"]
    assert outputs["output.level"].tolist()[:6] == [1, 1, 2, 2, 3, 3]
    assert [json.loads(o) for o in df["output"][12:]] == [{"unit": "lines", "count": 2}, {"unit": "bytes", "count": 71}]
    assert len(runs(log)) == 12
    # the preview is asked again once the batch is done: everything pending is now cached
    assert form.preview_counts()["cached"] == 14 and "14 cached" in form.pending_summary.value


def test_an_invalid_or_missing_field_is_shown_beside_it_and_nothing_is_added(form: JobForm) -> None:
    form.add_button.click()
    assert "method: choose a method" in form.method_error.value
    assert "choose at least one file" in form.files.error.value
    assert "nothing added: 2 field(s) to fix" in form.add_status.value
    form.method.value = "Logged"
    assert form.method_error.value == ""  # choosing a method clears its error
    pick_files(form, "poem")
    assert form.files.error.value == ""
    form.parameter("scale").input.value = "big"
    level = form.parameter("level")
    level.mode.value = "list"
    level.values_text.value = "1, 2.5"
    form.add_button.click()
    assert form.parameter("log").error_text == "required"
    assert form.parameter("scale").error_text == "'big' is not a number"
    assert level.error_text == "'2.5' is not an integer"
    assert form.parameter("mode").error_text == ""
    assert "nothing added: 3 field(s) to fix" in form.add_status.value
    assert form.pending == [] and form.pending_list.options == ()
    # fixed: the errors go and the configs come
    form.parameter("log").input.value = "/dev/null"
    form.parameter("scale").input.value = "2.5"
    level.values_text.value = "1, 2"
    form.add_button.click()
    assert [f.error_text for f in form.fields] == [""] * len(form.fields)
    assert [c["parameters"] for c in form.pending] == [
        {"log": "/dev/null", "scale": 2.5, "level": 1}, {"log": "/dev/null", "scale": 2.5, "level": 2},
    ]  # fmt: skip


def test_preview_counts_cached_in_progress_new_resubmitted_and_invalid(
    form: JobForm, tmp_path: Path, home: Path
) -> None:
    connection = form.connection
    h = hashes(connection)
    done = {"method_name": "Threshold Filter", "file_hash": h["readings_a.csv"], "parameters": {"threshold": 0.5}}
    failed = {"method_name": "Threshold Filter", "file_hash": h["readings_a.csv"], "parameters": {"threshold": -1.0}}
    running = {"method_name": "Simulated Workload", "file_hash": h["hello.txt"], "parameters": {"seconds": 60.0}}
    first = connection.simulate_jobs([done, failed])
    wait_until(lambda: all(j.status in ("CD", "F") for j in connection.job_statuses([r.job_id or "" for r in
                                                                                     first.results])), 60)  # fmt: skip
    running_id = connection.simulate_jobs([running]).results[0].job_id

    add_list(form, "Threshold Filter", "threshold", "0.5, -1, 0.7", "readings_a")
    form.method.value = "Simulated Workload"
    form.parameter("seconds").input.value = 60.0
    pick_files(form, "hello")
    form.add_button.click()
    # a method whose new version drops a parameter makes the pending configs that use it invalid
    methods = tmp_path / "strict"
    write_method(methods, "Strict", LOGGED, parameters=[{"name": "log", "type": "string"},
                                                        {"name": "level", "type": "integer"}])  # fmt: skip
    connection.register_method(methods)
    form.reload_button.click()
    form.method.value = "Strict"
    form.parameter("level").input.value = "3"
    pick_files(form, "poem")
    form.add_button.click()
    write_method(methods, "Strict", LOGGED, parameters=[{"name": "log", "type": "string"}])
    connection.register_method(methods)
    form.reload_button.click()

    assert form.preview_counts() == {"cached": 1, "in_progress": 1, "new": 1, "resubmitted": 1, "invalid": 1}
    assert ("5 pending config(s) · preview: 1 cached · 1 in progress · 2 new (1 after a failure) · 1 invalid"
            in form.pending_summary.value)  # fmt: skip
    labels = [label for label, _ in form.pending_list.options]
    assert labels[0].endswith("→ cached") and labels[1].endswith("→ new (after a failure)")
    assert labels[2].endswith("→ new") and labels[3].endswith("→ in progress")
    assert labels[4].endswith("→ invalid: Invalid parameters: unknown parameter 'level' (known: log)")
    assert "unknown parameter &#x27;level&#x27;" in form.pending_summary.value  # the reason, shown in red

    # submitting: the running job is joined, not started again; Cancel ends it
    form.submit_button.click()
    batch = form.batch
    assert batch is not None
    assert ("5 config(s) → 2 new job(s) (1 after a failure), 1 from the cache, 1 joined running jobs, 1 invalid "
            "· nothing runs twice") in form.submit_status.value  # fmt: skip
    assert batch.df["job_id"][3] == running_id
    wait_until(lambda: batch.stats.running + batch.stats.pending == 1, 60, "the two new jobs to end")
    assert not form.cancel_button.disabled
    form.cancel_button.click()
    assert "cancel sent for 1 unfinished job(s)" in form.submit_status.value
    form.wait(60)
    assert batch.df["status"].tolist()[:4] == ["CD", "F", "CD", "CA"] and form.cancel_button.disabled
    form.cancel_button.click()
    assert "nothing to cancel" in form.submit_status.value


def test_submitting_twice_runs_nothing_twice_and_binds_out(conn: Connection, tmp_path: Path) -> None:
    log = tmp_path / "runs.log"
    namespace: dict[str, Any] = {}
    form = JobForm(conn, out="b", namespace=namespace, poll=0.1)
    try:
        form.submit_button.click()
        assert "nothing to submit: add configs first" in form.submit_status.value and form.batch is None
        form.method.value = "Logged"
        form.parameter("log").input.value = str(log)
        form.parameter("seconds").input.value = 0.5
        add_list(form, "Logged", "mode", "fast, exact, fast", "hello")  # a repeat in the list is one value
        form.add_button.click()  # the same configs twice: two rows, one job each
        assert len(form.pending) == 4 and "2 duplicate(s) share a job" in form.pending_summary.value
        form.submit_button.click()
        first = form.batch
        assert first is not None and namespace["b"] is first
        assert "4 config(s) → 2 new job(s), 0 from the cache, 2 joined running jobs" in form.submit_status.value
        form.submit_button.click()  # while the first one still runs
        second = form.batch
        assert second is not None and second is not first and namespace["b"] is second
        assert form.batches == [first, second]
        assert "0 new job(s)" in form.submit_status.value and "nothing runs twice" in form.submit_status.value
        form.wait(60)
        first.wait(60)
        assert second.df["job_id"].tolist() == first.df["job_id"].tolist()
        assert len(runs(log)) == 2
        assert len(form.results.children) == 1 and form.results.children[0].batch is second
        form.submit_button.click()  # once done: all from the cache
        assert "0 new job(s), 4 from the cache" in form.submit_status.value
        form.wait(60)
        assert len(runs(log)) == 2 and form.batch is not None and form.batch.stats.cached == 4
    finally:
        form.close()


def test_remove_selected_and_clear_all(form: JobForm) -> None:
    form.method.value = "Threshold Filter"
    threshold = form.parameter("threshold")
    threshold.mode.value = "range"
    threshold.start.value, threshold.stop.value, threshold.step.value = 0.1, 0.5, 0.1
    pick_files(form, "readings_b")
    form.add_button.click()
    assert [c["parameters"]["threshold"] for c in form.pending] == [0.1, 0.2, 0.3, 0.4, 0.5]
    form.remove_button.click()
    assert "select configs in the pending list first" in form.add_status.value and len(form.pending) == 5
    form.pending_list.value = (1, 3)
    form.remove_button.click()
    assert [c["parameters"]["threshold"] for c in form.pending] == [0.1, 0.3, 0.5]
    assert "removed 2 config(s)" in form.add_status.value and form.preview_counts()["new"] == 3
    assert [label.split(" · ")[0] for label, _ in form.pending_list.options] == [
        "1. Threshold Filter", "2. Threshold Filter", "3. Threshold Filter"]  # fmt: skip
    form.clear_button.click()
    assert form.pending == [] and form.pending_list.options == () and "cleared 3 pending config(s)" in (
        form.add_status.value)  # fmt: skip
    assert form.preview_text() == "0 pending config(s)"


@pytest.mark.parametrize("kind", BACKENDS)
def test_uploads_are_hashed_sent_only_when_missing_and_selected(kind: str, home: Path) -> None:
    with ExitStack() as stack:
        backends: list[CountingBackend] = []

        def counting(inner: Any) -> CountingBackend:
            backends.append(CountingBackend(inner))
            return backends[0]

        connection = open_connection(kind, home, stack, counting)
        backend = backends[0]
        form = JobForm(connection)
        stack.callback(form.close)
        backend.calls.clear()
        poem = data_files("poem.txt")[0].read_bytes()
        when = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        form.files.upload.value = (
            {"name": "<i>notes</i>.txt", "type": "text/plain", "size": 5, "content": memoryview(b"notes"),
             "last_modified": when},
            {"name": "poem-copy.txt", "type": "text/plain", "size": len(poem), "content": memoryview(poem),
             "last_modified": when},
        )  # fmt: skip
        assert backend.calls["check_hashes"] == 1 and backend.calls["upload_file"] == 1  # the poem was there
        assert "&lt;i&gt;notes&lt;/i&gt;.txt uploaded; poem-copy.txt already stored" in form.files.upload_status.value
        kept = form.files.upload.value  # the bytes are not kept in the widget; one entry per file counts them
        assert [(f["name"], bytes(f["content"])) for f in kept] == [("<i>notes</i>.txt", b""), ("poem-copy.txt", b"")]
        names = {h: n for n, h in hashes(connection).items()}
        assert sorted(names[h] for h in form.files.selected) == ["<i>notes</i>.txt", "poem.txt"]
        assert len(names) == 5
        form.files.upload.value = (
            {"name": "again.txt", "type": "text/plain", "size": 5, "content": memoryview(b"notes"),
             "last_modified": when},
        )  # fmt: skip
        assert backend.calls["upload_file"] == 1 and "again.txt already stored" in form.files.upload_status.value
        assert len(form.files.upload.value) == 3 and form.files.uploaded[-1] == "again.txt"  # "Upload (3)"


def test_service_problems_are_shown_beside_the_control_not_raised(home: Path) -> None:
    backend = CountingBackend(EmbeddedBackend(open_engine(home)), fail_method="simulate_jobs", fail_first=2)
    connection = Connection(backend)
    try:
        connection.register_method(methods_dir())
        connection.upload_files(data_files())
        form = JobForm(connection)
        form.method.value = "Example Python Method"
        pick_files(form, "hello")
        form.add_button.click()  # the preview's dry run fails: the config is added all the same
        assert len(form.pending) == 1
        assert "preview unavailable: ConnectionError: service unavailable (injected)" in form.pending_summary.value
        form.submit_button.click()
        assert "ConnectionError: service unavailable (injected)" in form.submit_status.value
        assert form.batch is None and isinstance(form.last_error, ConnectionError)
        assert not form.submit_button.disabled
        form.submit_button.click()  # the service answers again
        assert form.batch is not None and "1 new job(s)" in form.submit_status.value
        form.wait(60)
        form.close()
    finally:
        connection.close()


def test_a_thousand_files_and_a_hundred_methods_stay_searchable(home: Path, tmp_path: Path) -> None:
    """The lists stay small however many files there are: the search narrows them and the selection stays."""
    connection = Connection(EmbeddedBackend(open_engine(home)))
    try:
        for n in range(100):
            write_method(tmp_path / "many", f"Method {n:03d}", "print(1)\n",
                         parameters=[{"name": f"p{i}", "type": "integer", "default": i} for i in range(5)])  # fmt: skip
        connection.register_method(tmp_path / "many")
        for n in range(1000):
            connection.upload_file(f"sample {n}\n".encode(), filename=f"sample_{n:04d}.txt")
        form = JobForm(connection)
        assert len(form.method.options) == 100
        form.method.value = "Method 042"
        assert [f.param.name for f in form.fields] == ["p0", "p1", "p2", "p3", "p4"]
        assert len(form.files.select.options) == MAX_SHOWN
        assert "0 selected · 1000 of 1000 files match · 800 more match: refine the search" in form.files.info.value
        form.files.search.value = "sample_07"
        assert len(form.files.select.options) == 100
        form.files.select_shown.click()
        assert len(form.files.selected) == 100
        form.files.search.value = "sample_0999"
        labels = [label for label, _ in form.files.select.options]
        assert len(labels) == 101 and labels[-1].startswith("sample_0999.txt · 11 B · ")  # selected ones stay
        assert "100 selected · 1 of 1000 files match" in form.files.info.value
        form.files.search.value = "  "
        form.files.clear.click()
        assert form.files.selected == [] and len(form.files.select.options) == MAX_SHOWN
        form.close()
    finally:
        connection.close()


def test_the_magic_shows_the_form_in_a_real_kernel_and_binds_out(home: Path, tmp_path: Path) -> None:
    from kernels import Kernel
    from test_magics import assert_one_line_error

    engine = open_engine(home)
    try:
        engine.register_method(methods_dir())
        for path in data_files():
            engine.upload_file(path)
    finally:
        engine.close()
    kernel = Kernel(tmp_path, {"DSHPC_HOME": str(home)})
    try:
        kernel.ok("%load_ext dshpc_jupyter")
        shown = kernel.ok("form = %dshpc_form --out b\nform")
        data = shown.displays[-1]["data"]
        assert "application/vnd.jupyter.widget-view+json" in data
        assert data["text/plain"] == "<dshpc_jupyter.JobForm: 0 pending config(s)>"
        kernel.ok(
            "form.method.value = 'Example Python Method'\n"
            "form.parameter('uppercase').input.value = True\n"
            "form.files.search.value = 'hello'\n"
            "form.files.select_shown.click()\n"
            "form.add_button.click()\n"
            "form.submit_button.click()\n"
            "form.wait(60)"
        )
        assert kernel.value("b is form.batch") is True
        assert kernel.value("b.df.state.tolist()") == ["completed"]
        assert kernel.value("b.outputs()['uppercase'].tolist()") == [True]
        help_text = kernel.ok("%dshpc_form?").paged
        assert "Examples" in help_text and "%dshpc_form --out b" in help_text
        assert_one_line_error(kernel.run("%dshpc_form --out 1x"), "--out: '1x' is not a valid variable name")
        assert_one_line_error(kernel.run("%dshpc_form --poll 0"), "--poll: must be a positive number")
    finally:
        kernel.shutdown()


MERGE_SCRIPT = r"""import json, os, sys
inputs = json.load(open(os.environ["INPUTS_FILE"]))
read = lambda path: open(path).read()
text = {k: read(v) if isinstance(v, str) else [read(p) for p in v] for k, v in inputs.items()}
print(json.dumps({"text": text, "n": json.load(open(sys.argv[2]))["n"]}))
"""
SHAPE_SCRIPT = r"""import json, os, sys
print(json.dumps({"args": len(sys.argv) - 1, "named": "INPUTS_FILE" in os.environ}))
"""
MERGE_INPUTS = [
    {"name": "data", "description": "one job per data file", "required": True, "multiple": False},
    {"name": "replicates", "description": "all of them in one job", "required": False, "multiple": True},
]
N_PARAMETER = [{"name": "n", "type": "integer", "default": 0, "description": "A number."}]


def register_declared(form: JobForm, root: Path, name: str, script: str, inputs: list[dict[str, Any]]) -> None:
    """Register a method declaring these ``inputs`` in its method.json, then reload the form (as ↻ does)."""
    directory = write_method(root, name, script, parameters=N_PARAMETER)
    spec = json.loads((directory / "method.json").read_text())
    (directory / "method.json").write_text(json.dumps({**spec, "inputs": inputs}))
    form.connection.register_method(directory)
    form.reload_button.click()


def upload(form: JobForm, *names: str) -> dict[str, str]:
    return {n: form.connection.upload_file(f"{n}-content".encode(), filename=n).file_hash for n in names}


def test_one_picker_per_declared_input_builds_file_inputs_and_the_jobs_complete(form: JobForm, tmp_path: Path) -> None:
    register_declared(form, tmp_path / "declared", "Merge", MERGE_SCRIPT, MERGE_INPUTS)
    files = upload(form, "d1.txt", "d2.txt", "r1.txt", "r2.txt")
    form.reload_button.click()
    form.method.value = "Merge"
    assert [p.declared.name for p in form.inputs.pickers] == ["data", "replicates"]
    assert form.files not in form.inputs.children and list(form.inputs.children) == form.inputs.pickers
    data, replicates = form.inputs.pickers
    assert "<b>data</b>" in data.label.value and "required" in data.label.value
    assert "one job per data file" in data.label.value and "required" not in replicates.label.value
    form.inputs.picker("data").choose([files["d1.txt"], files["d2.txt"]])
    form.inputs.picker("replicates").choose([files["r2.txt"], files["r1.txt"]])  # shown (and sent) by name
    n = form.parameter("n")
    n.mode.value = "list"
    n.values_text.value = "1, 2"
    form.add_button.click()
    assert "added 4 config(s): Merge, 2 data file(s) × replicates: a list of 2 × 2 values of n" in form.add_status.value
    reps = [files["r1.txt"], files["r2.txt"]]
    assert form.pending == [
        {"file_inputs": {"data": files[d], "replicates": reps}, "method_name": "Merge", "parameters": {"n": v}}
        for d in ("d1.txt", "d2.txt") for v in (1, 2)
    ]  # fmt: skip
    assert (
        "data=d1.txt " in form.pending_list.options[0][0] and "replicates=[r1.txt " in form.pending_list.options[0][0]
    )
    assert form.preview_counts()["new"] == 4
    form.submit_button.click()
    batch = form.wait(120)
    assert batch is not None and batch.df["state"].tolist() == ["completed"] * 4
    outputs = [json.loads(o) for o in batch.df["output"]]
    assert outputs[0] == {"text": {"data": "d1.txt-content", "replicates": ["r1.txt-content", "r2.txt-content"]},
                          "n": 1}  # fmt: skip
    assert [o["text"]["data"] for o in outputs] == ["d1.txt-content"] * 2 + ["d2.txt-content"] * 2

    # an optional input left empty is not sent; switching methods shows the other method's pickers
    form.inputs.picker("replicates").clear.click()
    form.parameter("n").mode.value = "value"
    form.add_button.click()
    assert [c["file_inputs"] for c in form.pending[4:]] == [{"data": files["d1.txt"]}, {"data": files["d2.txt"]}]
    form.method.value = "Logged"
    assert list(form.inputs.children) == [form.files] and form.inputs.pickers == []
    form.method.value = "Merge"
    assert form.inputs.picker("data").selected == [files["d1.txt"], files["d2.txt"]]  # kept while away


def test_a_required_input_with_nothing_selected_is_an_error_naming_it(form: JobForm, tmp_path: Path) -> None:
    register_declared(form, tmp_path / "declared", "Merge", MERGE_SCRIPT, MERGE_INPUTS)
    files = upload(form, "r1.txt")
    form.reload_button.click()
    form.method.value = "Merge"
    form.inputs.picker("replicates").choose([files["r1.txt"]])
    form.add_button.click()
    assert "data: required input, choose at least one file" in form.inputs.picker("data").error.value
    assert form.inputs.picker("replicates").error.value == ""
    assert "nothing added: 1 field(s) to fix" in form.add_status.value and form.pending == []
    form.inputs.picker("data").choose([files["r1.txt"]])
    assert form.inputs.picker("data").error.value == ""  # choosing a file clears the error
    (new,) = form.inputs.picker("data").add_content([("new.txt", b"uploaded into one input's picker")])
    form.add_button.click()
    assert [c["file_inputs"] for c in form.pending] == [
        {"data": new, "replicates": [files["r1.txt"]]},
        {"data": files["r1.txt"], "replicates": [files["r1.txt"]]},
    ]  # in the order shown: by name
    assert "data=new.txt " in form.pending_list.options[0][0]  # named though only that picker has reloaded


def test_a_parameters_only_method_shows_no_picker_and_sends_no_files(form: JobForm, tmp_path: Path) -> None:
    register_declared(form, tmp_path / "declared", "Shape", SHAPE_SCRIPT, [])
    form.method.value = "Shape"
    assert form.files not in form.inputs.children and "parameters only" in form.inputs.children[0].value
    form.parameter("n").input.value = 3
    form.add_button.click()
    assert form.pending == [{"method_name": "Shape", "parameters": {"n": 3}}]
    assert "added 1 config(s): Shape, 1 config" in form.add_status.value
    assert " · no files · " in form.pending_list.options[0][0]
    form.submit_button.click()
    batch = form.wait(120)
    assert batch is not None and json.loads(batch.df["output"][0]) == {"args": 1, "named": False}


def test_a_method_declaring_no_inputs_keeps_the_single_picker_and_file_hash(form: JobForm) -> None:
    form.method.value = "Word Count (bash)"
    assert list(form.inputs.children) == [form.files] and form.inputs.pickers == []
    with pytest.raises(KeyError, match="declares no input 'data'"):
        form.inputs.picker("data")
    (poem,) = pick_files(form, "poem")
    form.add_button.click()
    assert form.pending == [{"file_hash": poem, "method_name": "Word Count (bash)", "parameters": {}}]
