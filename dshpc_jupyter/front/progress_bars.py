"""The bars large transfers draw (docs/design.md section 8.3): tqdm in a terminal, the notebook's progress
widget (tqdm's ipywidgets bar) in a Jupyter kernel. The HTTP backend gets :func:`progress_bar` from
``connect()`` and asks it for a bar only for transfers over a few MB."""

from __future__ import annotations

import sys

from ..backends.progress import Progress


def in_kernel() -> bool:
    """True inside a Jupyter kernel (where a widget shows; a terminal gets text)."""
    if "ipykernel" not in sys.modules:
        return False
    from IPython import get_ipython

    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def progress_bar(description: str, total: int) -> Progress:
    """A bar of ``total`` bytes, in bytes with binary prefixes, gone when the transfer ends."""
    from tqdm import tqdm
    from tqdm.notebook import tqdm_notebook

    kind = tqdm_notebook if in_kernel() else tqdm
    bar: Progress = kind(total=total, desc=description, unit="B", unit_scale=True, unit_divisor=1024, leave=False)
    return bar
