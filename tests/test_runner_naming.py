"""A job's ``runner.json`` is JSON lines, never rewritten in place nor renamed over: the runner's name in one
plain write (``name_runner``), then its method's identity appended (``record_method``). What a later worker
reads of it, whole, empty, half written, or with its second line cut short."""

from __future__ import annotations

from pathlib import Path

from dshpc_jupyter.schedulers.job_files import RUNNER_FILE, name_runner, read_runner_info, record_method


def test_a_named_runner_is_read_back_and_the_runner_then_adds_its_method(tmp_path: Path) -> None:
    name_runner(tmp_path, "41:7")
    assert read_runner_info(tmp_path) == {"runner": "41:7", "method": None}
    inode = (tmp_path / RUNNER_FILE).stat().st_ino
    record_method(tmp_path, "42:8")
    assert read_runner_info(tmp_path) == {"runner": "41:7", "method": "42:8"}
    assert (tmp_path / RUNNER_FILE).stat().st_ino == inode, "appended to, not replaced (no inode freed per job)"


def test_naming_again_replaces_what_an_earlier_hand_left(tmp_path: Path) -> None:
    name_runner(tmp_path, "1:1")  # a claim given back after a runner that started it, say
    record_method(tmp_path, "2:2")
    name_runner(str(tmp_path), "3:3")
    assert read_runner_info(tmp_path) == {"runner": "3:3", "method": None}


def test_an_empty_or_half_written_name_reads_as_no_runner(tmp_path: Path) -> None:
    (tmp_path / RUNNER_FILE).write_bytes(b"")
    assert read_runner_info(tmp_path) is None, "the task was not sent yet: the job is queued again"
    (tmp_path / RUNNER_FILE).write_bytes(b'{"runner": "41')
    assert read_runner_info(tmp_path) is None


def test_a_method_line_cut_short_reads_as_not_started_yet(tmp_path: Path) -> None:
    name_runner(tmp_path, "41:7")
    with open(tmp_path / RUNNER_FILE, "ab") as stream:
        stream.write(b'{"method": "42')
    assert read_runner_info(tmp_path) == {"runner": "41:7", "method": None}


def test_a_method_without_a_named_runner_names_no_runner(tmp_path: Path) -> None:
    record_method(tmp_path, "42:8")
    assert read_runner_info(tmp_path) is None
