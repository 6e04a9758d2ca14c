"""Logs (issue 12, point 4): a running job's stdout and stderr read by offset and followed while it prints, on
both backends; the full logs after it ended (from the record when the workspace is gone); clear errors for a bad
stream, offset or job; and the table row of a failed Python method showing its exception line."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from http_support import BACKENDS, connection_of
from support import write_method

from dshpc_jupyter import cli
from dshpc_jupyter.backends.embedded import EmbeddedBackend
from dshpc_jupyter.domain.errors import InvalidInputError, NotFoundError
from dshpc_jupyter.domain.failures import failure_line
from dshpc_jupyter.front.batch import Batch
from dshpc_jupyter.front.connection import Connection
from dshpc_jupyter.jupyter.batch_render import table_html, table_text
from dshpc_jupyter.service.factory import open_engine
from dshpc_jupyter.service.logs import whole_characters

TICKS = 8
TICK_S = 0.5
PRINTER = f"""
import sys, time
for i in range({TICKS}):
    print(f"tick {{i}} é", flush=True)
    print(f"warn {{i}}", file=sys.stderr, flush=True)
    time.sleep({TICK_S})
"""
FAILING = """
def parse(text):
    raise ValueError(f"cannot parse {text!r}")

print("starting")
parse("x,y")
"""


@pytest.fixture(params=BACKENDS)
def conn(request: pytest.FixtureRequest, home: Path, tmp_path: Path) -> Iterator[Connection]:
    with ExitStack() as stack:
        connection = connection_of(request.param, home, stack)
        connection.register_method(write_method(tmp_path / "methods", "Printer", PRINTER))
        connection.register_method(write_method(tmp_path / "methods", "Failing", FAILING))
        yield connection


def submit(conn: Connection, method: str) -> str:
    job_id = conn.simulate_jobs([{"method_name": method}]).results[0].job_id
    assert job_id
    return job_id


def test_a_log_is_followed_while_the_job_prints(conn: Connection) -> None:
    job_id = submit(conn, "Printer")
    arrivals: list[tuple[float, str, str]] = []
    for piece in conn.logs(job_id, poll=0.1):
        arrivals.append((time.monotonic(), piece, conn.get_job(job_id).status))
    text = "".join(piece for _, piece, _ in arrivals)
    assert text == "".join(f"tick {i} é\n" for i in range(TICKS))
    running = [piece for _, piece, status in arrivals if status in ("R", "CF", "PD")]
    assert len(running) >= 3, "the pieces came while the job ran, not all at its end"
    assert arrivals[-1][0] - arrivals[0][0] >= (TICKS - 3) * TICK_S
    assert conn.get_job(job_id).status == "CD"
    stderr = "".join(conn.logs(job_id, stream="stderr", follow=False))
    assert stderr == "".join(f"warn {i}\n" for i in range(TICKS))


def test_reads_by_offset_and_the_end_is_complete(conn: Connection) -> None:
    job_id = submit(conn, "Printer")
    first = conn.read_log(job_id)
    assert not first.complete and first.next_offset == len(first.data.encode())
    assert "".join(conn.logs(job_id)).startswith(first.data)  # follows to the end
    whole = conn.read_log(job_id)
    assert whole.complete and whole.data.count("tick") == TICKS
    tail = conn.read_log(job_id, "stdout", whole.next_offset - len("é\n".encode()))
    assert tail.data == "é\n" and tail.complete
    assert conn.read_log(job_id, "stdout", whole.next_offset).data == ""


def test_bad_requests_name_the_field(conn: Connection) -> None:
    job_id = submit(conn, "Printer")
    "".join(conn.logs(job_id))
    with pytest.raises(InvalidInputError, match="stream: must be 'stdout' or 'stderr'"):
        conn.read_log(job_id, "stdlog")
    with pytest.raises(InvalidInputError, match="offset: must not be negative"):
        conn.read_log(job_id, "stdout", -1)
    with pytest.raises(InvalidInputError, match="offset: 99999 is past the end"):
        conn.read_log(job_id, "stdout", 99_999)
    with pytest.raises(NotFoundError, match="nope"):
        conn.read_log("nope")
    with pytest.raises(InvalidInputError, match="poll: must be positive"):
        list(conn.logs(job_id, poll=0))


def test_the_exception_line_of_a_failure_in_the_table(conn: Connection) -> None:
    batch = Batch.submit([{"method_name": "Failing"}], connection=conn).wait(timeout=60)
    assert batch.df.loc[0, "status"] == "F"
    assert batch.logs(0) == "starting\n"
    error = batch.logs(0, stream="stderr")
    assert error.startswith("Traceback (most recent call last):")
    exception = "ValueError: cannot parse 'x,y'"
    assert error.rstrip().endswith(exception)
    assert f">{exception}</td>" in table_html(batch.rows()).replace("&#x27;", "'")
    assert table_text(batch.rows()).splitlines()[1].endswith(exception)
    with pytest.raises(InvalidInputError, match="row: 3 is not a row"):
        batch.logs(3)


def test_logs_after_the_workspace_is_gone_come_from_the_record(home: Path, tmp_path: Path) -> None:
    engine = open_engine(home)
    conn = Connection(EmbeddedBackend(engine))
    try:
        conn.register_method(write_method(tmp_path / "methods", "Failing", FAILING))
        job_id = submit(conn, "Failing")
        "".join(conn.logs(job_id))
        shutil.rmtree(engine.home.workspace(job_id))
        assert "".join(conn.logs(job_id, follow=False)) == "starting\n"
        assert "".join(conn.logs(job_id, stream="stderr")).rstrip().endswith("ValueError: cannot parse 'x,y'")
    finally:
        conn.close()


def test_the_cli_prints_a_jobs_logs(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--home", str(home)]
    assert cli.main([*base, "methods", "register", str(write_method(tmp_path / "m", "Failing", FAILING))]) == 0
    with Connection(EmbeddedBackend(open_engine(home))) as conn:
        job_id = submit(conn, "Failing")
    capsys.readouterr()
    assert cli.main([*base, "jobs", "logs", job_id, "--follow"]) == 0
    assert capsys.readouterr().out == "starting\n"
    assert cli.main([*base, "jobs", "logs", job_id, "--stderr"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("ValueError: cannot parse 'x,y'")
    assert cli.main([*base, "jobs", "logs", "missing"]) == 2
    assert "Job 'missing' not found" in capsys.readouterr().out


def test_failure_line_picks_what_went_wrong() -> None:
    traceback = "Traceback (most recent call last):\n  File \"x.py\", line 2, in <module>\n    f()\nKeyError: 'k'\n"
    assert failure_line(traceback) == "KeyError: 'k'"
    during = "\nDuring handling of the above exception, another exception occurred:\n\n"
    chained = traceback + during + traceback.replace("KeyError: 'k'", "RuntimeError: again")
    assert failure_line(chained) == "RuntimeError: again"
    assert failure_line("time limit of 2 s reached: process group stopped\npartial output", "TO") == (
        "time limit of 2 s reached: process group stopped"
    )
    assert failure_line("Error in f(): bad value\nExecution halted\n") == "Error in f(): bad value"
    assert failure_line("[... stderr cut to its last 65536 bytes]\nboom") == "boom"
    assert failure_line(None) == failure_line("\n \n") == ""


def test_a_character_cut_at_the_end_waits_for_the_next_read() -> None:
    text = "aé€😀".encode()
    assert whole_characters(text) == text
    for cut in range(1, len(text)):
        kept = whole_characters(text[:cut])
        assert text.startswith(kept) and len(text[:cut]) - len(kept) < 4
        kept.decode("utf-8")  # never a partial character
