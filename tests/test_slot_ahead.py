"""Tiny jobs handed to a slot runner ahead, before it asks (docs/design.md section 7.6), for real: such a job stays
``STARTING`` until its method starts, and whatever happens to it while it waits its turn in the runner (the
runner killed, the job cancelled, the worker killed) it runs exactly once or ends exactly once, never stuck."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import wait_for_jobs, wait_until, write_method

from dshpc_jupyter.domain import status as st
from dshpc_jupyter.domain.home import Home
from dshpc_jupyter.domain.retries import SubmitOptions
from dshpc_jupyter.schedulers.job_files import read_runner_info
from dshpc_jupyter.schedulers.local import worker_pid
from dshpc_jupyter.schedulers.slot_runner import AHEAD_ENV, ahead_seconds
from dshpc_jupyter.service.factory import open_engine

# A tiny method (bash builtins only: its jobs are handed ahead once one has run) that logs its tag, and holds
# when asked to.
LOGGED = r"""
read -r params < "$2"
[[ $params =~ \"tag\":\ \"([^\"]*)\" ]] && tag=${BASH_REMATCH[1]}
[[ $params =~ \"log\":\ \"([^\"]*)\" ]] && log=${BASH_REMATCH[1]}
echo "$tag" >> "$log"
if [[ $params == *'"hold": true'* ]]; then
  for _ in {1..3000}; do [[ -e $JOB_WORKSPACE/release ]] && break; sleep 0.02; done
fi
"""
PARAMETERS = [
    {"name": "tag", "type": "string", "required": True},
    {"name": "hold", "type": "boolean", "default": False},
    {"name": "log", "type": "string", "required": True},
]


class Lab:
    """One slot, the tiny method already run once (so the worker knows it is tiny), a log of the runs."""

    def __init__(self, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        # "tiny" up to 30 s for this worker: on a loaded machine a real 50 ms could be missed, and nothing handed
        monkeypatch.setenv(AHEAD_ENV, "30")
        self.engine = open_engine(home, slots=1)
        self.home = Home.open(home)
        method = write_method(
            tmp_path / "m", "Logged", LOGGED, parameters=PARAMETERS, command="bash", script_path="m.sh"
        )
        self.engine.register_method(method)
        self.file_hash = self.engine.upload_file(b"input\n").file_hash
        self.log = tmp_path / "runs.log"
        [warm] = wait_for_jobs(self.engine, self.submit(["warm"]))
        assert warm.status == st.COMPLETED, warm.error

    def submit(self, tags: list[str], hold: str | None = None) -> list[str]:
        """Jobs never retried (a lost one stays lost); ``hold``: the tag of the one that holds until released."""
        configs = [
            {"file_hash": self.file_hash, "method_name": "Logged",
             "parameters": {"tag": t, "hold": t == hold, "log": str(self.log)}}
            for t in tags
        ]  # fmt: skip
        return [r.job_id or "" for r in self.engine.simulate_jobs(configs, options=SubmitOptions.of(retry=0)).results]

    def runs(self) -> list[str]:
        return self.log.read_text().split() if self.log.exists() else []

    def handed_ahead(self, held: str, behind: list[str]) -> int:
        """Wait until ``held`` (tagged "held") runs and ``behind`` wait in its runner (named in their
        workspaces, still ``STARTING``); the runner's pid."""
        wait_until(lambda: self.runs()[-1:] == ["held"], 30, "the held method to start")
        runner = (read_runner_info(self.home.workspace(held)) or {})["runner"]
        wait_until(
            lambda: all(self.runner_of(job_id) == runner for job_id in behind), 30, "the jobs behind it to be handed"
        )
        assert {r.status for r in self.engine.job_statuses(behind)} == {st.STARTING}, "not started: not R"
        assert self.engine.job_statuses([held])[0].status == st.RUNNING
        return int(str(runner).partition(":")[0])

    def runner_of(self, job_id: str) -> str | None:
        return (read_runner_info(self.home.workspace(job_id)) or {}).get("runner")

    def release(self, job_id: str) -> None:
        (self.home.workspace(job_id) / "release").touch()


@pytest.fixture
def lab(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Lab]:
    made = Lab(home, tmp_path, monkeypatch)
    yield made
    made.engine.close()


def test_a_runner_killed_with_jobs_handed_ahead_loses_only_the_running_one(lab: Lab) -> None:
    held, *behind = lab.submit(["held", "b1", "b2"], hold="held")
    runner = lab.handed_ahead(held, behind)
    os.kill(runner, signal.SIGKILL)
    [lost] = wait_for_jobs(lab.engine, [held], timeout=30)
    after = wait_for_jobs(lab.engine, behind, timeout=60)
    assert lost.status == st.NODE_FAIL and "runner lost" in (lost.error or "")
    assert [r.status for r in after] == [st.COMPLETED, st.COMPLETED], "never started there: they ran later"
    assert sorted(lab.runs()) == ["b1", "b2", "held", "warm"], "nothing ran twice"
    assert all(lab.runner_of(job_id) != lab.runner_of(held) for job_id in behind), "on another runner"


def test_a_job_cancelled_while_handed_ahead_never_runs(lab: Lab) -> None:
    held, b1, b2 = lab.submit(["held", "b1", "b2"], hold="held")
    lab.handed_ahead(held, [b1, b2])
    assert lab.engine.cancel([b1]).cancelled == [b1]
    assert lab.engine.job_statuses([b1])[0].status == st.CANCELLED
    lab.release(held)
    records = wait_for_jobs(lab.engine, [held, b1, b2], timeout=60)
    assert [r.status for r in records] == [st.COMPLETED, st.CANCELLED, st.COMPLETED]
    assert records[1].started_at is None, "it never started"
    assert sorted(lab.runs()) == ["b2", "held", "warm"], "the cancelled job never ran"


def test_a_worker_killed_with_jobs_handed_ahead_loses_nothing(lab: Lab) -> None:
    """The runner outlives its worker and runs what it holds; the next worker adopts those jobs (the waiting ones
    stay ``STARTING``: they have not started) and ingests their results."""
    held, *behind = lab.submit(["held", "b1", "b2"], hold="held")
    lab.handed_ahead(held, behind)
    old = worker_pid(lab.home)
    assert old is not None
    os.kill(old, signal.SIGKILL)
    wait_until(  # started by the engine's polls
        lambda: bool(lab.engine.job_statuses([held])) and worker_pid(lab.home) not in (None, old), 30, "a new worker"
    )
    assert {r.status for r in lab.engine.job_statuses(behind)} == {st.STARTING}
    lab.release(held)
    records = wait_for_jobs(lab.engine, [held, *behind], timeout=60)
    assert [r.status for r in records] == [st.COMPLETED] * 3
    assert sorted(lab.runs()) == ["b1", "b2", "held", "warm"], "each ran once"


@pytest.mark.parametrize("value", ["soon", "-1", "nan"])
def test_a_bad_ahead_setting_is_refused_naming_it(value: str) -> None:
    with pytest.raises(ValueError, match=AHEAD_ENV):
        ahead_seconds(value)


def test_hand_ahead_is_off_unless_the_setting_turns_it_on() -> None:
    assert ahead_seconds(None) == ahead_seconds("") == 0.0, "off by default (docs/design.md section 7.6)"
    assert ahead_seconds("0.05") == 0.05 and ahead_seconds("0") == 0.0


def test_a_runner_holds_at_most_three_jobs_and_the_rest_wait_in_the_queue(lab: Lab) -> None:
    held, b1, b2, b3, b4 = lab.submit(["held", "b1", "b2", "b3", "b4"], hold="held")
    lab.handed_ahead(held, [b1, b2])
    statuses = {r.job_id: r.status for r in lab.engine.job_statuses([b3, b4])}
    assert statuses == {b3: st.PENDING, b4: st.PENDING}, "one slot: its runner holds the running job and two more"
    assert lab.runner_of(b3) is None
    lab.release(held)
    records = wait_for_jobs(lab.engine, [held, b1, b2, b3, b4], timeout=60)
    assert {r.status for r in records} == {st.COMPLETED}
    assert len({r.scheduler_id for r in records}) == 1, "one slot, one runner"
    assert sorted(lab.runs()) == ["b1", "b2", "b3", "b4", "held", "warm"]
