"""The live display without a front end: the widget's values, the static HTML/text, and which rows are shown."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dshpc_jupyter import Batch, BatchView
from dshpc_jupyter.examples import data_files, methods_dir
from dshpc_jupyter.front.connection import Connection, connect_async
from dshpc_jupyter.jupyter.display import pick_rows, static_bundle
from dshpc_jupyter.jupyter.outcome_bar import segments


@pytest.fixture
def connection(home: Path) -> Iterator[Connection]:
    connection = Connection(connect_async(home=home))  # not made the current one: other tests stay unaffected
    connection.register_method(methods_dir())
    connection.upload_files(data_files())
    yield connection
    connection.close()


@pytest.fixture
def finished(connection: Connection) -> Batch:
    """40 configs: 2 failures near the end, 1 invalid config, the rest completed."""
    readings = {f.filename: f.file_hash for f in connection.list_files()}["readings_a.csv"]
    thresholds = [i / 100 for i in range(37)] + [-1.0, -2.0]
    configs = [{"method_name": "Threshold Filter", "file_hash": readings, "parameters": {"threshold": t}}
               for t in thresholds] + [{"method_name": "Nope", "file_hash": readings}]  # fmt: skip
    return Batch.submit(configs, connection=connection, poll=0.1).wait(120)


def test_widget_shows_the_final_state_and_failures_stand_out(finished: Batch) -> None:
    view = BatchView(finished, max_rows=10)
    try:
        assert segments(finished.stats) == [("completed", 37), ("failed", 2), ("errors", 1)]  # split by outcome
        bar = view.progress.value
        assert ">40/40<" in bar and 'class="dshpc-bar-completed" title="37 completed" style="width:92.5%' in bar
        assert 'title="2 failed" style="width:5%' in bar and 'title="1 errors" style="width:2.5%' in bar
        assert "37 completed (0 cached)" in view.summary.value and "2 failed" in view.summary.value
        assert "1 errors" in view.summary.value and "done in" in view.summary.value
        table = view.table.value
        assert table.count("<tr class=") == 10 and "showing 10 of 40 rows" in table
        assert table.count('class="dshpc-failed" style="background:#fde2e1"') == 2
        assert 'class="dshpc-error"' in table and "Method &#x27;Nope&#x27; not found" in table
        assert "threshold must be non-negative" in table and "✗ failed" in table
    finally:
        view.close()


def test_rows_shown_keep_request_order_and_always_include_failures(finished: Batch) -> None:
    shown = pick_rows(finished.rows(), 10)
    assert [r.index for r in shown] == [0, 1, 2, 3, 4, 5, 6, 37, 38, 39]
    assert [r.index for r in pick_rows(finished.rows(), 100)] == list(range(40))


def test_static_bundle_is_plain_html_and_text(finished: Batch) -> None:
    bundle = static_bundle(finished, max_rows=5)
    assert set(bundle) == {"text/html", "text/plain"}
    text = bundle["text/plain"].splitlines()
    assert text[0].startswith(f"dsHPC batch {finished.batch_id}: 40 configs · 37 completed")
    assert text[1].split() == ["#", "method", "file", "parameters", "status", "state", "output", "/", "error"]
    assert len(text) == 2 + 5 + 1 and "failures always shown" in text[-1]
    assert "<script" not in bundle["text/html"]


def test_view_follows_a_running_batch_to_the_end(connection: Connection) -> None:
    hello = {f.filename: f.file_hash for f in connection.list_files()}["hello.txt"]
    configs = [{"method_name": "Simulated Workload", "file_hash": hello, "parameters": {"seconds": 0.5 + i / 10}}
               for i in range(3)]  # fmt: skip
    batch = Batch.submit(configs, connection=connection, poll=0.1)
    view = BatchView(batch, min_interval=0.05)
    assert ">0/3<" in view.progress.value and "dshpc-bar-completed" not in view.progress.value
    assert "dshpc-bar-pending" in view.progress.value or "dshpc-bar-running" in view.progress.value
    finished = []
    view.follow(on_done=lambda: finished.append(view.progress.value))
    batch.wait(60)
    deadline = time.monotonic() + 10
    while not finished and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(finished) == 1 and ">3/3<" in finished[0] and 'title="3 completed" style="width:100%' in finished[0]
    view.close()


def test_rows_say_file_names_how_each_got_its_job_and_the_last_line_of_a_failure(finished: Batch) -> None:
    again = Batch.submit(finished.configs, connection=finished.connection, poll=0.1).wait(60)
    again.variable = "b"
    html_table = static_bundle(again, max_rows=5)["text/html"]
    text = static_bundle(again, max_rows=5)["text/plain"]
    assert "readings_a.csv" in text and again.configs[0]["file_hash"][:12] not in text
    assert "completed (cached)" in text and "failed (resubmitted)" in text and "error" in text
    assert "every row is in b.df" in text and "every row is in <code>b.df</code>" in html_table
    assert "37 completed · 2 failed · 1 error" in text


def test_a_traceback_shows_as_its_last_line_and_a_cancel_apart_from_a_failure(connection: Connection) -> None:
    poem = {f.filename: f.file_hash for f in connection.list_files()}["poem.txt"]
    configs = [{"method_name": "Simulated Workload", "file_hash": poem, "parameters": {"memory_mb": -1}},
               {"method_name": "Simulated Workload", "file_hash": poem, "parameters": {"seconds": 60}}]  # fmt: skip
    batch = Batch.submit(configs, connection=connection, poll=0.1)
    deadline = time.monotonic() + 60
    while batch.rows()[0].state != "failed" and time.monotonic() < deadline:
        batch.wait_for_change(batch.version, 1)
    batch.cancel().wait(60)
    failure, cancelled = batch.rows()
    assert failure.error is not None and "Traceback" in failure.error, "a real traceback, several lines long"
    text = static_bundle(batch)["text/plain"]
    assert "ValueError: negative count" in text and "Traceback" not in text
    assert "cancelled (new)" in text and "failed (new)" in text
    assert cancelled.status == "CA" and (batch.stats.failed, batch.stats.cancelled) == (1, 1)
    assert "1 failed · 1 cancelled" in batch.stats.summary()


def test_a_snapshot_of_a_running_batch_says_when_it_was_taken(connection: Connection) -> None:
    poem = {f.filename: f.file_hash for f in connection.list_files()}["poem.txt"]
    batch = Batch.submit([{"method_name": "Simulated Workload", "file_hash": poem, "parameters": {"seconds": 1.0}}],
                         connection=connection, poll=0.1)  # fmt: skip
    from dshpc_jupyter.jupyter.display import live_bundle

    view = BatchView(batch)
    bundle = live_bundle(view)
    assert set(bundle) == {"application/vnd.jupyter.widget-view+json", "text/html", "text/plain"}
    assert " · as of " in bundle["text/plain"].splitlines()[0] and "dshpc-as-of" in bundle["text/html"]
    assert "pending (new)" in bundle["text/plain"] or "running (new)" in bundle["text/plain"]
    batch.wait(60)
    assert " as of " not in static_bundle(batch, when=time.time())["text/plain"], "a final state is not dated"
    view.close()


def test_the_live_table_filters_by_state_and_pages(finished: Batch) -> None:
    view = BatchView(finished, max_rows=10)
    assert view.state_filter.options[:2] == ("all", "completed") and "cancelled" in view.state_filter.options
    assert "(failures always shown; 37 completed · 2 failed · 1 error)" in view.table.value
    assert view.page_label.value == "page 1 of 4" and view.previous_page.disabled
    view.next_page.click()
    assert view.page_label.value == "page 2 of 4" and 'class="dshpc-completed"' in view.table.value
    assert view.table.value.count("<tr class=") == 10 and ">10<" in view.table.value
    view.state_filter.value = "failed"
    assert view.page_label.value == "page 1 of 1" and view.table.value.count("<tr class=") == 2
    assert view.next_page.disabled
    view.close()


def test_stats_are_a_mapping_too(finished: Batch) -> None:
    stats = finished.stats
    assert stats["completed_jobs"] == stats.completed_jobs and dict(stats)["failed"] == 2
    assert "eta" in stats and len(stats) == len(stats.as_dict())
    with pytest.raises(KeyError, match=r"'complete': not a batch statistic \(did you mean 'completed'\?"):
        stats["complete"]
