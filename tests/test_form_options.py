"""The form's submit options (issue 12: retries, resubmission, force, priority) and the live table's log panel,
without a browser: the widgets are set and clicked as a person would, and the service's records say what reached
it. Both backends; the priority test uses a one-slot embedded engine, so that jobs really queue."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from support import wait_until, write_method
from test_backends_shared import BACKENDS, open_connection

from dshpc_jupyter import JobForm
from dshpc_jupyter.backends.embedded import EmbeddedBackend
from dshpc_jupyter.domain import status as st
from dshpc_jupyter.front.batch import Batch
from dshpc_jupyter.front.connection import Connection
from dshpc_jupyter.jupyter.display import BatchView
from dshpc_jupyter.jupyter.row_logs import MAX_LINES, RowLogs, last_lines
from dshpc_jupyter.service.factory import open_engine

# Fails with exit code 3 when asked, else prints ``lines`` numbered lines to stdout and one line to stderr.
SCRIPT = """import json, sys, time
p = json.load(open(sys.argv[1]))
time.sleep(p["seconds"])
if p["fail"]:
    print("ValueError: failing on purpose", file=sys.stderr)
    sys.exit(3)
for i in range(p["lines"]):
    print(f"line {i}")
print("to stderr", file=sys.stderr)
"""
PARAMETERS: list[dict[str, Any]] = [
    {"name": "fail", "type": "boolean", "default": False},
    {"name": "lines", "type": "integer", "default": 1},
    {"name": "seconds", "type": "number", "default": 0.0},
    {"name": "tag", "type": "string", "default": ""},
]


def register(conn: Connection, root: Path, retry: dict[str, Any] | None = None) -> None:
    """The parameters-only method ``Flaky`` (no inputs: no file picker); ``retry`` goes into its method.json
    (the method's own retry policy)."""
    directory = write_method(root, "Flaky", SCRIPT, parameters=PARAMETERS)
    spec = json.loads((directory / "method.json").read_text(encoding="utf-8"))
    extra = {"inputs": []} if retry is None else {"inputs": [], "retry": retry}
    (directory / "method.json").write_text(json.dumps({**spec, **extra}), encoding="utf-8")
    conn.register_method(directory)


@pytest.fixture(params=BACKENDS)
def conn(request: pytest.FixtureRequest, home: Path, tmp_path: Path) -> Iterator[Connection]:
    """``Flaky`` whose spec retries a plain failure once (so the form's retry count is seen to override it)."""
    with ExitStack() as stack:
        connection = open_connection(request.param, home, stack)
        register(connection, tmp_path / "methods", retry={"attempts": 2, "on": ["F"]})
        yield connection


@pytest.fixture
def form(conn: Connection) -> Iterator[JobForm]:
    form = JobForm(conn, poll=0.1)
    yield form
    form.close()


def add(form: JobForm, **values: Any) -> None:
    """Choose ``Flaky``, set each parameter's value and click Add (one config)."""
    form.method.value = "Flaky"
    for name, value in values.items():
        form.parameter(name).input.value = value
    form.add_button.click()
    assert "added 1 config" in form.add_status.value, form.add_status.value


def submitted(form: JobForm) -> Batch:
    form.submit_button.click()
    assert form.batch is not None, form.submit_status.value
    batch = form.wait(timeout=60)
    assert batch is not None
    return batch


def first_job(batch: Batch) -> str:
    result = batch.rows()[0].result
    assert result is not None and result.job_id is not None
    return result.job_id


def test_left_as_they_start_the_options_send_nothing(form: JobForm) -> None:
    assert form.options.read() == {}
    assert form.options.describe() == ""
    form.options.retry.value = " 2 "
    form.options.priority.value = "5"
    form.options.resubmit.value = "never"
    form.options.force.value = True
    assert form.options.read() == {"retry": 2, "priority": 5, "resubmit": "never", "force": True}
    form.options.priority.value = "0"
    assert "priority" not in form.options.read(), "priority 0 is the default: not sent"


def test_the_retry_count_reaches_the_job_and_overrides_the_method_s_policy(form: JobForm) -> None:
    add(form, fail=True)
    default = submitted(form)  # the method's policy: one retry of a plain failure
    assert (default.df.loc[0, "status"], default.df.loc[0, "attempt"]) == (st.FAILED, 2)
    form.clear_button.click()
    add(form, fail=True, tag="no retry")
    form.options.retry.value = "0"
    none = submitted(form)
    assert (none.df.loc[0, "status"], none.df.loc[0, "attempt"]) == (st.FAILED, 1)
    [record] = form.connection.job_statuses([str(none.df.loc[0, "job_id"])])
    assert (record.attempt, record.attempts) == (1, [])


def test_resubmit_never_keeps_the_failure_and_force_reruns_the_cached(form: JobForm) -> None:
    form.options.retry.value = "0"
    add(form, fail=True)
    assert submitted(form).df.loc[0, "status"] == st.FAILED
    form.options.resubmit.value = "never"
    kept = submitted(form)
    assert (kept.df.loc[0, "outcome"], kept.df.loc[0, "state"]) == ("failed", "failed")
    assert kept.stats.kept_failures == 1
    assert "0 new job(s), 0 from the cache, 0 joined running jobs, 0 invalid, 1 failed kept" in form.submit_status.value
    form.options.resubmit.value = "failed"
    assert submitted(form).df.loc[0, "outcome"] == "resubmitted", "the seed's rule: a failed config runs again"

    form.clear_button.click()
    add(form, fail=False)
    first = submitted(form)
    assert first.df.loc[0, "status"] == st.COMPLETED
    assert submitted(form).df.loc[0, "outcome"] == "cached"
    form.options.force.value = True
    forced = submitted(form)
    assert forced.df.loc[0, "outcome"] == "rerun"
    assert "1 new job(s) (1 rerun although cached)" in form.submit_status.value
    assert forced.df.loc[0, "job_id"] != first.df.loc[0, "job_id"]
    assert forced.df.loc[0, "status"] == st.COMPLETED


@pytest.mark.parametrize(
    ("field", "text", "problem"),
    [("retry", "two", "retries: 'two' is not a whole number"), ("retry", "-1", "retries: -1 is out of range"),
     ("retry", "20", "retries: 20 is out of range"), ("priority", "1.5", "priority: '1.5' is not a whole number"),
     ("priority", "99999999", "priority: 99999999 is out of range")],
)  # fmt: skip
def test_a_bad_option_is_shown_naming_it_and_nothing_is_submitted(
    form: JobForm, field: str, text: str, problem: str
) -> None:
    add(form)
    getattr(form.options, field).value = text
    form.submit_button.click()
    assert form.batch is None
    assert problem in form.submit_status.value.replace("&#x27;", "'")
    assert problem in form.options.error.value.replace("&#x27;", "'")
    assert form.connection.list_jobs(limit=10) == []
    getattr(form.options, field).value = ""
    assert submitted(form).df.loc[0, "status"] == st.COMPLETED
    assert form.options.error.value == ""


def test_the_priority_puts_the_form_s_jobs_first_in_the_queue(home: Path, tmp_path: Path) -> None:
    engine = open_engine(home, slots=1)
    conn = Connection(EmbeddedBackend(engine))
    register(conn, tmp_path / "methods")
    form = JobForm(conn, poll=0.1)
    try:
        hold = conn.simulate_jobs([{"method_name": "Flaky", "parameters": {"seconds": 3.0}}]).results[0].job_id
        wait_until(lambda: conn.job_statuses([hold or ""])[0].status == st.RUNNING, 30, "the slot to be held")
        plain = Batch.submit([{"method_name": "Flaky", "parameters": {"tag": "plain"}}], connection=conn)
        add(form, tag="urgent")
        form.options.priority.value = "9"
        form.submit_button.click()
        urgent = form.batch
        assert urgent is not None
        [queued, behind] = conn.job_statuses([first_job(urgent), first_job(plain)])
        assert (queued.queue_position, behind.queue_position) == (1, 2)
        form.wait(timeout=60)
        plain.wait(timeout=60)
        assert urgent.df.loc[0, "started_at"] < plain.df.loc[0, "started_at"]
    finally:
        form.close()
        conn.close()


# --- the live table's log panel ----------------------------------------------------------------------------


def test_the_live_table_shows_a_row_s_stdout_and_stderr_bounded(conn: Connection) -> None:
    configs = [{"method_name": "Flaky", "parameters": {"lines": 3}},
               {"method_name": "Flaky", "parameters": {"lines": MAX_LINES + 50}}]  # fmt: skip
    batch = Batch.submit(configs, connection=conn, poll=0.1).wait(timeout=60)
    view = BatchView(batch)
    try:
        logs = view.logs
        assert logs in view.children
        logs.show_button.click()
        assert "row 0 · stdout" in logs.text.value
        assert "line 0\nline 1\nline 2" in logs.text.value
        logs.stream.value = "stderr"
        assert logs.show() == "to stderr"
        logs.row.value = 1
        logs.stream.value = "stdout"
        shown = logs.show()
        assert shown.splitlines() == [f"line {i}" for i in range(50, MAX_LINES + 50)]
        assert f"the last {MAX_LINES} lines (50 earlier left out)" in logs.text.value
        logs.hide_button.click()
        assert logs.text.value == ""
    finally:
        view.close()


def test_the_log_panel_says_why_a_row_has_no_log(conn: Connection) -> None:
    configs = [{"method_name": "Flaky", "parameters": {"lines": 0}}, {"method_name": "No Such Method"}]
    batch = Batch.submit(configs, connection=conn, poll=0.1).wait(timeout=60)
    logs = RowLogs(batch)
    assert logs.row.max == 1
    assert logs.show() == ""
    assert "(no stdout yet)" in logs.text.value
    logs.row.value = 1
    logs.show_button.click()
    assert "row: config 1 has no job" in logs.text.value
    assert "⚠" in logs.text.value


def test_a_dry_run_s_view_has_no_log_panel(conn: Connection) -> None:
    batch = Batch.submit([{"method_name": "Flaky"}], connection=conn, dry_run=True)
    view = BatchView(batch)
    try:
        assert view.logs not in view.children
    finally:
        view.close()


def test_last_lines_keeps_the_tail_and_counts_what_it_cut() -> None:
    assert last_lines("") == ("", 0)
    assert last_lines("a\nb\nc\n", 2) == ("b\nc", 1)
    assert last_lines("a\nb", 5) == ("a\nb", 0)
