"""Talking to Slurm's commands: running them, reading their output, and turning resources into sbatch options.

Kept apart from :mod:`.slurm` so the scheduler reads as a declaration of what it does, and so every piece of
Slurm text parsing sits in one place. Everything here is an argv list; nothing goes through a shell.
"""

from __future__ import annotations

import math
import shutil
import subprocess
from dataclasses import dataclass
from typing import Final

from ..domain import status as st
from ..domain.errors import SchedulerError
from ..domain.methods import parse_memory_limit, parse_time_limit
from ..domain.models import MethodResources

COMMAND_TIMEOUT_S: Final = 60.0
DEFAULT_MAX_ARRAY_SIZE: Final = 1001
#: Seconds a packed job may need beyond its own limit: the runner's start and its kill grace.
RUNNER_OVERHEAD_S: Final = 5.0

#: Slurm's long job states (``squeue -o %T``, ``sacct -o State``) as docs/design.md section 2 codes.
STATE_CODES: Final[dict[str, str]] = {
    "PENDING": st.PENDING,
    "REQUEUED": st.PENDING,
    "REQUEUE_FED": st.PENDING,
    "REQUEUE_HOLD": st.PENDING,
    "RESV_DEL_HOLD": st.PENDING,
    "CONFIGURING": st.CONFIGURING,
    "RUNNING": st.RUNNING,
    "RESIZING": st.RUNNING,
    "SIGNALING": st.RUNNING,
    "STAGE_OUT": st.RUNNING,
    "SUSPENDED": st.RUNNING,
    "STOPPED": st.RUNNING,
    "COMPLETING": st.COMPLETING,
    "COMPLETED": st.COMPLETED,
    "FAILED": st.FAILED,
    "SPECIAL_EXIT": st.FAILED,
    "CANCELLED": st.CANCELLED,
    "REVOKED": st.CANCELLED,
    "TIMEOUT": st.TIMEOUT,
    "OUT_OF_MEMORY": st.OUT_OF_MEMORY,
    "NODE_FAIL": st.NODE_FAIL,
    "BOOT_FAIL": st.BOOT_FAIL,
    "DEADLINE": st.DEADLINE,
    "PREEMPTED": st.PREEMPTED,
}

#: Fragments of sbatch's complaints that mean "try again shortly", not "this job is unacceptable".
TRANSIENT_ERRORS: Final = (
    "socket timed out",
    "unable to contact slurm controller",
    "temporarily unable to accept job",
    "resource temporarily unavailable",
    "zero bytes were transmitted",
    "connection refused",
    "connection reset",
    "transport endpoint",
    "slurmctld is busy",
    "communication connection failure",
)


class SlurmCommandError(SchedulerError):
    """A Slurm command that failed (or is missing); ``transient`` when retrying may help. One of the package's
    error family (a ``SchedulerError``), so one that escapes reaches a user as the scheduler's failure."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


def run(argv: list[str], timeout: float = COMMAND_TIMEOUT_S) -> str:
    """A Slurm command's stdout; SlurmCommandError with its stderr when it fails, times out or is missing."""
    executable = shutil.which(argv[0])
    if executable is None:
        raise SlurmCommandError(f"{argv[0]} not found on PATH: is Slurm's client installed on this machine?")
    try:
        done = subprocess.run(
            [executable, *argv[1:]], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        raise SlurmCommandError(f"{argv[0]} did not answer within {timeout:g} s", transient=True) from None
    if done.returncode != 0:
        message = (done.stderr.strip() or done.stdout.strip() or f"exit status {done.returncode}").splitlines()
        text = " ".join(line.strip() for line in message[-3:])
        raise SlurmCommandError(f"{argv[0]}: {text}", transient=any(t in text.lower() for t in TRANSIENT_ERRORS))
    return done.stdout


def parse_config(text: str) -> dict[str, str]:
    """``scontrol show config`` as a dict of its ``Key = Value`` lines."""
    config: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() and " " not in key.strip():
            config[key.strip()] = value.strip()
    return config


def max_array_size(config: dict[str, str]) -> int:
    value = config.get("MaxArraySize", "")
    return int(value) if value.isdigit() and int(value) > 0 else DEFAULT_MAX_ARRAY_SIZE


def parse_node_memory(sinfo: str) -> int | None:
    """The memory of the smallest node in ``sinfo -h -N -o %m`` (megabytes, one a line) in bytes; None if none."""
    sizes = [int(line.strip().rstrip("+")) for line in sinfo.splitlines() if line.strip().rstrip("+").isdigit()]
    return min(sizes) << 20 if sizes else None


def accounting_enabled(config: dict[str, str]) -> bool:
    return config.get("AccountingStorageType", "accounting_storage/none") != "accounting_storage/none"


@dataclass(frozen=True, slots=True)
class QueueEntry:
    """One array task as ``squeue`` shows it."""

    state: str
    comment: str


SQUEUE_FORMAT: Final = "%i|%T|%k"


def parse_squeue(text: str) -> dict[str, QueueEntry]:
    """``squeue -h -r -o '%i|%T|%k'`` output: task id (``1234_7``) -> state and comment."""
    entries: dict[str, QueueEntry] = {}
    for line in text.splitlines():
        parts = line.strip().split("|", 2)
        if len(parts) == 3:
            entries[parts[0]] = QueueEntry(parts[1].split()[0] if parts[1] else "", parts[2])
    return entries


def parse_sacct(text: str) -> dict[str, str]:
    """``sacct -n -P -X -o JobID,State`` output: task id -> state (``CANCELLED by 0`` becomes ``CANCELLED``)."""
    states: dict[str, str] = {}
    for line in text.splitlines():
        task, sep, state = line.strip().partition("|")
        if sep and state:
            states[task] = state.split()[0]
    return states


def parse_sbatch(text: str) -> str:
    """The job id ``sbatch --parsable`` prints (``1234`` or ``1234;cluster``)."""
    job_id = text.strip().splitlines()[-1].split(";")[0].strip() if text.strip() else ""
    if not job_id.isdigit():
        raise SlurmCommandError(f"sbatch: unexpected answer {text.strip()!r} (expected a job id)")
    return job_id


def resource_options(resources: MethodResources, pack: int, partition: str | None) -> list[str]:
    """sbatch options for one array task running ``pack`` jobs of a method with these ``resources``.

    The runner enforces each job's own time limit to the second; Slurm's limit (whole minutes) covers the
    task's jobs one after another and is a safety net that never cuts a job short of its own limit.
    """
    options: list[str] = []
    seconds = parse_time_limit(resources.time)
    if seconds is not None:
        options.append(f"--time={math.ceil(pack * (seconds + RUNNER_OVERHEAD_S) / 60)}")
    memory = parse_memory_limit(resources.mem)
    if memory is not None:
        options.append(f"--mem={math.ceil(memory / (1 << 20))}M")
    if resources.cpus is not None:
        options.append(f"--cpus-per-task={resources.cpus}")
    if resources.gpus is not None:
        options.append(f"--gres=gpu:{resources.gpus}")
    if resources.partition or partition:
        options.append(f"--partition={resources.partition or partition}")
    return options


def nice_options(priority: int) -> list[str]:
    """A priority as Slurm's ``--nice`` (higher priority, lower nice; none at 0). A negative nice, for a
    priority above 0, needs an operator or administrator of the cluster: sbatch refuses it for anyone else."""
    return [f"--nice={-priority}"] if priority else []


def array_option(size: int, throttle: int | None) -> str:
    return f"--array=0-{size - 1}" + (f"%{throttle}" if throttle else "")
