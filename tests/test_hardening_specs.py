"""Fault injection: malformed method specs through every way in (issue 14, item 6): ``POST /methods`` on a real
server, ``methods register`` and ``serve --methods`` as real commands. Each gets a 4xx or one line naming the
field, and nothing is registered."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from http_support import thread_server

from dshpc_jupyter.domain.archive import pack_directory

_BASE = '{"name": "Bad", "command": "python3", "script_path": "main.py"'
SPECS = {
    "deep": (_BASE + ', "extra": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply"),
    "huge-default": (
        _BASE + ', "parameters": [{"name": "n", "type": "integer", "default": ' + "7" * 5000 + "}]}",
        "parameters[0].default: an integer of 5000 digits is too long",
    ),
    "surrogate-name": (
        '{"name": "Bad\\ud800", "command": "python3", "script_path": "main.py"}',
        "name: text with a lone",
    ),
    "huge-time": (_BASE + ', "resources": {"time": "' + "9" * 5000 + '"}}', "resources.time:"),
    "huge-time-int": (_BASE + ', "resources": {"time": ' + "9" * 5000 + "}}", "resources.time: an integer of 5000"),
    "huge-mem": (_BASE + ', "resources": {"mem": "' + "9" * 400 + '"}}', "resources.mem:"),
}


def _method(tmp_path: Path, text: str) -> Path:
    directory = tmp_path / "bad"
    directory.mkdir()
    (directory / "method.json").write_text(text, encoding="utf-8")
    (directory / "main.py").write_text("print('{}')\n")
    return directory


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> object:
    with thread_server(tmp_path_factory.mktemp("specs") / "home") as url:
        yield url


@pytest.mark.parametrize("case", sorted(SPECS))
def test_post_methods_answers_422_naming_the_field(server: str, tmp_path: Path, case: str) -> None:
    text, expected = SPECS[case]
    archive = pack_directory(tmp_path, [_method(tmp_path, text)])
    answer = httpx.post(f"{server}/methods", json={"archive": base64.b64encode(archive).decode()}, timeout=30)
    assert answer.status_code == 422, answer.text
    assert expected in answer.json()["detail"]
    assert httpx.get(f"{server}/methods", timeout=10).json() == []


def _command(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dshpc_jupyter.cli", *args], capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.parametrize("case", sorted(SPECS))
def test_methods_register_prints_one_line(tmp_path: Path, home: Path, case: str) -> None:
    text, expected = SPECS[case]
    done = _command("--home", str(home), "methods", "register", str(_method(tmp_path, text)))
    assert done.returncode == 2, done.stderr
    assert done.stderr == ""
    assert len(done.stdout.strip().splitlines()) == 1 and expected in done.stdout
    listed = _command("--home", str(home), "methods", "list")
    assert "Bad" not in listed.stdout


def test_serve_with_a_malformed_method_stops_with_one_line(tmp_path: Path, home: Path) -> None:
    text, expected = SPECS["huge-default"]
    done = _command("serve", "--home", str(home), "--port", "0", "--methods", str(_method(tmp_path, text)))
    assert done.returncode == 2 and done.stderr == ""
    assert len(done.stdout.strip().splitlines()) == 1 and expected in done.stdout
    listed = _command("--home", str(home), "methods", "list")
    assert listed.returncode == 0 and "Bad" not in listed.stdout
