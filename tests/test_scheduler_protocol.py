"""A third scheduler needs only the protocol file: two written here from ``dshpc_jupyter.schedulers.base`` alone
run in a real ``Engine``; the Store is the ledger schedulers record through; the claim rules hold."""

from __future__ import annotations

import ast
import inspect
import json
import subprocess
import sys
import time
import typing
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dshpc_jupyter.schedulers.base import (
    Claim,
    Home,
    JobLedger,
    JobRecord,
    JobUpdate,
    Refusal,
    Result,
    Submission,
    build_task,
    lost_submitter,
    result_update,
    run_task,
)
from dshpc_jupyter.service.engine import Engine
from dshpc_jupyter.store.sqlite import NewJob, Store

ROOT = Path(__file__).resolve().parents[1]
WORDS = "Word Count (bash)"


class Inline:
    """Runs each job to its end inside ``submit``, with the runner, and reports its result on the next poll."""

    name = "inline"

    def __init__(self, home: Home) -> None:
        self.home = home
        self.results: dict[str, Result] = {}

    def submit(self, submissions: Sequence[Submission]) -> list[Refusal]:
        for s in submissions:
            task = build_task(self.home, s.job_id, s.file_hash, s.function_hash, s.spec, s.parameters)
            self.results[s.job_id] = run_task(task)
        return []

    def poll(self, jobs: Sequence[JobRecord]) -> list[JobUpdate]:
        return [result_update(j.job_id, self.results[j.job_id]) for j in jobs if j.job_id in self.results]

    def cancel(self, jobs: Sequence[JobRecord]) -> None:
        """Nothing to stop: every job ended inside ``submit``."""

    def close(self) -> None:
        self.results.clear()


class Picky(Inline):
    """Runs inline only the jobs counting words; refuses the others, with the reason."""

    name = "picky"

    def submit(self, submissions: Sequence[Submission]) -> list[Refusal]:
        accepted = [s for s in submissions if s.parameters["unit"] == "words"]
        super().submit(accepted)
        return [
            Refusal(s.job_id, f"unit {s.parameters['unit']!r} unsupported") for s in submissions if s not in accepted
        ]


def test_a_scheduler_written_from_the_protocol_runs_jobs_to_completion(
    engine: Engine, example_hashes: dict[str, str]
) -> None:
    inline = Engine(engine.home, engine.store, Inline(engine.home))
    hello = example_hashes["hello.txt"]
    configs = [{"file_hash": hello, "method_name": WORDS, "parameters": {"unit": u}} for u in ("words", "lines")]
    response = inline.simulate_jobs(configs)
    assert [r.outcome for r in response.results] == ["new", "new"]
    ids = [r.job_id or "" for r in response.results]
    assert [r.status for r in engine.store.get_jobs(ids)] == ["PD", "PD"]  # recorded; nothing reported yet
    records = inline.job_statuses(ids)
    assert [(r.status, r.scheduler, r.exit_code) for r in records] == [("CD", "inline", 0)] * 2
    text = engine.home.file_path(hello).read_text()
    assert [json.loads(r.output or "") for r in records] == [
        {"unit": "words", "count": len(text.split())},
        {"unit": "lines", "count": text.count("\n")},
    ]
    again = inline.simulate_jobs(configs[:1])
    assert (again.results[0].outcome, again.results[0].job_id) == ("cached", ids[0])


def test_a_refusing_scheduler_fails_the_config_with_its_reason(engine: Engine, example_hashes: dict[str, str]) -> None:
    picky = Engine(engine.home, engine.store, Picky(engine.home))
    poem = example_hashes["poem.txt"]
    configs = [{"file_hash": poem, "method_name": WORDS, "parameters": {"unit": u}} for u in ("bytes", "words")]
    response = picky.simulate_jobs(configs)
    refused, accepted = response.results
    assert (refused.outcome, refused.new_status) == ("refused", "F")
    assert refused.message == "Submission failed: unit 'bytes' unsupported"
    assert (accepted.outcome, accepted.new_status) == ("new", "PD")
    assert (response.failed_submissions, response.successful_submissions) == (1, 1)
    [record] = engine.store.get_jobs([refused.job_id or ""])
    assert (record.status, record.error) == ("F", "scheduler refused the job: unit 'bytes' unsupported")
    assert [r.outcome for r in picky.batch(response.batch_id or "").results] == ["refused", "new"]
    assert [r.status for r in picky.job_statuses([refused.job_id or "", accepted.job_id or ""])] == ["F", "CD"]


def _members(protocol: type) -> list[str]:
    return sorted(name for name, value in vars(protocol).items() if inspect.isfunction(value) and name[0] != "_")


def test_the_store_implements_the_ledger_with_the_same_signatures(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.sqlite")
    try:
        assert isinstance(store, JobLedger)
    finally:
        store.close()
    members = _members(JobLedger)
    assert "apply_updates" in members and "claim_pending" in members and "swap_scheduler_ids" in members
    for name in members:
        wanted, found = getattr(JobLedger, name), getattr(Store, name)
        assert list(inspect.signature(found).parameters) == list(inspect.signature(wanted).parameters), name
        assert typing.get_type_hints(found) == typing.get_type_hints(wanted), name


def test_the_protocol_does_not_import_the_store() -> None:
    code = "import sys, dshpc_jupyter.schedulers.base; print(sorted(m for m in sys.modules if 'store' in m))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def _imports(path: Path) -> set[str]:
    """The package modules a scheduler module imports, spelled absolutely."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = "dshpc_jupyter.schedulers".rsplit(".", node.level - 1)[0] if node.level else ""
            found.add(f"{base}.{node.module}" if base and node.module else base or node.module or "")
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_schedulers_record_through_the_ledger_not_the_store() -> None:
    """Only the local worker's entry point opens a Store (it is a process of its own); every scheduler module
    else reaches the store through the ``JobLedger`` it is given."""
    opening = {
        path.name
        for path in (ROOT / "dshpc_jupyter" / "schedulers").glob("*.py")
        if any(name.startswith("dshpc_jupyter.store") for name in _imports(path))
    }
    assert opening == {"local_worker.py"}


def test_a_claim_is_a_token_that_parses_back() -> None:
    claim = Claim.new()
    assert claim.token.startswith("claim:") and Claim.parse(claim.token) == claim
    assert abs(claim.made_at - time.time()) <= 1 and len(claim.nonce) == 12
    assert Claim.new().nonce != claim.nonce
    for other in (None, "1234_7", "12345:", "claim:soon:abc", "claim:123"):
        assert Claim.parse(other) is None, other


def _pending(scheduler_id: str | None, created: float, status: str = "PD") -> JobRecord:
    return JobRecord.model_construct(
        job_id="j", status=status, scheduler_id=scheduler_id, created_at=datetime.fromtimestamp(created, UTC)
    )


@pytest.mark.parametrize(
    ("held_by", "age", "status", "lost"),
    [
        ("claim", 301.0, "PD", True),  # its claim's lease ran out: the submitter died before recording an id
        ("claim", 299.0, "PD", False),  # a live submitter may still be inside sbatch
        (None, 301.0, "PD", True),  # recorded, never claimed: the process died before submit
        (None, 10.0, "PD", False),
        ("1234_7", 10_000.0, "PD", False),  # submitted: the queue reports it
        ("claim", 10_000.0, "R", False),  # not pending: someone runs it
    ],
)
def test_a_pending_job_has_lost_its_submitter_after_the_lease(
    held_by: str | None, age: float, status: str, lost: bool
) -> None:
    now = time.time()
    scheduler_id = Claim(round(now - age), "abc").token if held_by == "claim" else held_by
    created = now - age if held_by != "claim" else now - 10_000
    assert lost_submitter(_pending(scheduler_id, created, status), 300.0, now) is lost


def test_a_claim_through_the_ledger_is_a_compare_and_set(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.sqlite")
    ledger: JobLedger = store
    with store.write() as tx:
        tx.insert_jobs(NewJob(f"j{n}", f"k{n}", "f", "m", "h", "{}", time.time(), "pbs") for n in range(3))
    first, second = Claim.new(), Claim.new()
    assert sorted(ledger.swap_scheduler_ids(["j0", "j1"], None, first.token)) == ["j0", "j1"]
    assert ledger.swap_scheduler_ids(["j0", "j1", "j2"], None, second.token) == ["j2"]  # only what nobody held
    assert ledger.swap_scheduler_ids(["j0"], second.token, "9_0") == []  # a token it never held
    assert ledger.swap_scheduler_ids(["j0"], first.token, second.token) == ["j0"]  # taking over a lost claim
    ledger.set_scheduler_ids([("j0", "1234_0")])
    ledger.apply_updates([JobUpdate("j1", "R", started_at=time.time())])
    records = {r.job_id: r for r in store.get_jobs(["j0", "j1", "j2"])}
    assert {j: (r.status, r.scheduler_id) for j, r in records.items()} == {
        "j0": ("PD", "1234_0"), "j1": ("R", first.token), "j2": ("PD", second.token),
    }  # fmt: skip
    assert ledger.swap_scheduler_ids(["j1"], first.token, second.token) == []  # running: no longer claimable
    assert [Claim.parse(records[j].scheduler_id) for j in ("j0", "j1", "j2")] == [None, first, second]
    store.close()
