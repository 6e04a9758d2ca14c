"""What a transfer reports its progress to: a bar the front end supplies (tqdm in a terminal, the notebook's
progress widget in a kernel), so the backends draw nothing themselves and stay silent by default."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

#: Transfers smaller than this show no progress: a bar would flash and vanish.
PROGRESS_MIN_BYTES = 4 << 20


class Progress(Protocol):
    """One transfer's bar: ``update`` by the bytes just moved, ``close`` at the end."""

    def update(self, n: int) -> None: ...

    def close(self) -> None: ...


#: Makes the bar of one transfer, given its description and its total size in bytes.
ProgressFactory = Callable[[str, int], Progress]


class NoProgress:
    """The bar of a transfer that shows none."""

    def update(self, n: int) -> None:
        """Nothing to show."""

    def close(self) -> None:
        """Nothing to close."""


def progress_for(factory: ProgressFactory | None, description: str, total: int) -> Progress:
    """A bar for a transfer of ``total`` bytes: the factory's when it is large enough to show one."""
    if factory is None or total < PROGRESS_MIN_BYTES:
        return NoProgress()
    return factory(description, total)
