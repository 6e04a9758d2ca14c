"""Batch names (docs/design.md section 6.1) on both backends, over raw HTTP, in the CLI and in a kernel: a name is
recorded with its batch, listed, filtered on, reopened by (while unambiguous), and a bad one is refused naming
the field."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from http_support import thread_server
from kernels import dshpc_kernel
from test_backends_shared import BACKENDS, WORDS, open_connection

from dshpc_jupyter import cli
from dshpc_jupyter.backends.http import HttpBackend, HttpOptions
from dshpc_jupyter.domain.errors import InvalidInputError, NotFoundError
from dshpc_jupyter.examples import data_files, methods_dir
from dshpc_jupyter.front.batch import Batch, batches
from dshpc_jupyter.front.connection import Connection
from dshpc_jupyter.jupyter.display import static_bundle


@pytest.fixture(params=BACKENDS)
def conn(request: pytest.FixtureRequest, home: Path) -> Iterator[Connection]:
    with ExitStack() as stack:
        yield open_connection(request.param, home, stack)


def configs(conn: Connection, *names: str) -> list[dict[str, Any]]:
    hashes = {f.filename: f.file_hash for f in conn.list_files()}
    return [{"file_hash": hashes[name], "method_name": WORDS} for name in names]


def test_a_name_is_recorded_listed_filtered_and_reopened(conn: Connection) -> None:
    sent = conn.simulate_jobs(configs(conn, "poem.txt"), name="  poems  ")
    conn.simulate_jobs(configs(conn, "hello.txt"))
    listed = {b.batch_id: b.name for b in conn.batches()}
    assert listed[sent.batch_id or ""] == "poems" and sorted(listed.values(), key=str) == [None, "poems"]
    assert [b.batch_id for b in conn.batches(name="poems")] == [sent.batch_id]
    assert conn.batches(name="nothing") == []
    assert conn.batch(sent.batch_id or "").name == "poems"

    batch = Batch.load("poems", connection=conn)
    assert (batch.batch_id, batch.name) == (sent.batch_id, "poems")
    assert "dsHPC batch 'poems' (" in static_bundle(batch)["text/plain"]
    assert batches(connection=conn)["name"].tolist()[1] == "poems"  # newest first
    batch.stop()


def test_a_shared_name_is_ambiguous_and_an_unknown_one_not_found(conn: Connection) -> None:
    first = Batch.submit(configs(conn, "poem.txt"), connection=conn, name="again")
    second = Batch.submit(configs(conn, "hello.txt"), connection=conn, name="again")
    for batch in (first, second):
        batch.stop()
    with pytest.raises(InvalidInputError) as ambiguous:
        Batch.load("again", connection=conn)
    message = str(ambiguous.value)
    assert "2 batches are named 'again'" in message and "load one by its id" in message
    assert message.index(second.batch_id or "") < message.index(first.batch_id or ""), "newest first"
    assert Batch.load(first.batch_id or "", connection=conn).name == "again"
    with pytest.raises(NotFoundError, match="no batch has the id or the name 'missing'"):
        Batch.load("missing", connection=conn)


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "must not be empty"),
        ("x" * 101, "at most 100 characters"),
        ("two\nlines", "control characters"),
        ("0123456789abcdef0123456789abcdef", "looks like a batch id"),
    ],
)
def test_a_bad_name_is_refused_naming_the_field_and_nothing_is_recorded(
    conn: Connection, name: str, problem: str
) -> None:
    with pytest.raises(InvalidInputError, match=f"^name: .*{problem}"):
        conn.simulate_jobs(configs(conn, "poem.txt"), name=name)
    with pytest.raises(InvalidInputError, match=f"^name: .*{problem}"):
        Batch.submit(configs(conn, "poem.txt"), connection=conn, name=name, dry_run=True)
    assert conn.batches() == [] and conn.list_jobs() == []


def test_a_name_cannot_rename_a_batch_it_adds_to(conn: Connection) -> None:
    first = conn.simulate_jobs(configs(conn, "poem.txt"), name="one")
    with pytest.raises(InvalidInputError, match=r"^name: names a new batch"):
        conn.simulate_jobs(configs(conn, "hello.txt"), append_to=first.batch_id, name="two")
    assert conn.batch(first.batch_id or "").total_jobs == 1


def test_over_http_the_name_is_a_body_field_and_a_listing_filter(home: Path) -> None:
    with thread_server(home) as url, httpx.Client(base_url=url, timeout=30) as client:
        answer = client.post("/simulate-jobs", json={"jobs": [], "name": 7})
        assert answer.status_code == 422 and answer.json()["detail"].startswith("name: "), answer.text
        answer = client.post("/simulate-jobs", json={"jobs": [], "name": "\t"})
        assert answer.status_code == 422 and "name: must not be empty" in answer.json()["detail"]
        sent = client.post("/simulate-jobs", json={"jobs": [{"file_hash": "0" * 64, "method_name": WORDS}],
                                                   "name": "raw"})  # fmt: skip
        assert sent.status_code == 200, sent.text
        listed = client.get("/batches", params={"name": "raw"}).json()
        assert [(b["batch_id"], b["name"]) for b in listed] == [(sent.json()["batch_id"], "raw")]
        assert client.get(f"/batches/{sent.json()['batch_id']}").json()["name"] == "raw"
        assert client.get("/batches", params={"name": "other"}).json() == []


def test_a_chunked_http_call_records_one_named_batch(home: Path) -> None:
    with thread_server(home) as url:
        conn = Connection(HttpBackend(url, options=HttpOptions(max_configs=2)))
        try:
            conn.register_method(methods_dir())
            conn.upload_files(data_files())
            sent = conn.simulate_jobs(configs(conn, "poem.txt", "hello.txt", "poem.txt", "hello.txt", "poem.txt"),
                                      name="chunked")  # fmt: skip
            (named,) = conn.batches(name="chunked")
            assert (named.batch_id, named.total_jobs) == (sent.batch_id, 5)
            assert len(conn.batches()) == 1
        finally:
            conn.close()


def test_the_cli_submits_a_named_batch_and_shows_it_by_name(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli.console, "width", 200)

    def run(*args: str) -> tuple[int, str]:
        capsys.readouterr()
        code = cli.main(["--home", str(home), *args])
        return code, capsys.readouterr().out + capsys.readouterr().err

    assert run("methods", "register", str(methods_dir()))[0] == 0
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(f"method: {WORDS}\nfiles: [{data_files('poem.txt')[0]}]\n", "utf-8")
    code, out = run("submit", str(sweep), "--name", "from the cli", "--wait", "--timeout", "60")
    assert code == 0 and "named 'from the cli'" in out, out
    code, out = run("batches", "list")
    assert code == 0 and "from the cli" in out
    code, out = run("batches", "show", "from the cli")
    assert code == 0 and "Word Count (bash)" in out and "now:" in out
    code, out = run("submit", str(sweep), "--name", "")
    assert code != 0 and "name: must not be empty" in out, out


def test_the_magic_names_a_batch_and_the_listing_shows_it(home: Path, tmp_path: Path) -> None:
    with dshpc_kernel(tmp_path, home) as kernel:
        kernel.ok("import dshpc_jupyter\nfrom dshpc_jupyter import examples\n"
                  "dshpc_jupyter.current().register_method(examples.methods_dir())")  # fmt: skip
        body = f"method: {WORDS}\nfiles: [poem.txt]\n"
        result = kernel.ok(f"%%dshpc_batch --out b --wait --name 'my poems' --base {data_files('poem.txt')[0].parent}\n"
                           + body)  # fmt: skip
        assert "dsHPC batch 'my poems' (" in result.text
        assert kernel.value("b.name") == "my poems"
        kernel.ok("listed = %dshpc_batches")
        assert kernel.value("listed.name.tolist()") == ["my poems"]
        assert kernel.value("dshpc_jupyter.Batch.load('my poems').batch_id == b.batch_id") is True
        bad = kernel.run(f"%%dshpc_batch --name '{'x' * 101}'\n" + body)
        assert bad.status == "error" and "UsageError: name: must be at most 100 characters" in bad.stderr
