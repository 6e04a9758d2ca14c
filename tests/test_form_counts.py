"""The form tells a person what they are about to do and what they did (issue 13 point 9), without a browser: the
Add button counts the configs before it is clicked, a range sweeps three values as soon as it is chosen, the
pending list says its configs were submitted (until they change), and the upload button counts its files."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from test_backends_shared import open_connection

from dshpc_jupyter import JobForm
from dshpc_jupyter.domain.models import MethodParameter
from dshpc_jupyter.jupyter.form_values import parse_range, range_defaults


@pytest.fixture
def form(home: Path) -> Iterator[JobForm]:
    with ExitStack() as stack:
        form = JobForm(open_connection("embedded", home, stack), poll=0.1)
        stack.callback(form.close)
        yield form


def pick(form: JobForm, *names: str) -> None:
    by_name = {f.filename: f.file_hash for f in form.connection.list_files()}
    form.files.choose(by_name[n] for n in names)


def test_the_add_button_counts_the_configs_before_it_is_clicked(form: JobForm) -> None:
    assert form.add_button.description == "Add"  # no method yet
    form.method.value = "Threshold Filter"
    assert form.add_button.description == "Add", "no file chosen: not yet known"
    pick(form, "readings_a.csv")
    assert form.add_button.description == "Add (1 config)"
    pick(form, "readings_a.csv", "readings_b.csv")
    assert form.add_button.description == "Add (2 configs)"
    threshold = form.parameter("threshold")
    threshold.mode.value = "list"
    threshold.values_text.value = "0.2, 0.5, 0.8"
    assert form.add_button.description == "Add (6 configs)"
    threshold.values_text.value = "0.2, x"
    assert form.add_button.description == "Add" and threshold.error_text == "", "unreadable: unsaid, not an error"
    threshold.values_text.value = "0.2, 0.5"
    assert form.add_button.description == "Add (4 configs)"
    assert len(form.add()) == 4 and len(form.pending) == 4  # what it said is what it adds


def test_a_range_sweeps_three_values_by_default(form: JobForm) -> None:
    form.method.value = "Threshold Filter"
    pick(form, "readings_a.csv")
    threshold = form.parameter("threshold")
    threshold.mode.value = "range"
    values = threshold.read()
    assert len(values) == 3 and values[0] == threshold.param.default and values == sorted(set(values))
    assert form.add_button.description == "Add (3 configs)"
    integer = MethodParameter(name="n", type="integer", default=4)
    assert range_defaults(integer) == (4, 6, 1) and parse_range(integer, *range_defaults(integer)) == [4, 5, 6]
    for default, expected in ((0.5, [0.5, 0.6, 0.7]), (2.0, [2.0, 3.0, 4.0]), (None, [0.0, 0.1, 0.2])):
        number = MethodParameter(name="x", type="number", default=default)
        assert parse_range(number, *range_defaults(number)) == expected, default


def test_the_pending_list_says_it_was_submitted_until_it_changes(form: JobForm) -> None:
    form.method.value = "Word Count (bash)"
    pick(form, "poem.txt", "hello.txt")
    form.add()
    assert "dshpc-form-submitted" not in form.pending_summary.value
    batch = form.submit()
    assert batch is not None
    assert f"these 2 config(s) were sent as batch {batch.batch_id}" in form.pending_summary.value
    form.wait(60)
    assert "were sent as batch" in form.pending_summary.value and "2 cached" in form.pending_summary.value
    form.reload()
    assert "were sent as batch" in form.pending_summary.value, "asking the service again changes no config"
    pick(form, "readings_a.csv")
    form.add()
    assert "dshpc-form-submitted" not in form.pending_summary.value, "3 pending now: one was never sent"
    form.submit()
    form.clear()
    assert "dshpc-form-submitted" not in form.pending_summary.value and form.pending == []


def test_the_upload_button_counts_the_files_sent_with_it(form: JobForm) -> None:
    when = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    for count, name in enumerate(("one.txt", "two.txt"), start=1):
        entry = {"name": name, "type": "text/plain", "size": 3, "content": memoryview(b"abc"), "last_modified": when}
        form.files.upload.value = (entry,)
        assert len(form.files.upload.value) == count and form.files.uploaded == ["one.txt", "two.txt"][:count]
        assert all(bytes(entry["content"]) == b"" for entry in form.files.upload.value), "no bytes kept"
    assert f"{form.files.upload.description} ({len(form.files.upload.value)})" == "Upload (2)"  # the button's label
