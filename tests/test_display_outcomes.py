"""The progress bar split by outcome and a cached row's timings, on the embedded engine with real jobs: a batch
with completed, failed, cancelled and invalid configs draws one segment each (not one red bar), a running one
shows running and pending apart, and a config served from cache shows when its original job ran."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dshpc_jupyter import Batch, BatchView
from dshpc_jupyter.examples import data_files, methods_dir
from dshpc_jupyter.front.connection import Connection, connect_async
from dshpc_jupyter.jupyter.display import static_bundle
from dshpc_jupyter.jupyter.outcome_bar import bar_html, ended, segments


@pytest.fixture
def connection(home: Path) -> Iterator[Connection]:
    connection = Connection(connect_async(home=home))
    connection.register_method(methods_dir())
    connection.upload_files(data_files())
    yield connection
    connection.close()


def hashes(connection: Connection) -> dict[str, str]:
    return {f.filename or "": f.file_hash for f in connection.list_files()}


def test_the_bar_has_a_segment_per_outcome_in_order(connection: Connection) -> None:
    files = hashes(connection)
    workload = {"method_name": "Simulated Workload", "file_hash": files["poem.txt"]}
    configs = [
        {"method_name": "Threshold Filter", "file_hash": files["readings_a.csv"], "parameters": {"threshold": 0.5}},
        {"method_name": "Threshold Filter", "file_hash": files["readings_a.csv"], "parameters": {"threshold": -1}},
        {**workload, "parameters": {"seconds": 60}},
        {"method_name": "No Such Method", "file_hash": files["poem.txt"]},
    ]
    batch = Batch.submit(configs, connection=connection, poll=0.1)
    try:
        deadline = time.monotonic() + 60
        while (batch.stats.completed, batch.stats.failed) != (1, 1) and time.monotonic() < deadline:
            batch.wait_for_change(batch.version, 1)
        running = batch.stats
        assert [label for label, _ in segments(running)][:3] == ["completed", "failed", "errors"]
        assert segments(running)[3][0] in ("running", "pending") and ended(running) == 3
        html = bar_html(running)
        assert ">3/4<" in html and html.index("dshpc-bar-completed") < html.index("dshpc-bar-failed")
        batch.cancel().wait(60)
        final = batch.stats
        assert segments(final) == [("completed", 1), ("failed", 1), ("cancelled", 1), ("errors", 1)]
        html = bar_html(final)
        for label in ("completed", "failed", "cancelled", "errors"):
            assert f'title="1 {label}" style="width:25%' in html, label
        assert ">4/4<" in html and bar_html(final) in static_bundle(batch)["text/html"]  # the saved output too
        view = BatchView(batch)
        assert view.progress.value == html
        view.close()
    finally:
        batch.stop()


def test_a_dry_run_bar_says_what_would_run(connection: Connection) -> None:
    files = hashes(connection)
    configs = [{"method_name": "Word Count (bash)", "file_hash": files[name]} for name in ("poem.txt", "hello.txt")]
    batch = Batch.submit(configs, connection=connection, dry_run=True)
    assert segments(batch.stats) == [("would run", 2)] and "dshpc-bar-would-run" in bar_html(batch.stats)


def test_a_cached_row_keeps_the_timings_of_the_run_it_came_from(connection: Connection) -> None:
    files = hashes(connection)
    configs = [{"method_name": "Simulated Workload", "file_hash": files["poem.txt"], "parameters": {"seconds": 0.3}}]
    first = Batch.submit(configs, connection=connection, poll=0.1).wait(60)
    (ran,) = first.rows()
    assert ran.job is not None and ran.duration is not None and ran.duration >= 0.3
    again = Batch.submit(configs, connection=connection, poll=0.1)
    (cached,) = again.rows()
    assert cached.result is not None and cached.result.outcome == "cached"
    assert cached.job is not None, "the record of the original job is fetched at submission"
    assert (cached.job.started_at, cached.job.finished_at) == (ran.job.started_at, ran.job.finished_at)
    assert cached.duration == ran.duration
    frame = again.df
    assert frame["cached"].tolist() == [True] and frame["duration"].tolist() == [ran.duration]
    assert frame["started_at"].notna().all() and frame["finished_at"].notna().all()
    assert f"{ran.duration:.2f} s" in static_bundle(again)["text/html"]
    dry = Batch.submit(configs, connection=connection, dry_run=True)
    assert dry.rows()[0].duration == ran.duration, "a dry run's cached rows too"
