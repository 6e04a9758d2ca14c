"""The form's submit options: retries, which failed jobs run again, forcing a rerun and a priority.

They are the form's side of ``%%dshpc_batch --retry/--resubmit/--rerun/--priority`` (docs/design.md sections 12
and 13). Left as they start, nothing is sent and the seed's behaviour holds: the method's own retry policy, every
failed job resubmitted, cached results kept, priority 0.
"""

from __future__ import annotations

from typing import Any, Final

import ipywidgets as widgets

from ..domain.retries import MAX_ATTEMPTS, RESUBMIT_MODES
from ..store.queue import PRIORITY_RANGE
from .form_fields import error_html
from .form_values import FieldError

DEFAULT_RESUBMIT: Final = "failed"
RESUBMIT_WORDS: Final = {
    "failed": "every failed job (default)",
    "retriable": "failures the retry policy retries",
    "never": "never: keep the failures",
}


def _integer(field: str, text: str, *, low: int, high: int) -> int | None:
    """``text`` as an integer in [low, high]; empty means not set."""
    text = text.strip()
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        raise FieldError(field, f"{text!r} is not a whole number") from None
    if not low <= value <= high:
        raise FieldError(field, f"{value} is out of range (from {low} to {high})")
    return value


class SubmitChoices(widgets.VBox):  # type: ignore[misc]
    """The submit options' controls; :meth:`read` turns them into ``Batch.submit`` keyword arguments."""

    def __init__(self) -> None:
        self.retry = widgets.Text(placeholder="method's policy", description="retries", layout={"width": "220px"})
        self.retry.add_class("dshpc-form-retry")
        self.resubmit = widgets.Dropdown(
            options=[(RESUBMIT_WORDS[m], m) for m in RESUBMIT_MODES], value=DEFAULT_RESUBMIT,
            description="run again", layout={"width": "340px"},
        )  # fmt: skip
        self.resubmit.add_class("dshpc-form-resubmit")
        self.force = widgets.Checkbox(value=False, description="rerun even if cached", indent=False)
        self.force.add_class("dshpc-form-force")
        self.priority = widgets.Text(placeholder="0", description="priority", layout={"width": "180px"})
        self.priority.add_class("dshpc-form-priority")
        self.error = widgets.HTML()
        super().__init__(
            [widgets.HBox([self.retry, self.priority, self.resubmit, self.force], layout={"align_items": "center"}),
             self.error]
        )  # fmt: skip

    def read(self) -> dict[str, Any]:
        """The options that differ from the defaults, as ``Batch.submit`` keywords; a bad one raises
        :class:`FieldError` naming it (and shows it under the controls)."""
        try:
            retry = _integer("retries", self.retry.value, low=0, high=MAX_ATTEMPTS - 1)
            priority = _integer("priority", self.priority.value, low=PRIORITY_RANGE.start, high=PRIORITY_RANGE.stop - 1)
        except FieldError as exc:
            self.error.value = error_html(str(exc))
            raise
        self.error.value = ""
        chosen: dict[str, Any] = {"retry": retry, "priority": priority or None}
        if self.resubmit.value != DEFAULT_RESUBMIT:
            chosen["resubmit"] = self.resubmit.value
        if self.force.value:
            chosen["force"] = True
        return {key: value for key, value in chosen.items() if value is not None}

    def describe(self) -> str:
        """The chosen options in a few words (empty when every one is the default)."""
        try:
            chosen = self.read()
        except FieldError:
            return ""
        return ", ".join(f"{key}={value}" for key, value in chosen.items())


__all__ = ["SubmitChoices"]
