"""Who is calling: the server authenticates a request and sets its ``Caller`` here; the engine reads it to
record the owner of what the call submits.

A context variable rather than an argument, so the ``Backend`` protocol (and every client of it) is the same
with users and without: the embedded engine has no users, and its caller is ``LOCAL`` (no name, every right).
It reaches the engine's worker threads because anyio copies the context into them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Literal

from ..domain.errors import ForbiddenError, InvalidInputError

Scope = Literal["mine", "all"]
SCOPES: tuple[Scope, ...] = ("mine", "all")


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated caller. ``name`` None is the embedded engine's local user (or an open server): it owns
    nothing, so it sees everything. ``scope`` is what a list shows: the caller's own records, or everyone's.
    ``max_running``: jobs of theirs in progress at once, beyond which new ones wait (None: no limit)."""

    name: str | None
    admin: bool
    scope: Scope = "mine"
    max_running: int | None = None

    @property
    def sees_all(self) -> bool:
        return self.name is None or self.scope == "all"

    def may_touch(self, owner: str | None) -> bool:
        """Whether this caller may read or cancel a record ``owner`` made: their own, or anything for admins."""
        return self.admin or self.name is None or owner == self.name


LOCAL = Caller(name=None, admin=True)
_CALLER: ContextVar[Caller] = ContextVar("dshpc_caller", default=LOCAL)


def current_caller() -> Caller:
    return _CALLER.get()


def set_caller(caller: Caller) -> None:
    """Set the caller for the rest of this context (the server does it once per request, before routing)."""
    _CALLER.set(caller)


@contextmanager
def acting_for(owner: str | None, max_running: int | None = None) -> Iterator[Caller]:
    """Inside this block the caller is ``owner``: what a pipeline's release submits is its submitter's, also
    on a background thread (no request there) or in another user's look at it. The submitter's own call keeps
    its caller; otherwise ``owner`` acts under ``max_running``, their quota (None: the local user)."""
    caller = current_caller()
    if caller.name == owner:
        yield caller
        return
    token = _CALLER.set(LOCAL if owner is None else Caller(name=owner, admin=False, max_running=max_running))
    try:
        yield _CALLER.get()
    finally:
        _CALLER.reset(token)


@contextmanager
def viewing(scope: str) -> Iterator[Caller]:
    """Lists inside this block show ``scope``; ``all`` is for admins (ForbiddenError naming ``scope``)."""
    if scope not in SCOPES:
        raise InvalidInputError(f"scope: {scope!r} is not one of {', '.join(SCOPES)}")
    caller = current_caller()
    if scope == "all" and not caller.admin:
        raise ForbiddenError("scope: 'all' is for admins; you see your own records (scope=mine)")
    token = _CALLER.set(replace(caller, scope=scope))
    try:
        yield _CALLER.get()
    finally:
        _CALLER.reset(token)
