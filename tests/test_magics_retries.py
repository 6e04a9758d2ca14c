"""``%%dshpc_batch --retry/--resubmit/--rerun`` in a real Jupyter kernel (docs/design.md section 12)."""

from __future__ import annotations

from kernels import Kernel
from test_magics import assert_one_line_error, kernel, project

__all__ = ["kernel", "project"]  # the fixtures, used by name

FAILING = """\
method: Simulated Workload
files: [hello.txt]
parameters: {seconds: 0, exit_code: 3}
"""


def test_the_magic_s_resubmit_retry_and_rerun_options(kernel: Kernel) -> None:
    kernel.ok("import os; from dshpc_jupyter import examples; os.chdir(examples.data_dir())")
    first = kernel.ok("%%dshpc_batch --out b --wait\n" + FAILING)
    assert "1 failed" in first.text
    kept = kernel.ok("%%dshpc_batch --out k --wait --resubmit never\n" + FAILING)
    assert "1 failed kept" in kept.text
    assert kernel.value("(k.df.outcome.tolist(), k.df.job_id.tolist() == b.df.job_id.tolist())") == (["failed"], True)
    dry = kernel.ok("%%dshpc_batch --dry-run --resubmit retriable --retry 2\n" + FAILING)
    assert "1 failed kept" in dry.text, "F is not among the codes --retry retries"
    retried = kernel.ok("%%dshpc_batch --out r --wait --retry 1\n" + FAILING.replace("exit_code: 3", "exit_code: 0"))
    assert "1 completed" in retried.text
    rerun = kernel.ok("%%dshpc_batch --out again --wait --rerun\n" + FAILING.replace("exit_code: 3", "exit_code: 0"))
    assert "1 cached rerun" in rerun.text
    assert kernel.value("(again.df.outcome.tolist(), again.df.attempt.tolist())") == (["rerun"], [1])
    assert_one_line_error(kernel.run("%%dshpc_batch --retry 99\n" + FAILING), "retry: must be between 0 and 19")
