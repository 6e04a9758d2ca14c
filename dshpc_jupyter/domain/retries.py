"""Retry policies, the attempts of a job, and the options of one ``simulate-jobs`` call (docs/design.md section 12).

A retry keeps the job (its ``job_id``, its place in every batch): the store moves a job whose attempt failed with
a code of its policy back to ``PD`` with more memory or time, and records the attempt that ended. The policy is
fixed when the job is created (the call's, else its method's, else ``DEFAULT_POLICY``) and kept on the job, so
whoever ingests a failure (the local worker, the engine polling Slurm) decides the same way without the spec.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from . import status as st
from .errors import InvalidInputError

#: Codes a policy may retry: every failure but a cancel (someone decided) and a deadline (it has passed).
RETRIABLE_CODES: Final = (st.TIMEOUT, st.OUT_OF_MEMORY, st.NODE_FAIL, st.PREEMPTED, st.BOOT_FAIL, st.FAILED)
#: What an explicit policy retries unless it says: the conditions a rerun can cure, not a method's own error.
EXPLICIT_ON: Final = (st.TIMEOUT, st.OUT_OF_MEMORY, st.NODE_FAIL, st.PREEMPTED, st.BOOT_FAIL)
#: Most attempts a policy may ask for (a runaway policy would rerun a broken method forever).
MAX_ATTEMPTS: Final = 20

Resubmit = Literal["failed", "retriable", "never"]
RESUBMIT_MODES: Final[tuple[Resubmit, ...]] = ("failed", "retriable", "never")


def _problem(message: str) -> PydanticCustomError:
    """A validation error whose message is ours alone (a ValueError's would read "Value error, ...")."""
    return PydanticCustomError("retry_policy", message)


class RetryPolicy(BaseModel):
    """When a failed attempt runs again, how often, after how long, and with how much more memory or time."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Attempts in all, the first included: 1 never retries.
    attempts: int = Field(default=3, ge=1, le=MAX_ATTEMPTS)
    on: tuple[str, ...] = EXPLICIT_ON
    #: Seconds between a failed attempt and the next one.
    backoff: float = Field(default=0.0, ge=0, le=86400)
    #: An ``OOM`` attempt's memory times this is the next one's; a ``TO`` attempt's time times ``time_factor``.
    mem_factor: float = Field(default=1.5, ge=1, le=16)
    time_factor: float = Field(default=1.5, ge=1, le=16)
    #: Caps in Slurm's notation (``8G``, ``2:00:00``); the node's memory caps local jobs anyway.
    max_mem: str | None = None
    max_time: str | None = None

    @field_validator("on", mode="before")
    @classmethod
    def _known_codes(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list | tuple):
            for code in value:
                if code not in RETRIABLE_CODES:
                    codes = ", ".join(RETRIABLE_CODES)
                    raise _problem(f"{code!r} is not a code a retry can cure (one of {codes})")
            return tuple(dict.fromkeys(value))
        return value

    @classmethod
    def parse(cls, value: object) -> RetryPolicy:
        """A policy as a caller writes it: a number of retries (``2`` is three attempts) or the object."""
        if isinstance(value, bool):
            raise _problem(f"must be a number of retries or an object, got boolean {value}")
        if isinstance(value, int):
            if not 0 <= value < MAX_ATTEMPTS:
                raise _problem(f"must be between 0 and {MAX_ATTEMPTS - 1} retries, got {value}")
            return cls(attempts=value + 1)
        if isinstance(value, RetryPolicy):
            return value
        return cls.model_validate(value)

    def retries(self, code: str, attempt: int) -> bool:
        """Whether an attempt (numbered from 1) that ended with ``code`` runs again."""
        return code in self.on and attempt < self.attempts


#: The policy of a job whose call and method set none: a lost runner and a preemption are not the method's
#: fault and are retried once; a time limit, out of memory or the method's own failure are reported.
DEFAULT_POLICY: Final = RetryPolicy(attempts=2, on=(st.NODE_FAIL, st.PREEMPTED))


def _read_policy(value: object) -> object:
    return None if value is None else RetryPolicy.parse(value)


#: A ``retry`` field as requests and options take it: null, a number of retries, or a policy object.
RetryField = Annotated[RetryPolicy | None, BeforeValidator(_read_policy)]


class Attempt(BaseModel):
    """One attempt of a job that ended and was retried (the current attempt is the job record itself)."""

    model_config = ConfigDict(extra="ignore")

    attempt: int
    status: str
    exit_code: int | None = None
    #: The last meaningful line of the attempt's error (what a person needs to know why it ran again).
    reason: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    #: ``time`` and ``mem`` the attempt ran with, in Slurm's notation (absent: no limit).
    resources: dict[str, str] = Field(default_factory=dict)


class SubmitOptions(BaseModel):
    """How one ``simulate-jobs`` call treats jobs that ran before: the retry policy of the jobs it creates,
    whether a failed job runs again (``resubmit``) and whether a completed one does too (``force``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    retry: RetryField = None
    resubmit: Resubmit = "failed"
    force: bool = False

    @classmethod
    def of(cls, retry: object = None, resubmit: str = "failed", force: bool = False) -> SubmitOptions:
        """The options from keyword values as the front takes them (``retry`` a number or an object); a bad
        value is an InvalidInputError naming the field."""
        try:
            return cls.model_validate({"retry": retry, "resubmit": resubmit, "force": force})
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise InvalidInputError(f"{where}: {first['msg']}") from None

    def wire(self) -> dict[str, Any]:
        """The fields a request carries: only those that differ from the seed's behaviour."""
        return self.model_dump(exclude_defaults=True, mode="json")


def last_line(text: str | None) -> str | None:
    """The last non-empty line of an error: a Python traceback's exception, a shell's last complaint."""
    lines: Sequence[str] = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1][:500] if lines else None
