"""Pipelines and owners on a real server for a team on 127.0.0.1: a pipeline and the jobs of its steps (released
later, on the server's own thread) are its submitter's; another user neither sees nor cancels it (404, as for
no pipeline), an admin does both; and the tables name who submitted each job and batch."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import wait_until
from team_support import TeamServer, team_server

import dshpc_jupyter
from dshpc_jupyter import cli
from dshpc_jupyter.examples import data_files, methods_dir
from dshpc_jupyter.front.batch_views import batches_frame
from dshpc_jupyter.service.factory import open_engine

WORDS = "Word Count (bash)"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[TeamServer]:
    with team_server(tmp_path / "home") as running:
        yield running


def two_steps(server: TeamServer) -> dict[str, Any]:
    """A step on a stored file, then one on its stdout: the second is released only once the first ended."""
    return {
        "first": {"method_name": WORDS, "file_hash": server.hashes["poem.txt"]},
        "second": {"method_name": WORDS, "file_hash": {"$ref": "first"}},
    }


def ok(answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_a_pipeline_and_its_later_jobs_are_its_submitters_and_hidden_from_others(server: TeamServer) -> None:
    with server.client("alice") as alice, server.client("bob") as bob, server.client("root") as root:
        submitted = ok(alice.post("/pipelines", json={"steps": two_steps(server)}))
        pipeline_id = submitted["pipeline_id"]
        assert submitted["owner"] == "alice"

        def released() -> bool:  # by the server's thread (nobody looks meanwhile) or alice's look
            return root.get(f"/pipelines/{pipeline_id}").json()["steps"]["second"]["job_id"] is not None

        wait_until(released, 60, "the second step to be released")
        detail = ok(alice.get(f"/pipelines/{pipeline_id}"))
        job_ids = [step["job_id"] for step in detail["steps"].values()]
        assert [ok(alice.get(f"/job/{job_id}"))["owner"] for job_id in job_ids] == ["alice", "alice"]

        for answer in (bob.get(f"/pipelines/{pipeline_id}"), bob.post(f"/pipelines/{pipeline_id}/cancel"),
                       bob.get(f"/pipeline/{pipeline_id}"), bob.delete(f"/pipeline/{pipeline_id}")):  # fmt: skip
            assert answer.status_code == 404, answer.text
            assert pipeline_id in answer.json()["detail"]
        none = bob.get("/pipelines/no-such-pipeline")
        assert none.status_code == 404, "another user's pipeline is answered as no pipeline at all"

        assert ok(root.get(f"/pipelines/{pipeline_id}"))["owner"] == "alice"
        ok(root.post(f"/pipelines/{pipeline_id}/cancel"))
        (entry,) = ok(root.get("/audit", params={"action": "pipeline.cancel"}))
        assert (entry["actor"], entry["target"]) == ("root", pipeline_id)
        assert ok(alice.get(f"/pipelines/{pipeline_id}"))["owner"] == "alice", "an admin's cancel keeps the owner"


def test_a_step_served_from_another_users_job_stays_that_users(server: TeamServer) -> None:
    config = {"method_name": WORDS, "file_hash": server.hashes["poem.txt"]}
    with server.client("alice") as alice, server.client("bob") as bob:
        job_id = ok(alice.post("/simulate-jobs", json={"jobs": [config]}))["results"][0]["job_id"]
        wait_until(lambda: alice.get(f"/job/{job_id}").json()["status"] == "CD", 60, "alice's job to complete")
        detail = ok(bob.post("/pipelines", json={"steps": {"only": config}}))
        assert detail["owner"] == "bob" and detail["steps"]["only"]["job_id"] == job_id
        assert ok(bob.get(f"/job/{job_id}"))["owner"] == "alice", "a cached answer does not change hands"


def test_listings_name_the_owner_on_a_team_server(
    server: TeamServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = {"method_name": WORDS, "file_hash": server.hashes["poem.txt"]}
    with server.client("alice") as alice, server.client("root") as root:
        batch_id = ok(alice.post("/simulate-jobs", json={"jobs": [config]}))["batch_id"]
        assert [b["owner"] for b in ok(alice.get("/batches"))] == ["alice"]
        assert {j["owner"] for j in ok(root.get("/jobs", params={"scope": "all"}))} == {"alice"}
        assert ok(alice.get(f"/batches/{batch_id}"))["owner"] == "alice"

    connection = dshpc_jupyter.connect(server.url, token=server.tokens["alice"])
    try:
        frame = batches_frame(connection.batches(10))
        assert list(frame["owner"]) == ["alice"] and list(frame.columns[:3]) == ["batch_id", "name", "owner"]
        assert connection.list_jobs()[0].owner == "alice"
    finally:
        connection.close()

    monkeypatch.setenv("ALICE_TOKEN", server.tokens["alice"])
    for listing in (["jobs", "list"], ["batches", "list"]):
        capsys.readouterr()
        assert cli.main(["--url", server.url, "--api-key-env", "ALICE_TOKEN", *listing]) == 0
        out = capsys.readouterr().out
        assert "owner" in out and "alice" in out, out


def test_the_embedded_engine_records_no_owner_and_shows_no_owner_column(home: Path) -> None:
    engine = open_engine(home)
    try:
        engine.register_method(methods_dir())
        poem = next(engine.upload_file(p) for p in data_files() if p.name == "poem.txt")
        config = {"method_name": WORDS, "file_hash": poem.file_hash}
        engine.simulate_jobs([config])
        detail = engine.pipelines.submit({"only": config})
        assert detail.owner is None
        assert [j.owner for j in engine.list_jobs()] == [None]
        assert "owner" not in batches_frame(engine.batches()).columns
    finally:
        engine.close()
