"""Several users against a real server on 127.0.0.1: the shared cache without shared records, scopes,
cancels of one's own, the single key as an admin, credentials, quotas per call, uploads and the audit trail."""

from __future__ import annotations

import base64
import hashlib
import itertools
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from support import wait_until
from team_support import SERVER_KEY, TeamServer, team_server

import dshpc_jupyter
from dshpc_jupyter.domain.errors import AuthenticationError
from dshpc_jupyter.service.users import Quotas

WORKLOAD = "Simulated Workload"


@pytest.fixture
def server(tmp_path: Any) -> Iterator[TeamServer]:
    with team_server(tmp_path / "home", quotas={"alice": Quotas(max_configs=3)}) as running:
        yield running


def submit(client: httpx.Client, configs: list[dict[str, Any]], **params: Any) -> dict[str, Any]:
    answer = client.post("/simulate-jobs", json={"jobs": configs}, params=params)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def wait_done(client: httpx.Client, job_id: str) -> dict[str, Any]:
    def ended() -> bool:
        return client.get(f"/job/{job_id}").json()["status"] not in ("PD", "R", "CG", "CF")

    wait_until(ended, 60, f"job {job_id} to end")
    job: dict[str, Any] = client.get(f"/job/{job_id}").json()
    return job


def audit(server: TeamServer, action: str) -> list[dict[str, Any]]:
    with server.client("root") as root:
        answer = root.get("/audit", params={"action": action})
    assert answer.status_code == 200, answer.text
    entries: list[dict[str, Any]] = answer.json()
    return entries


def test_a_job_one_user_ran_is_served_to_another_without_exposing_their_batch(server: TeamServer) -> None:
    config = {"file_hash": server.hashes["poem.txt"], "method_name": "Word Count (bash)"}
    with server.client("alice") as alice, server.client("bob") as bob, server.client("root") as root:
        first = submit(alice, [config])
        job_id = first["results"][0]["job_id"]
        assert wait_done(alice, job_id)["status"] == "CD"
        second = submit(bob, [config])
        assert (second["results"][0]["outcome"], second["results"][0]["job_id"]) == ("cached", job_id)
        assert second["results"][0]["output"], "bob gets alice's output: the cache is shared"

        assert bob.get(f"/batches/{first['batch_id']}").status_code == 404, "alice's batch is not bob's to see"
        assert bob.get(f"/batches/{first['batch_id']}").json()["detail"] == f"Batch '{first['batch_id']}' not found"
        assert alice.get(f"/batches/{first['batch_id']}").status_code == 200
        assert root.get(f"/batches/{first['batch_id']}").status_code == 200, "admins see every batch"
        assert bob.post("/simulate-jobs", json={"jobs": [config]}, params={"batch_id": first["batch_id"]}
                        ).status_code == 404, "nor can bob add to it"  # fmt: skip

        assert [b["batch_id"] for b in bob.get("/batches").json()] == [second["batch_id"]]
        assert [b["batch_id"] for b in alice.get("/batches").json()] == [first["batch_id"]]
        everyone = {b["batch_id"] for b in root.get("/batches", params={"scope": "all"}).json()}
        assert everyone == {first["batch_id"], second["batch_id"]}
        assert root.get("/batches").json() == [], "an admin's own list is their own too"
        refused = alice.get("/batches", params={"scope": "all"})
        assert refused.status_code == 403 and refused.json()["detail"].startswith("scope: 'all' is for admins")
        bad = alice.get("/jobs", params={"scope": "everything"})
        assert bad.status_code == 422 and bad.json()["detail"].startswith("scope: 'everything' is not one of")

        assert [j["job_id"] for j in alice.get("/jobs").json()] == [job_id], "the job is alice's"
        assert bob.get("/jobs").json() == [], "a cached answer makes no job of bob's"
        assert job_id in {j["job_id"] for j in root.get("/jobs", params={"scope": "all"}).json()}


def test_users_cancel_their_own_jobs_admins_anyones_and_each_cancel_is_audited(server: TeamServer) -> None:
    slow = {"file_hash": server.hashes["hello.txt"], "method_name": WORKLOAD, "parameters": {"seconds": 60}}
    slower = {**slow, "parameters": {"seconds": 61}}
    with server.client("alice") as alice, server.client("bob") as bob, server.client("root") as root:
        mine = submit(alice, [slow])
        job_id = mine["results"][0]["job_id"]
        joined = submit(bob, [slow, slower])
        assert joined["results"][0]["job_id"] == job_id and joined["results"][0]["outcome"] == "in_progress"
        bobs_job = joined["results"][1]["job_id"]

        refused = bob.post("/jobs/cancel", json={"job_ids": [job_id]})
        assert refused.status_code == 403
        assert refused.json()["detail"].startswith(f"job_ids: 1 of these jobs are not yours ({job_id})")
        cancelled = bob.post(f"/batches/{joined['batch_id']}/cancel").json()
        assert cancelled["cancelled"] == [bobs_job], "bob's batch cancel leaves alice's job running"
        assert alice.get(f"/job/{job_id}").json()["status"] in ("PD", "R")
        assert bob.post(f"/batches/{mine['batch_id']}/cancel").status_code == 404

        assert root.post("/jobs/cancel", json={"job_ids": [job_id]}).json()["cancelled"] == [job_id]

    by_bob = audit(server, "batch.cancel")
    assert [(e["actor"], e["target"], e["detail"]) for e in by_bob] == [
        ("bob", joined["batch_id"], {"cancelled": [bobs_job]})
    ]
    (by_root,) = audit(server, "jobs.cancel")
    assert (by_root["actor"], by_root["detail"]) == ("root", {"cancelled": [job_id]})
    assert time.time() - 120 < by_root["at"] <= time.time()


def test_users_forget_their_own_jobs_and_each_forget_is_audited(server: TeamServer) -> None:
    config = {"file_hash": server.hashes["poem.txt"], "method_name": "Word Count (bash)"}
    with server.client("alice") as alice, server.client("bob") as bob:
        job_id = submit(alice, [config])["results"][0]["job_id"]
        wait_done(alice, job_id)
        refused = bob.post("/jobs/forget", json={"job_ids": [job_id]})
        assert refused.status_code == 403 and "not yours" in refused.json()["detail"]
        assert alice.get(f"/job/{job_id}").status_code == 200, "a refused forget forgets nothing"
        assert alice.post("/jobs/forget", json={"job_ids": [job_id]}).json()["forgotten"] == [job_id]
        assert alice.get(f"/job/{job_id}").status_code == 404
    (entry,) = audit(server, "jobs.forget")
    assert (entry["actor"], entry["detail"]) == ("alice", {"forgotten": [job_id]})


def test_only_admins_register_methods_and_registrations_are_audited(server: TeamServer, tmp_path: Any) -> None:
    from dshpc_jupyter.domain.archive import pack_directory
    from dshpc_jupyter.examples import methods_dir

    archive = base64.b64encode(pack_directory(methods_dir(), [methods_dir() / "example_python"])).decode()
    with server.client("alice") as alice, server.client("key") as key:
        refused = alice.post("/methods", json={"archive": archive})
        assert refused.status_code == 403
        assert refused.json()["detail"] == "POST /methods: for admins only; you are 'alice', a user"
        assert key.post("/methods", json={"archive": archive}).status_code == 200
    (entry,) = audit(server, "method.register")
    assert (entry["actor"], entry["target"]) == ("(api-key)", "Example Python Method")


def test_credentials_bearer_or_key_once_revoked_and_rotated(server: TeamServer) -> None:
    token = server.tokens["alice"]
    for headers in ({"X-API-Key": token}, {"Authorization": f"Bearer {token}"}, {"Authorization": f"bearer {token}"}):
        answer = httpx.get(f"{server.url}/whoami", headers=headers, timeout=30)
        assert answer.json() == {"name": "alice", "role": "user", "auth_required": True, "max_running": None,
                                 "max_configs": 3}  # fmt: skip
    both = httpx.get(f"{server.url}/whoami", headers={"X-API-Key": token, "Authorization": f"Bearer {token}"})
    assert both.status_code == 400 and "more than once" in both.json()["detail"]
    basic = httpx.get(f"{server.url}/whoami", headers={"Authorization": "Basic eDp5"})
    assert basic.status_code == 401 and basic.json()["detail"] == "Authorization header: expected 'Bearer <token>'"
    wrong = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert httpx.get(f"{server.url}/whoami", headers={"X-API-Key": wrong}).status_code == 401
    assert httpx.get(f"{server.url}/whoami", headers={"X-API-Key": SERVER_KEY}).json()["name"] == "(api-key)"

    with dshpc_jupyter.connect(server.url, token=token) as connection:
        assert (connection.whoami().name, connection.whoami().role) == ("alice", "user")

    from dshpc_jupyter.service.factory import open_engine
    from dshpc_jupyter.service.users import Team

    engine = open_engine(server.home)  # what `dshpc-jupyter --home H users ...` does, beside the running server
    try:
        team = Team(engine.store)
        new = team.rotate("alice", actor="test")
        team.revoke("bob", actor="test")
    finally:
        engine.close()
    assert httpx.get(f"{server.url}/whoami", headers={"X-API-Key": token}).status_code == 401, "the old token"
    assert httpx.get(f"{server.url}/whoami", headers={"X-API-Key": new}).json()["name"] == "alice"
    with (
        dshpc_jupyter.connect(server.url, token=server.tokens["bob"]) as connection,
        pytest.raises(AuthenticationError, match="Invalid API key or token"),
    ):
        connection.whoami()


def test_the_configs_per_call_quota_names_the_user_and_the_limit(server: TeamServer) -> None:
    config = {"file_hash": server.hashes["poem.txt"], "method_name": "Word Count (bash)"}
    with server.client("alice") as alice, server.client("bob") as bob:
        over = alice.post("/simulate-jobs", json={"jobs": [config] * 4})
        assert over.status_code == 413
        assert over.json()["detail"].startswith("jobs: 4 configs is over your quota of 3 per call (max_configs")
        assert alice.get("/batches").json() == [], "a refused call records nothing"
        assert submit(bob, [config] * 4)["total_jobs"] == 4, "bob has the default: no limit"


def test_uploads_are_shared_by_hash_and_each_uploader_is_recorded(server: TeamServer) -> None:
    content = b"shared bytes\n"
    body = {"file_hash": hashlib.sha256(content).hexdigest(), "content": base64.b64encode(content).decode(),
            "filename": "shared.txt"}  # fmt: skip
    with server.client("alice") as alice, server.client("bob") as bob:
        assert alice.post("/files/upload", json=body).status_code == 201
        assert bob.post("/files/upload", json=body).status_code == 409, "the content is there already"
        assert bob.get(f"/files/{body['file_hash']}").status_code == 200
    from dshpc_jupyter.service.factory import open_engine
    from dshpc_jupyter.store.team import TeamStore

    engine = open_engine(server.home)
    try:
        assert TeamStore(engine.store).uploaders(body["file_hash"]) == ["alice", "bob"]
    finally:
        engine.close()


def test_usage_shows_users_their_own_line_and_admins_everyone(server: TeamServer) -> None:
    config = {"file_hash": server.hashes["poem.txt"], "method_name": "Word Count (bash)"}
    with server.client("alice") as alice, server.client("bob") as bob, server.client("root") as root:
        job_id = submit(alice, [config])["results"][0]["job_id"]
        wait_done(alice, job_id)
        assert alice.get("/users/usage").json() == {"alice": {"running": 0, "pending": 0, "total": 1}}
        assert bob.get("/users/usage").json() == {"bob": {"running": 0, "pending": 0, "total": 0}}
        assert root.get("/users/usage").json() == {"alice": {"running": 0, "pending": 0, "total": 1}}
        users = root.get("/users").json()
        assert [(u["name"], u["role"], u["active"]) for u in users] == [
            ("alice", "user", True), ("bob", "user", True), ("root", "admin", True)
        ]  # fmt: skip
        assert all("token" not in str(sorted(u)) for u in users)
        assert bob.get("/users").status_code == 403
        assert bob.get("/audit").status_code == 403


def test_over_the_quota_new_jobs_wait_and_are_released_in_order(tmp_path: Any) -> None:
    with team_server(tmp_path / "home", slots=4, quotas={"alice": Quotas(max_running=1)}) as server:
        hello = server.hashes["hello.txt"]
        configs = [{"file_hash": hello, "method_name": WORKLOAD, "parameters": {"seconds": 0.5 + i / 100}}
                   for i in range(3)]  # fmt: skip
        with server.client("alice") as alice, server.client("bob") as bob, server.client("root") as root:
            answer = submit(alice, configs)
            assert answer["quota_waiting"] == 2 and answer["successful_submissions"] == 3
            ids = [r["job_id"] for r in answer["results"]]
            waiting = [alice.get(f"/job/{job_id}").json() for job_id in ids[1:]]
            assert [(j["status"], j["scheduler"]) for j in waiting] == [("PD", "quota")] * 2
            usage = alice.get("/users/usage").json()["alice"]
            assert usage["pending"] >= 2 and usage["running"] + usage["pending"] == 3

            joined = submit(bob, [configs[2], {**configs[0], "parameters": {"seconds": 0.2}}])
            assert joined["results"][0]["job_id"] == ids[2], "a waiting job is found by its key"
            assert joined["quota_waiting"] == 0, "bob has no quota: his new job goes to the scheduler"
            assert wait_done(bob, joined["results"][1]["job_id"])["status"] == "CD"

            jobs = [wait_done(alice, job_id) for job_id in ids]
            assert [j["status"] for j in jobs] == ["CD"] * 3
            for earlier, later in itertools.pairwise(jobs):
                assert later["started_at"] >= earlier["finished_at"], "one at a time, in order"
            assert root.get("/users/usage").json()["alice"] == {"running": 0, "pending": 0, "total": 3}

            held = submit(alice, [{**configs[0], "parameters": {"seconds": 30}}, {**configs[0], "parameters":
                                                                                  {"seconds": 31}}])  # fmt: skip
            assert held["quota_waiting"] == 1
            last = held["results"][1]["job_id"]
            assert alice.post("/jobs/cancel", json={"job_ids": [last]}).json()["cancelled"] == [last]
            assert alice.get(f"/job/{last}").json()["status"] == "CA", "a waiting job is cancelled like any pending"
            root.post(f"/batches/{held['batch_id']}/cancel")
