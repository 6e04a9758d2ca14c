"""The worker names a job's slot runner in ``runner.json`` with one plain write (``name_runner``, no rename):
what a later worker reads of it, whole, empty (the worker died between the open and the write) or rewritten
by the runner once the method started."""

from __future__ import annotations

from pathlib import Path

from dshpc_jupyter.schedulers.job_files import RUNNER_FILE, name_runner, read_runner_info, record_runner


def test_a_named_runner_is_read_back_and_the_runner_then_adds_its_method(tmp_path: Path) -> None:
    name_runner(tmp_path, "41:7")
    assert read_runner_info(tmp_path) == {"runner": "41:7", "method": None}
    record_runner(tmp_path, "41:7", "42:8")
    assert read_runner_info(tmp_path) == {"runner": "41:7", "method": "42:8"}


def test_naming_again_replaces_what_an_earlier_hand_left(tmp_path: Path) -> None:
    record_runner(tmp_path, "1:1", "2:2")  # a claim given back after a runner that never started it, say
    name_runner(str(tmp_path), "3:3")
    assert read_runner_info(tmp_path) == {"runner": "3:3", "method": None}


def test_an_empty_or_half_written_name_reads_as_no_runner(tmp_path: Path) -> None:
    (tmp_path / RUNNER_FILE).write_bytes(b"")
    assert read_runner_info(tmp_path) is None, "the task was not sent yet: the job is queued again"
    (tmp_path / RUNNER_FILE).write_bytes(b'{"runner": "41')
    assert read_runner_info(tmp_path) is None
