"""An event loop in a daemon thread: what lets a blocking :class:`~.blocking.Connection` drive an async backend
the same way in a script, in a notebook whose own loop is already running, and from background threads."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class LoopThread:
    """An event loop running forever in a daemon thread (so it never holds up interpreter exit)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="dshpc-loop", daemon=True)
        self.thread.start()

    def submit(self, coroutine: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the loop and wait for it; refused from the loop itself, where waiting deadlocks."""
        if threading.current_thread() is self.thread:
            coroutine.close()
            raise RuntimeError("a blocking dshpc call was made on the connection's own loop: await the backend")
        return self.submit(coroutine).result()

    def stop(self) -> None:
        """Cancel what still runs on the loop (pollers of open Batches), then end the thread."""
        self.submit(_cancel_other_tasks()).result(timeout=5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        if not self.thread.is_alive():
            self.loop.close()


async def _cancel_other_tasks() -> None:
    others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in others:
        task.cancel()
    await asyncio.gather(*others, return_exceptions=True)
