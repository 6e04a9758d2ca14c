"""Exactly once across processes and threads: identical submissions arriving together make one job each."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from support import file_hashes, wait_until

from dshpc_jupyter.domain.models import MultiJobSimulationResponse
from dshpc_jupyter.service.engine import Engine

CHILD = str(Path(__file__).with_name("child_programs.py"))
PROCESSES = 8


def sweep(engine: Engine, size: int) -> list[dict[str, Any]]:
    """``size`` distinct configs of the workload method over the example files."""
    files = sorted(file_hashes(engine).values())
    return [
        {"file_hash": files[i % len(files)], "method_name": "Simulated Workload", "parameters": {"seconds": i / 1000}}
        for i in range(size)
    ]


def job_count(engine: Engine) -> int:
    return len(engine.list_jobs(limit=1_000_000))


def test_eight_processes_submitting_one_batch_make_each_job_once(queued_engine: Engine, tmp_path: Path) -> None:
    configs = sweep(queued_engine, 200)
    (tmp_path / "configs.json").write_text(json.dumps(configs))
    ready, go = tmp_path / "ready", tmp_path / "go"
    ready.mkdir()
    before, batches_before = job_count(queued_engine), len(queued_engine.batches())
    home = str(queued_engine.home.root)
    children = [
        subprocess.Popen(
            [sys.executable, CHILD, "together", home, str(tmp_path / "configs.json"), str(ready), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    try:
        wait_until(lambda: len(list(ready.iterdir())) == PROCESSES, 60, "every process to be ready")
        go.touch()
        outputs = [child.communicate(timeout=120) for child in children]
    finally:
        for child in children:
            child.kill()
            child.wait()
    assert [child.returncode for child in children] == [0] * PROCESSES, [err for _, err in outputs]
    responses = [MultiJobSimulationResponse.model_validate_json(out) for out, _ in outputs]

    assert job_count(queued_engine) == before + 200, "exactly one job per config"
    for response in responses:
        assert response.total_jobs == 200
        assert response.completed_jobs + response.in_progress_jobs + response.failed_submissions == 200
        assert (response.in_progress_jobs, response.failed_submissions, response.completed_jobs) == (200, 0, 0)
        assert response.successful_submissions == sum(r.outcome == "new" for r in response.results)
        assert {r.message for r in response.results} <= {"New job submitted", "Job in progress"}
        assert [r.parameters for r in response.results] == [c["parameters"] for c in configs], "request order"
    assert sum(r.successful_submissions for r in responses) == 200
    ids = [[r.job_id for r in response.results] for response in responses]
    assert all(row == ids[0] for row in ids), "every process got the same job for each config"
    assert len(set(ids[0])) == 200
    for index in range(200):
        assert sum(response.results[index].outcome == "new" for response in responses) == 1
    assert len(queued_engine.batches()) == batches_before + PROCESSES


def test_threads_sharing_one_engine_make_each_job_once(queued_engine: Engine) -> None:
    configs = sweep(queued_engine, 60)
    before = job_count(queued_engine)
    barrier = threading.Barrier(4)
    responses: list[MultiJobSimulationResponse] = []
    errors: list[BaseException] = []

    def submit() -> None:
        try:
            barrier.wait(timeout=30)
            responses.append(queued_engine.simulate_jobs(configs))
        except BaseException as exc:  # reported below: a thread's exception would otherwise vanish
            errors.append(exc)

    threads = [threading.Thread(target=submit) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == [] and len(responses) == 4
    assert job_count(queued_engine) == before + 60
    assert sum(r.successful_submissions for r in responses) == 60
    assert all(r.in_progress_jobs == 60 for r in responses)
