"""A user's quotas on a real server on 127.0.0.1 where the calls are not theirs: pipeline steps released later by
the server's own thread count against their owner's ``max_running`` (and wait over it, as a submitted job does),
and a client splits a call over its user's ``max_configs`` into calls under it, read from ``/services/status``."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from support import wait_until
from team_support import team_server

import dshpc_jupyter
from dshpc_jupyter.domain.errors import LimitExceededError
from dshpc_jupyter.server.app import DEFAULT_MAX_CONFIGS
from dshpc_jupyter.service.users import Quotas

WORDS = "Word Count (bash)"
WORKLOAD = "Simulated Workload"


def ok(answer: httpx.Response) -> Any:
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_a_step_released_later_counts_against_its_owners_running_quota(tmp_path: Any) -> None:
    with team_server(tmp_path / "home", slots=4, quotas={"alice": Quotas(max_running=2)}) as server:
        hello = server.hashes["hello.txt"]
        # The first step runs long enough that her batch below is in (one running, one held) before it ends.
        steps = {
            "first": {"method_name": WORKLOAD, "file_hash": hello, "parameters": {"seconds": 3}},
            "second": {"method_name": WORDS, "file_hash": {"$ref": "first"}},
        }
        slow = [{"file_hash": hello, "method_name": WORKLOAD, "parameters": {"seconds": 5 + i / 10}} for i in range(2)]
        with server.client("alice") as alice, server.client("root") as root:
            pipeline_id = ok(alice.post("/pipelines", json={"steps": steps}))["pipeline_id"]
            batch = ok(alice.post("/simulate-jobs", json={"jobs": slow}))  # her 2 in progress until they end
            slow_ids = [row["job_id"] for row in batch["results"]]

            def released() -> bool:  # by the server's thread, or the admin's look, acting for alice
                return ok(root.get(f"/pipelines/{pipeline_id}"))["steps"]["second"]["job_id"] is not None

            wait_until(released, 30, "the second step to be released")
            second = ok(root.get(f"/pipelines/{pipeline_id}"))["steps"]["second"]["job_id"]
            held = ok(alice.get(f"/job/{second}"))
            assert (held["status"], held["scheduler"], held["owner"]) == ("PD", "quota", "alice"), (
                "over alice's quota the released step waits, as a job she submits does"
            )
            usage = ok(root.get("/users/usage"))["alice"]
            assert usage["running"] <= 2 and usage["running"] + usage["pending"] == 3

            def ended(job_id: str) -> bool:
                return ok(alice.get(f"/job/{job_id}"))["status"] == "CD"

            wait_until(lambda: all(ended(j) for j in [*slow_ids, second]), 60, "alice's jobs to complete")
            jobs = {job_id: ok(alice.get(f"/job/{job_id}")) for job_id in [*slow_ids, second]}
            first_end = min(jobs[job_id]["finished_at"] for job_id in slow_ids)
            assert jobs[second]["started_at"] >= first_end, "the step started only once one of hers ended"
            assert ok(alice.get(f"/pipelines/{pipeline_id}"))["statistics"]["completed"] == 2


def test_the_client_splits_a_call_over_its_users_configs_quota(tmp_path: Any) -> None:
    with team_server(tmp_path / "home", quotas={"alice": Quotas(max_configs=3)}) as server:
        hello = server.hashes["hello.txt"]
        configs = [{"file_hash": hello, "method_name": WORKLOAD, "parameters": {"seconds": i / 100}} for i in range(8)]
        with server.client("alice") as alice, server.client("bob") as bob:
            assert ok(alice.get("/services/status"))["limits"]["max_configs"] == 3, "alice's quota, not the server's"
            assert ok(bob.get("/services/status"))["limits"]["max_configs"] == DEFAULT_MAX_CONFIGS
            refused = alice.post("/simulate-jobs", json={"jobs": configs})
            assert refused.status_code == 413 and "max_configs" in refused.json()["detail"]

        with dshpc_jupyter.connect(server.url, token=server.tokens["alice"]) as connection:
            answer = connection.simulate_jobs(configs)
            assert answer.total_jobs == 8 and [r.outcome for r in answer.results].count("invalid") == 0
            (batch,) = connection.batches(10)
            assert (batch.batch_id, batch.total_jobs, batch.owner) == (answer.batch_id, 8, "alice"), (
                "three calls under the quota, one batch"
            )
        with (  # a chunk size the client is given overrides the published one: the server still refuses
            dshpc_jupyter.connect(server.url, token=server.tokens["alice"], max_configs=4) as forced,
            pytest.raises(LimitExceededError, match="over your quota of 3 per call"),
        ):
            forced.simulate_jobs(configs)
