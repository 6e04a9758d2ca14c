"""The command line's ``submit --retry/--resubmit/--rerun`` and ``jobs forget`` (docs/design.md section 12)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from test_cli import run, write_request

from dshpc_jupyter.examples import data_files

__all__ = ["run"]  # the fixture, used by name


def _hello(run: Any) -> str:
    code, out = run("files", "upload", str(data_files("hello.txt")[0]))
    assert code == 0
    return str(out.split()[0])


def test_submit_options_and_jobs_forget(run: Any, tmp_path: Path) -> None:
    hello = _hello(run)
    failing = [{"method_name": "Simulated Workload", "file_hash": hello, "parameters": {"seconds": 0, "exit_code": 3}}]
    request = str(write_request(tmp_path / "failing.json", failing))
    assert run("submit", request, "--wait", "--timeout", "60")[0] == 0
    code, out = run("submit", request, "--resubmit", "never")
    assert code == 0 and "F failed" in out and "not resubmitted (resubmit=never)" in out
    code, out = run("submit", request, "--dry-run", "--resubmit", "retriable", "--retry", "2")
    assert code == 0 and "not resubmitted (resubmit=retriable)" in out, "F is not among the codes --retry retries"
    words = [{"method_name": "Word Count (bash)", "file_hash": hello}]
    cached = str(write_request(tmp_path / "words.json", words))
    assert run("submit", cached, "--wait", "--timeout", "60")[0] == 0
    code, out = run("submit", cached, "--dry-run", "--rerun")
    assert code == 0 and "would run again (force)" in out

    code, listing = run("jobs", "list")
    ids = [
        re.findall(r"\b[0-9a-f]{32}\b", line)[0]
        for line in listing.splitlines()
        if re.search(r"\b[0-9a-f]{32}\b", line)
    ]
    code, out = run("jobs", "forget", *ids)
    assert code == 0 and sorted(json.loads(out)["forgotten"]) == sorted(ids)
    code, out = run("jobs", "forget", ids[0])
    assert code == 1 and json.loads(out)["not_found"] == [ids[0]], "nothing left to forget: a non-zero exit"
    code, out = run("submit", cached, "--retry", "99")
    assert code == 2 and "retry: must be between 0 and 19 retries, got 99" in out
