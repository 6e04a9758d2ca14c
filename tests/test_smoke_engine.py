from support import wait_for_jobs

from dshpc_jupyter.engine import Engine


def test_example_batch_runs_and_is_cached_the_second_time(engine: Engine, example_hashes: dict[str, str]) -> None:
    configs = [
        {
            "file_hash": example_hashes["poem.txt"],
            "method_name": "Example Python Method",
            "parameters": {"uppercase": True},
        },
        {"file_hash": example_hashes["hello.txt"], "method_name": "Word Count (bash)"},
    ]
    first = engine.simulate_jobs(configs)
    assert [r.outcome for r in first.results] == ["new", "new"]
    records = wait_for_jobs(engine, [r.job_id for r in first.results if r.job_id])
    assert [r.status for r in records] == ["CD", "CD"]
    second = engine.simulate_jobs(configs)
    assert [r.outcome for r in second.results] == ["cached", "cached"]
    assert second.results[1].output is not None and '"count": 13' in second.results[1].output
