"""The live Batch over the real embedded backend: its DataFrame, statistics, polling, waiting, cancelling,
reopening, concurrency and dry runs."""

from __future__ import annotations

import itertools
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from support import CountingBackend, write_method

from dshpc_jupyter import Batch, batches
from dshpc_jupyter.backends.embedded import EmbeddedBackend
from dshpc_jupyter.examples import data_files, methods_dir
from dshpc_jupyter.front.connection import Connection
from dshpc_jupyter.service.factory import open_engine

SLEEPER = """import json, sys, time
p = json.load(open(sys.argv[2]))
time.sleep(p["seconds"])
print(json.dumps({"n": p["n"], "started": time.time()}))
"""


@pytest.fixture
def counting(home: Path) -> Iterator[tuple[Connection, CountingBackend]]:
    """A connection on a fresh home with the examples and a ``Sleeper`` method, its backend's calls counted."""
    backend = CountingBackend(EmbeddedBackend(open_engine(home)))
    connection = Connection(backend)
    connection.register_method(methods_dir())
    connection.register_method(
        write_method(home.parent / "methods", "Sleeper", SLEEPER, parameters=[
            {"name": "n", "type": "integer", "default": 0}, {"name": "seconds", "type": "number", "default": 0.0},
        ])
    )  # fmt: skip
    connection.upload_files(data_files())
    backend.calls.clear()
    yield connection, backend
    connection.close()


@pytest.fixture
def connection(counting: tuple[Connection, CountingBackend]) -> Connection:
    return counting[0]


@pytest.fixture
def hashes(connection: Connection) -> dict[str, str]:
    return {f.filename or "": f.file_hash for f in connection.list_files()}


def threshold_configs(hashes: dict[str, str], thresholds: list[float]) -> list[dict[str, object]]:
    return [
        {"method_name": "Threshold Filter", "file_hash": hashes[name], "parameters": {"threshold": t}}
        for name in ("readings_a.csv", "readings_b.csv")
        for t in thresholds
    ]


def test_df_has_one_row_per_config_in_order_with_typed_columns(connection: Connection, hashes: dict[str, str]) -> None:
    configs: list[dict[str, object]] = [
        *threshold_configs(hashes, [0.2, -1.0]),
        {"method_name": "Nope", "file_hash": hashes["poem.txt"]},
    ]
    batch = Batch.submit(configs, connection=connection, poll=0.1).wait(60)
    df = batch.df
    assert list(df.columns[:21]) == [
        "job_id", "method_name", "file_hash", "function_hash", "parameters", "new_status", "old_status", "message",
        "output", "outcome", "status", "state", "cached", "error", "exit_code", "attempt", "submitted_at",
        "started_at", "finished_at", "queue_position", "duration",
    ]  # fmt: skip
    # one per parameter, defaults filled in; then the output files (no named inputs here, so no input columns)
    assert list(df.columns[21:]) == ["threshold", "column", "output_files"]
    assert df["attempt"].tolist()[:4] == [1, 1, 1, 1] and pd.isna(df["attempt"].iloc[4]), "no job, no attempt"
    assert df["threshold"].iloc[:4].tolist() == [0.2, -1.0, 0.2, -1.0] and pd.isna(df["threshold"].iloc[4])
    assert df["column"].iloc[:4].tolist() == ["value"] * 4 and pd.isna(df["column"].iloc[4])
    assert df["state"].tolist() == ["completed", "failed", "completed", "failed", "error"]
    assert df["status"].tolist()[:4] == ["CD", "F", "CD", "F"] and pd.isna(df["status"].iloc[4])
    for column in ("method_name", "file_hash", "state", "status", "outcome", "new_status", "column"):
        assert isinstance(df[column].dtype, pd.CategoricalDtype), column
    assert str(df["submitted_at"].dtype).startswith("datetime64") and str(df["submitted_at"].dt.tz) == "UTC"
    assert (df["duration"].iloc[:4] > 0).all()
    assert df["exit_code"].iloc[:4].tolist() == [0, 2, 0, 2]
    assert "threshold must be non-negative" in df["error"].iloc[1]
    assert df["error"].iloc[4] == "Method 'Nope' not found" and pd.isna(df["job_id"].iloc[4])
    assert df["parameters"].iloc[0] == {"threshold": 0.2}  # as given


def test_stats_add_up_and_outputs_become_columns(connection: Connection, hashes: dict[str, str]) -> None:
    batch = Batch.submit(threshold_configs(hashes, [0.2, 0.5, -1.0]), connection=connection, poll=0.1).wait(60)
    stats = batch.stats
    assert (stats.total_jobs, stats.successful_submissions, stats.in_progress_jobs, stats.completed_jobs) == (
        6,
        6,
        6,
        0,
    )
    assert stats.completed_jobs + stats.in_progress_jobs + stats.failed_submissions == stats.total_jobs
    assert (stats.completed, stats.failed, stats.pending, stats.running, stats.errors) == (4, 2, 0, 0, 0)
    assert stats.done and stats.elapsed > 0 and stats.throughput and stats.eta == 0.0
    assert (
        "4 completed (0 cached)" in stats.summary() and "2 failed" in stats.summary() and "done in" in stats.summary()
    )
    outputs = batch.outputs()
    assert list(outputs.index) == list(batch.df.index)
    assert {"method_name", "file_hash", "threshold", "rows", "above", "mean_above", "max"} <= set(outputs.columns)
    assert outputs.groupby("threshold")["above"].sum().to_dict()[0.5] == 28 + 32
    assert outputs["rows"].iloc[2] != outputs["rows"].iloc[2]  # a failed job has no output: NaN


def test_outputs_prefix_columns_that_clash_with_parameters(connection: Connection, hashes: dict[str, str]) -> None:
    configs = [{"method_name": "Sleeper", "file_hash": hashes["hello.txt"], "parameters": {"n": 7}}]
    outputs = Batch.submit(configs, connection=connection, poll=0.1).wait(60).outputs()
    assert outputs["n"].tolist() == [7] and outputs["output.n"].tolist() == [7]
    assert "started" in outputs.columns


def test_second_submission_is_all_cached_and_failures_are_resubmitted(
    connection: Connection, hashes: dict[str, str]
) -> None:
    configs = threshold_configs(hashes, [0.2, -1.0])
    first = Batch.submit(configs, connection=connection, poll=0.1).wait(60)
    second = Batch.submit(configs, connection=connection, poll=0.1)
    assert second.df["outcome"].tolist() == ["cached", "resubmitted", "cached", "resubmitted"]
    assert second.df["cached"].tolist() == [True, False, True, False]
    assert second.df["old_status"].tolist()[1] == "F"
    assert second.df["job_id"][0] == first.df["job_id"][0] and second.df["job_id"][1] != first.df["job_id"][1]
    assert second.wait(60).stats.cached == 2


def test_a_batch_of_invalid_configs_is_done_at_once_and_never_polls(
    counting: tuple[Connection, CountingBackend], hashes: dict[str, str]
) -> None:
    connection, backend = counting
    batch = Batch.submit([{"method_name": "Nope", "file_hash": hashes["poem.txt"]}], connection=connection, poll=0.05)
    assert batch.done and batch.df["state"].tolist() == ["error"]
    time.sleep(0.3)
    assert backend.calls["job_statuses"] == 0


def test_wait_times_out_then_cancel_ends_every_job(connection: Connection, hashes: dict[str, str]) -> None:
    configs = [{"method_name": "Sleeper", "file_hash": hashes["hello.txt"], "parameters": {"n": n, "seconds": 30}}
               for n in range(3)]  # fmt: skip
    batch = Batch.submit(configs, connection=connection, poll=0.1)
    with pytest.raises(TimeoutError, match=r"3 job\(s\) still in progress after 0.3 s"):
        batch.wait(0.3)
    assert not batch.done
    batch.cancel()
    batch.wait(30)
    assert batch.df["status"].tolist() == ["CA", "CA", "CA"] and batch.df["state"].tolist() == ["failed"] * 3


def test_load_reopens_the_same_jobs(connection: Connection, hashes: dict[str, str]) -> None:
    batch = Batch.submit(threshold_configs(hashes, [0.2, 0.5]), connection=connection, poll=0.1)
    assert batch.batch_id is not None
    reopened = Batch.load(batch.batch_id, connection=connection, poll=0.1).wait(60)
    batch.wait(60)
    assert reopened.df["job_id"].tolist() == batch.df["job_id"].tolist()
    assert reopened.df["state"].tolist() == ["completed"] * 4
    assert reopened.df["threshold"].tolist() == [0.2, 0.5, 0.2, 0.5]
    assert reopened.stats.total_jobs == 4 and reopened.stats.successful_submissions == 4
    listed = batches(connection=connection)
    assert listed["batch_id"].tolist() == [batch.batch_id] and listed["total_jobs"].tolist() == [4]
    assert (listed["state"].tolist(), listed["completed"].tolist(), listed["pending"].tolist()) == (["done"], [4], [0])


def test_dry_run_submits_and_records_nothing(
    counting: tuple[Connection, CountingBackend], hashes: dict[str, str]
) -> None:
    connection, backend = counting
    batch = Batch.submit(threshold_configs(hashes, [0.2]), connection=connection, dry_run=True)
    assert batch.done and batch.batch_id is None
    assert batch.df["outcome"].tolist() == ["new", "new"] and batch.df["state"].tolist() == ["dry run"] * 2
    assert batch.stats.summary().startswith("dry run: 2 configs: 0 cached, 0 in progress, 2 new")
    assert connection.list_jobs() == [] and connection.batches() == []
    assert backend.calls["job_statuses"] == 0


def test_polling_asks_once_per_interval_by_change_for_2000_jobs_in_flight(
    counting: tuple[Connection, CountingBackend], hashes: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """2,000 jobs in flight (one slot, so they stay pending): one poll per interval, no other backend call while
    polling; the first round reads all 2,000 jobs once (``job_statuses``), every later one asks only what changed
    (``job_changes``, with the cursor of the answer before)."""
    monkeypatch.setenv("DSHPC_LOCAL_SLOTS", "1")
    connection, backend = counting
    configs = [{"method_name": "Sleeper", "file_hash": hashes["hello.txt"], "parameters": {"n": n, "seconds": 60}}
               for n in range(2000)]  # fmt: skip
    poll = 0.2
    batch = Batch.submit(configs, connection=connection, poll=poll)
    try:
        backend.calls.clear()
        started = time.monotonic()
        time.sleep(3.0)
        calls = list(backend.call_times)
        elapsed = time.monotonic() - started
        rounds = len(calls) - backend.calls["job_statuses"]  # the first round asks twice: cursor, then records
        assert dict(backend.calls) == {"job_statuses": 1, "job_changes": rounds}
        assert rounds <= elapsed / poll + 1
        assert rounds >= 3, f"only {rounds} polls in {elapsed:.1f} s"
        assert [(len(ids), len(set(ids))) for ids in backend.status_requests] == [(2000, 2000)]
        calls = calls[1:]  # the first round's two calls come together
        gaps = [b - a for a, b in itertools.pairwise(calls)]
        assert min(gaps) >= poll * 0.9, gaps
        assert not batch.done and batch.stats.pending + batch.stats.running == 2000
    finally:
        batch.stop()
        batch.cancel()
    stats = batch.wait(60).stats
    assert (stats.cancelled, stats.failed) == (2000, 0), "a cancel is counted apart from failures"


def test_concurrency_keeps_at_most_n_jobs_in_progress(connection: Connection, hashes: dict[str, str]) -> None:
    configs = [{"method_name": "Sleeper", "file_hash": hashes["hello.txt"], "parameters": {"n": n, "seconds": 0.3}}
               for n in range(4)]  # fmt: skip
    batch = Batch.submit(configs, connection=connection, poll=0.05, concurrency=2)
    assert batch.stats.queued == 2 and batch.df["state"].tolist()[2:] == ["queued", "queued"]
    batch.wait(60)
    df = batch.df
    assert df["state"].tolist() == ["completed"] * 4
    assert len(batch.batch_ids) >= 2 and batch.stats.total_jobs == 4
    for t in df["started_at"]:
        running = ((df["started_at"] <= t) & (df["finished_at"] > t)).sum()
        assert running <= 2, df[["started_at", "finished_at"]]
    again = Batch.submit(configs, connection=connection, concurrency=1)
    assert again.done and again.df["outcome"].tolist() == ["cached"] * 4  # cached configs take no slot


def test_polling_survives_a_service_that_stops_answering_for_a_while(home: Path, hashes: dict[str, str]) -> None:
    backend = CountingBackend(EmbeddedBackend(open_engine(home)), fail_method="job_statuses", fail_first=2)
    connection = Connection(backend)
    try:
        batch = Batch.submit(threshold_configs(hashes, [0.2]), connection=connection, poll=0.05)
        errors = []
        deadline = time.monotonic() + 30
        while not batch.done and time.monotonic() < deadline:
            errors.append(batch.last_error)
            time.sleep(0.01)
        assert batch.done and batch.df["state"].tolist() == ["completed", "completed"]
        assert "ConnectionError: service unavailable (injected)" in errors
        assert batch.last_error is None
    finally:
        connection.close()


def test_a_final_record_never_goes_back(connection: Connection, hashes: dict[str, str]) -> None:
    batch = Batch.submit(threshold_configs(hashes, [0.2])[:1], connection=connection, poll=0.1).wait(60)
    record = batch.rows()[0].job
    assert record is not None and record.status == "CD"
    batch.state.apply([record.model_copy(update={"status": "R"})])
    assert batch.rows()[0].status == "CD"


def test_parameter_defaults_are_fetched_once_at_submission_never_by_the_views(
    counting: tuple[Connection, CountingBackend], hashes: dict[str, str]
) -> None:
    connection, backend = counting
    batch = Batch.submit(threshold_configs(hashes, [0.2]), connection=connection, poll=0.05)
    assert backend.calls["list_methods"] == 1, "asked when the batch is submitted"
    batch.wait(60)
    for _ in range(3):
        assert batch.df["column"].tolist() == ["value", "value"]
    batch.outputs()
    batch.refresh()  # every method of the batch is known: nothing to ask again
    assert backend.calls["list_methods"] == 1
    reopened = Batch.load(batch.batch_id or "", connection=connection)
    assert reopened.df["column"].tolist() == ["value", "value"] and backend.calls["list_methods"] == 2


def test_a_batch_whose_configs_name_no_method_never_asks_for_defaults(
    counting: tuple[Connection, CountingBackend], hashes: dict[str, str]
) -> None:
    connection, backend = counting
    batch = Batch.submit([{"method_name": "Nope", "file_hash": hashes["poem.txt"], "parameters": {"a": 1}}],
                         connection=connection)  # fmt: skip
    assert batch.df["a"].tolist() == [1] and batch.refresh().defaults_error is None
    assert backend.calls["list_methods"] == 0


def test_an_error_fetching_defaults_is_recorded_shown_and_asked_again_by_refresh(
    home: Path, hashes: dict[str, str]
) -> None:
    backend = CountingBackend(EmbeddedBackend(open_engine(home)), fail_method="list_methods", fail_first=1)
    connection = Connection(backend)
    try:
        batch = Batch.submit(threshold_configs(hashes, [0.2]), connection=connection, poll=0.05).wait(60)
        assert batch.defaults_error == "ConnectionError: service unavailable (injected)"
        with pytest.warns(UserWarning, match=r"parameter defaults: could not be fetched \(ConnectionError: service"):
            df = batch.df
        assert df["threshold"].tolist() == [0.2, 0.2] and "column" not in df.columns  # the given values only
        with pytest.warns(UserWarning, match="batch.refresh"):
            batch.outputs()
        batch.refresh()
        assert batch.defaults_error is None and backend.calls["list_methods"] == 2
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert batch.df["column"].tolist() == ["value", "value"]
    finally:
        connection.close()


class MethodsBug(CountingBackend):
    """A backend whose ``list_methods`` has a bug (not a service that cannot answer)."""

    async def list_methods(self, latest_only: bool = True) -> list[object]:
        raise TypeError("a bug in list_methods")


def test_a_bug_fetching_defaults_is_raised_not_recorded(home: Path, hashes: dict[str, str]) -> None:
    connection = Connection(MethodsBug(EmbeddedBackend(open_engine(home))))
    try:
        with pytest.raises(TypeError, match="a bug in list_methods"):
            Batch.submit(threshold_configs(hashes, [0.2]), connection=connection)
    finally:
        connection.close()


def test_bad_arguments_name_the_field(connection: Connection) -> None:
    with pytest.raises(ValueError, match="poll: must be a positive number"):
        Batch.submit([], connection=connection, poll=0)
    with pytest.raises(ValueError, match="concurrency: must be at least 1"):
        Batch.submit([], connection=connection, concurrency=0)


CLOSE_WHILE_POLLING = """
import sys
from dshpc_jupyter.front.batch import Batch
from dshpc_jupyter.front.connection import connect
connection = connect(home=sys.argv[1])
connection.register_method(sys.argv[2])
[file_hash] = connection.upload_files([sys.argv[3]])
config = {"method_name": "Sleeper", "file_hash": file_hash, "parameters": {"seconds": 30}}
batch = Batch.submit([config], connection=connection, poll=0.05)
batch.refresh()
connection.close()
connection.close()
print("closed", batch.done)
"""


def test_closing_a_connection_stops_the_pollers_of_its_open_batches(home: Path, tmp_path: Path) -> None:
    """The interpreter then exits at once and quietly, although the batch is still running on the service."""
    method = write_method(tmp_path / "methods", "Sleeper", SLEEPER, parameters=[
        {"name": "n", "type": "integer", "default": 0}, {"name": "seconds", "type": "number", "default": 0.0},
    ])  # fmt: skip
    argv = [sys.executable, "-c", CLOSE_WHILE_POLLING, str(home), str(method), str(data_files("hello.txt")[0])]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "closed False"
    assert result.stderr == "", "nothing is left pending on the loop at exit"


def test_plots_draw_the_states_durations_and_a_gantt(connection: Connection, hashes: dict[str, str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from dshpc_jupyter.domain.errors import InvalidInputError

    batch = Batch.submit(threshold_configs(hashes, [0.2, -1.0]), connection=connection, poll=0.1).wait(60)
    states = batch.plot()
    lines = {line.get_label(): line.get_ydata() for line in states.get_lines()}
    assert set(lines) == {"pending", "running", "completed", "failed"}
    assert (lines["completed"][-1], lines["failed"][-1]) == (2, 2), "the last moment: every job ended"
    durations = batch.plot("durations")
    assert durations.get_xlabel() == "threshold" and len(durations.collections[0].get_offsets()) == 4
    gantt = batch.plot("gantt")
    assert len(gantt.patches) == 4 and gantt.get_title() == "jobs from start to end"
    with pytest.raises(InvalidInputError, match=r"kind: 'gant' is not one of .*\(did you mean 'gantt'\?\)"):
        batch.plot("gant")
    with pytest.raises(InvalidInputError, match=r"parameter: 'treshold' is not a parameter.*did you mean 'threshold'"):
        batch.plot("durations", parameter="treshold")


def test_a_dry_run_counts_no_errors(connection: Connection, hashes: dict[str, str]) -> None:
    batch = Batch.submit(threshold_configs(hashes, [0.2, 0.4]), connection=connection, dry_run=True)
    stats = batch.stats
    assert (stats.errors, stats.dry_run_rows, stats.configs) == (0, 4, 4)
    from dshpc_jupyter.jupyter.display import static_bundle

    text = static_bundle(batch)["text/plain"]
    assert text.startswith("dsHPC: dry run: 4 configs") and "dry run: dry run" not in text
    assert "color:#b3261e" not in static_bundle(batch)["text/html"].split("</div>")[0]
