"""The poller of a Batch: it sends the configs held back by ``concurrency`` as earlier jobs end, and asks what
changed once per interval (never one call per job), backing off while the service does not answer.

It polls by change (docs/design.md section 14): the first round takes the service's cursor, then reads every
unfinished job once (``job_statuses``); each later round asks only for the jobs changed after the cursor of the
last answer (``job_changes``), so a round costs the jobs that changed, not the jobs in flight.

It runs as a coroutine on its connection's loop, so a kernel blocked in ``time.sleep`` does not stop it, and it
stops by itself once the batch is done. Each sending is recorded as its own batch on the service; sending the
same configs again attaches to the jobs already made.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from typing import Final

from ..domain.errors import NotFoundError
from ..domain.retries import SubmitOptions
from .batch_state import BatchState
from .connection import Connection

DEFAULT_POLL: Final = 0.5
MAX_BACKOFF: Final = 30.0


class Poller:
    """Follows one :class:`.BatchState` on a connection; ``last_error`` is the latest polling problem."""

    def __init__(
        self,
        connection: Connection,
        state: BatchState,
        *,
        poll: float,
        concurrency: int | None,
        options: SubmitOptions | None = None,
        priority: int = 0,
    ) -> None:
        if poll <= 0:
            raise ValueError(f"poll: must be a positive number of seconds, got {poll}")
        if concurrency is not None and concurrency < 1:
            raise ValueError(f"concurrency: must be at least 1, got {concurrency}")
        self.connection = connection
        self.state = state
        self.poll = poll
        self.concurrency = concurrency
        #: Sent with every sending (retry policy, resubmit, force: docs/design.md section 12; the priority).
        self.options = options
        self.priority = priority
        #: The last polling problem (a service that did not answer), cleared by the next good answer.
        self.last_error: str | None = None
        #: The batch's name, sent with the first sending (the later ones of a ``concurrency`` are unnamed).
        self.name: str | None = None
        self._lock = threading.Lock()
        self._task: concurrent.futures.Future[None] | None = None
        self._step_lock: asyncio.Lock | None = None
        #: The service's change cursor of the last answer; None until the first round has read every job.
        self.cursor: int | None = None
        #: False once the service turned out not to know ``job_changes`` (an older server).
        self.by_change = True

    def start(self) -> None:
        """Poll in the background until the batch is done (once: starting a running poller does nothing)."""
        with self._lock:
            if self._task is None and not self.state.done:
                self._task = self.connection.start(self._loop)

    def stop(self) -> None:
        with self._lock:
            task, self._task = self._task, None
        if task is not None:
            task.cancel()

    async def send(self) -> None:
        """Send held-back configs while fewer than ``concurrency`` jobs are in progress (all of them without it)."""
        while self.state.has_queued:
            room = None if self.concurrency is None else self.concurrency - len(self.state.unfinished_ids())
            chunk = self.state.take_queued(room)
            if not chunk:
                return
            configs = [self.state.configs[i] for i in chunk]
            name = None if self.state.batch_ids else self.name
            response = await self.connection.backend.simulate_jobs(
                configs, options=self.options, priority=self.priority, name=name
            )
            self.state.record(chunk, response)
            await self.fetch_ended()

    async def fetch_ended(self) -> None:
        """The records of the jobs served from cache (one call), so their rows show when they ran."""
        ids = self.state.unrecorded_ids()
        if ids:
            self.state.apply(await self.connection.backend.job_statuses(ids))

    async def step(self) -> None:
        """One round: send what ``concurrency`` allows, then ask what changed since the last round."""
        if self._step_lock is None:
            self._step_lock = asyncio.Lock()
        async with self._step_lock:
            await self.send()
            if self.state.has_unfinished:
                await (self._start() if self.cursor is None else self._follow(self.cursor))
            await self.send()
            self.state.finish_if_done()

    async def _start(self) -> None:
        """The cursor first, then every unfinished job once: a change made in between is read again next
        round (records never go back), none is missed. A server from before polling by change (no
        ``/jobs/changes``: 404) is polled the old way, every unfinished job every round."""
        backend = self.connection.backend
        cursor: int | None = None
        if self.by_change:
            try:
                cursor = (await backend.job_changes()).cursor
            except NotFoundError:
                self.by_change = False
        self.state.apply(await backend.job_statuses(self.state.unfinished_ids()))
        self.cursor = cursor

    async def _follow(self, cursor: int) -> None:
        """Every change after ``cursor``: one call, or more while the answers say more are waiting (each moves
        the cursor on, and one that does not ends the round)."""
        while True:
            changes = await self.connection.backend.job_changes(cursor)
            self.state.apply_changes(changes.jobs)
            moved, cursor = changes.cursor > cursor, max(cursor, changes.cursor)
            self.cursor = cursor
            if not (changes.more and moved):
                return

    async def _loop(self) -> None:
        delay = self.poll
        try:
            while not self.state.finish_if_done():
                await asyncio.sleep(delay)
                try:
                    await self.step()
                except Exception as exc:  # recorded and shown: a service that does not answer now may answer later
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    delay = min(delay * 2, MAX_BACKOFF)
                    self.state.notify()
                else:
                    self.last_error, delay = None, self.poll
        finally:
            with self._lock:
                self._task = None
