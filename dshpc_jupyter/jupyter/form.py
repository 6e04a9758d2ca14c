"""``JobForm``: build job configs by clicking, preview what the service would do, submit them as one batch.

The form is a thin layer over what the rest of the front end already does: parameter fields read values
(:mod:`.form_fields`, :mod:`.form_values`), a "sweep" is expanded by the same code as a ``%%dshpc_batch`` cell
(:func:`..sweep.expand`), the preview is the service's dry run, a submission is a :class:`..batch.Batch`, and
its live display is the :class:`.display.BatchView` that the magic shows. It only talks to a ``Connection``, so
it works the same over the embedded engine and a server.

Every control is an attribute (``form.method``, ``form.parameter("x")``, ``form.files``, ``form.add_button``,
...), so a notebook or a test can drive it exactly as a person would: set values, ``.click()`` buttons.
Click handlers run in the kernel, where a traceback would reach no one: problems are shown next to the control
that caused them.
"""

from __future__ import annotations

import html
import json
import threading
from collections import Counter
from collections.abc import Callable, MutableMapping
from typing import Any, Final

import ipywidgets as widgets

from ..domain.errors import DshpcError
from ..domain.models import MethodInfo, MultiJobResult
from ..front.batch import DEFAULT_POLL, Batch
from ..front.connection import Connection, current
from ..front.sweep import find_duplicates
from .display import BatchView
from .form_count import add_label, planned_configs
from .form_fields import UNSET, ParameterField, error_html
from .form_inputs import FileInputs
from .form_notes import submission_text, submitted_note
from .form_options import SubmitChoices
from .form_values import MAX_CONFIGS, FieldError, build_input_configs, describe_grid

MAX_PENDING_SHOWN: Final = 1000
OUTCOME_WORDS: Final = {
    "cached": "cached",
    "in_progress": "in progress",
    "new": "new",
    "resubmitted": "new (after a failure)",
    "invalid": "invalid",
    "refused": "refused",
}
OK_STYLE: Final = "color:#1e7d32"
NOTE_STYLE: Final = "color:#666"


def _note(text: str, style: str = NOTE_STYLE) -> str:
    return f'<span style="{style}">{html.escape(text)}</span>'


def _section(title: str) -> widgets.HTML:
    return widgets.HTML(f'<div style="border-top:1px solid #ddd;margin-top:6px;padding-top:4px"><b>{title}</b></div>')


def _message(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return text if isinstance(exc, DshpcError) else f"{type(exc).__name__}: {text}".rstrip(": ")


def _parameters_text(parameters: Any) -> str:
    return json.dumps(parameters, sort_keys=True, separators=(", ", ": "), default=str) if parameters else "{}"


class JobForm(widgets.VBox):  # type: ignore[misc]
    """A form for job configs: method and parameters (each one value or a sweep), files (stored or uploaded),
    pending configs with a dry-run preview, and Submit/Cancel with the live batch display under the form.

    ``out`` names a variable of ``namespace`` (the notebook's, with ``%dshpc_form --out NAME``) that gets each
    submitted Batch; :attr:`batch` always holds the latest.
    """

    def __init__(
        self,
        connection: Connection | None = None,
        *,
        out: str | None = None,
        namespace: MutableMapping[str, Any] | None = None,
        poll: float = DEFAULT_POLL,
    ) -> None:
        self.connection = connection or current()
        self.out = out
        self.namespace = namespace
        self.poll = poll
        #: The latest submitted Batch (``None`` before the first Submit) and every one of them, in order.
        self.batch: Batch | None = None
        self.batches: list[Batch] = []
        #: The last error a button's action met (also shown beside the button).
        self.last_error: BaseException | None = None
        self.methods: dict[str, MethodInfo] = {}
        #: function_hash -> its fields: values typed for a method are kept while another one is chosen.
        self._fields: dict[str, list[ParameterField]] = {}
        self._pending: list[dict[str, Any]] = []
        self._preview: list[MultiJobResult] | None = []
        self._preview_problem = ""
        #: The batch the pending configs, as they are now, were submitted as (``None``: changed since, or never).
        self._submitted: str | None = None
        self._lock = threading.RLock()
        self._view: BatchView | None = None
        self._settled = threading.Event()
        self._settled.set()

        self.method = widgets.Dropdown(options=[], value=None, layout={"width": "300px"})
        self.method.add_class("dshpc-form-method")
        self.reload_button = widgets.Button(
            icon="refresh", tooltip="reload the methods and files", layout={"width": "36px"}
        )
        self.method_help = widgets.HTML()
        self.method_error = widgets.HTML()
        self.parameters = widgets.VBox()
        #: Section 2: the single picker (``files``) or one picker per declared input (``inputs.picker(name)``).
        self.inputs = FileInputs(self.connection)
        self.files = self.inputs.single
        self.add_button = widgets.Button(
            description="Add", icon="plus", button_style="primary", tooltip="add the configs these choices expand to"
        )
        self.add_button.add_class("dshpc-form-add")
        self.add_status = widgets.HTML()
        self.pending_summary = widgets.HTML()
        self.pending_summary.add_class("dshpc-form-preview")
        self.pending_list = widgets.SelectMultiple(options=[], rows=6, layout={"width": "98%"})
        self.pending_list.add_class("dshpc-form-pending")
        self.remove_button = widgets.Button(description="Remove selected", icon="minus", layout={"width": "150px"})
        self.clear_button = widgets.Button(description="Clear all", icon="trash", layout={"width": "100px"})
        self.submit_button = widgets.Button(
            description="Submit", icon="play", button_style="success", tooltip="send the pending configs as one batch"
        )
        self.submit_button.add_class("dshpc-form-submit")
        self.cancel_button = widgets.Button(
            description="Cancel",
            icon="stop",
            button_style="danger",
            disabled=True,
            tooltip="cancel the unfinished jobs of the running batch",
        )
        self.cancel_button.add_class("dshpc-form-cancel")
        #: Retries, which failed jobs run again, rerun even if cached, priority (:mod:`.form_options`).
        self.options = SubmitChoices()
        self.submit_status = widgets.HTML()
        self.submit_status.add_class("dshpc-form-submit-status")
        self.results = widgets.VBox()
        self.results.add_class("dshpc-form-results")

        super().__init__(
            [
                widgets.HTML(f"<b>dsHPC job form</b> {_note('· ' + self.connection.location)}"),
                _section("1 · Method and parameters"),
                widgets.HBox([self.method, self.reload_button, self.method_help], layout={"align_items": "center"}),
                self.method_error,
                self.parameters,
                _section("2 · Files"),
                self.inputs,
                widgets.HBox([self.add_button, self.add_status], layout={"align_items": "center"}),
                _section("3 · Pending configs"),
                self.pending_summary,
                self.pending_list,
                widgets.HBox([self.remove_button, self.clear_button]),
                _section("4 · Submit"),
                self.options,
                widgets.HBox(
                    [self.submit_button, self.cancel_button, self.submit_status], layout={"align_items": "center"}
                ),
                self.results,
            ]
        )
        self.add_class("dshpc-form")
        self.method.observe(lambda _: self._method_changed(), "value")
        self.reload_button.on_click(self._handler(self.reload, self.method_error))
        self.add_button.on_click(self._handler(self.add, self.add_status))
        self.remove_button.on_click(self._handler(self.remove_selected, self.add_status))
        self.clear_button.on_click(self._handler(self.clear, self.add_status))
        self.submit_button.on_click(self._handler(self.submit, self.submit_status))
        self.cancel_button.on_click(self._handler(self.cancel, self.submit_status))
        self.inputs.on_change = self._inputs_changed
        self._load_methods()
        self._render_pending()

    # --- methods and parameters --------------------------------------------------------------------------

    def _load_methods(self) -> None:
        self.methods = {m.name: m for m in sorted(self.connection.list_methods(), key=lambda m: m.name.lower())}
        chosen = self.method.value if self.method.value in self.methods else None
        with self.method.hold_trait_notifications():
            self.method.options = [(name, name) for name in self.methods]
            self.method.value = chosen
        self._method_changed()

    def reload(self) -> None:
        """Ask the service for its methods and files again (a method registered since, a file uploaded), and
        what it would now do with the pending configs."""
        self._load_methods()
        self.inputs.reload()
        self.refresh_preview(changed=False)

    def _inputs_changed(self) -> None:
        self.add_status.value = ""
        self._count()

    def _method_changed(self) -> None:
        self.method_error.value = ""
        self.add_status.value = ""
        info = self.methods.get(self.method.value) if self.method.value is not None else None
        self.inputs.show_for(info)
        if info is None:
            self._count()
            self.method_help.value = _note(
                "choose a method"
                if self.methods
                else "no methods on this service yet: register one (connection.register_method(path)), then ↻"
            )
            self.parameters.children = []
            return
        self.method_help.value = _note(f"v{info.version} · {info.description}")
        fields = self._fields.get(info.function_hash)
        if fields is None:  # built once per method version: what was typed stays while another is chosen
            fields = self._fields[info.function_hash] = [ParameterField(p) for p in info.parameters]
            for field in fields:
                field.on_edit(self._count)
        self.parameters.children = fields or [widgets.HTML(_note("this method takes no parameters"))]
        self._count()

    def _count(self) -> None:
        """Say on the Add button how many configs it would add now."""
        self.add_button.description = add_label(planned_configs(self.fields, self.inputs))

    @property
    def fields(self) -> list[ParameterField]:
        """The parameter fields of the chosen method."""
        info = self.methods.get(self.method.value) if self.method.value is not None else None
        return list(self._fields.get(info.function_hash, [])) if info is not None else []

    def parameter(self, name: str) -> ParameterField:
        """The field of parameter ``name`` of the chosen method."""
        for field in self.fields:
            if field.param.name == name:
                return field
        known = ", ".join(f.param.name for f in self.fields) or "none"
        raise KeyError(f"{self.method.value!r} has no parameter {name!r} (parameters: {known})")

    # --- adding configs ----------------------------------------------------------------------------------

    def add(self) -> list[dict[str, Any]]:
        """Expand the current choices (method x files x swept values) and append them to the pending configs.
        With a field that cannot be used, each such field shows its error and nothing is added."""
        problems = 0
        if self.method.value is None:
            self.method_error.value = error_html("method: choose a method")
            problems += 1
        fixed: dict[str, Any] = {}
        grid: dict[str, list[Any]] = {}
        for field in self.fields:
            try:
                value = field.read()
            except FieldError as exc:
                field.set_error(exc.problem)
                problems += 1
                continue
            field.set_error("")
            if value is not UNSET:
                (grid if field.swept else fixed)[field.param.name] = value
        inputs, missing = self.inputs.read()
        problems += missing
        if problems:
            self.add_status.value = error_html(f"nothing added: {problems} field(s) to fix (marked ⚠)")
            return []
        try:
            configs = build_input_configs(self.method.value, inputs, fixed, grid, self.inputs.describe())
            with self._lock:
                if len(self._pending) + len(configs) > MAX_CONFIGS:
                    raise FieldError(
                        "add",
                        f"{len(self._pending)} pending + {len(configs)} new configs is more "
                        f"than {MAX_CONFIGS}: submit or clear first",
                    )
                self._pending.extend(configs)
        except FieldError as exc:
            self.add_status.value = error_html(f"nothing added: {exc.problem}")
            return []
        sizes = describe_grid(self.inputs.describe(), grid)
        self.add_status.value = _note(f"added {len(configs)} config(s): {self.method.value}, {sizes}", OK_STYLE)
        self.refresh_preview()
        return configs

    @property
    def pending(self) -> list[dict[str, Any]]:
        """A copy of the pending configs, in the order they will be sent."""
        with self._lock:
            return [dict(c) for c in self._pending]

    def remove_selected(self) -> int:
        """Remove the configs selected in the pending list; how many."""
        chosen = set(self.pending_list.value)
        with self._lock:
            self._pending = [c for i, c in enumerate(self._pending) if i not in chosen]
        self.add_status.value = (
            _note(f"removed {len(chosen)} config(s)")
            if chosen
            else error_html("select configs in the pending list first")
        )
        self.refresh_preview()
        return len(chosen)

    def clear(self) -> None:
        """Drop every pending config."""
        with self._lock:
            dropped, self._pending = len(self._pending), []
        self.add_status.value = _note(f"cleared {dropped} pending config(s)")
        self.refresh_preview()

    # --- preview -----------------------------------------------------------------------------------------

    def refresh_preview(self, *, changed: bool = True) -> None:
        """Ask the service what it would do with each pending config (a dry run: nothing is submitted);
        ``changed``: the pending configs changed (so they are no longer the ones submitted)."""
        with self._lock:
            configs = list(self._pending)
            self._submitted = None if changed else self._submitted
            try:
                results = self.connection.simulate_jobs(configs, dry_run=True).results if configs else []
            except Exception as exc:  # the pending configs stay; the preview says why it is missing
                self._preview, self._preview_problem = None, _message(exc)
            else:
                self._preview, self._preview_problem = results, ""
            self._render_pending()

    def preview_counts(self) -> dict[str, int]:
        """What the service would do with the pending configs: cached, in_progress, new, resubmitted, invalid
        (unknown method or file, bad parameters, refused), as the last preview said."""
        with self._lock:
            outcomes = Counter(r.outcome for r in self._preview or [])
        return {
            "cached": outcomes["cached"],
            "in_progress": outcomes["in_progress"],
            "new": outcomes["new"],
            "resubmitted": outcomes["resubmitted"],
            "invalid": outcomes["invalid"] + outcomes["refused"],
        }

    def preview_text(self) -> str:
        with self._lock:
            count, preview, problem = len(self._pending), self._preview, self._preview_problem
            duplicates = len(find_duplicates(self._pending))
        head = f"{count} pending config(s)"
        if problem:
            return f"{head} · preview unavailable: {problem}"
        if not count or preview is None:
            return head
        c = self.preview_counts()
        after = f" ({c['resubmitted']} after a failure)" if c["resubmitted"] else ""
        same = f" · {duplicates} duplicate(s) share a job" if duplicates else ""
        return (
            f"{head} · preview: {c['cached']} cached · {c['in_progress']} in progress · "
            f"{c['new'] + c['resubmitted']} new{after} · {c['invalid']} invalid{same}"
        )

    def _row_label(self, index: int, config: dict[str, Any], result: MultiJobResult | None) -> str:
        outcome = ""
        if result is not None:
            outcome = OUTCOME_WORDS.get(result.outcome, result.outcome)
            if result.outcome in ("invalid", "refused"):
                outcome += f": {result.message}"
        file_name = self.inputs.describe_config(config)
        parameters = _parameters_text(config.get("parameters"))
        return f"{index + 1}. {config['method_name']} · {file_name} · {parameters}" + (
            f" → {outcome}" if outcome else ""
        )

    def _render_pending(self) -> None:
        with self._lock:
            configs, preview = list(self._pending), self._preview
        results: list[MultiJobResult | None] = list(preview) if preview and len(preview) == len(configs) else []
        results += [None] * (len(configs) - len(results))
        shown = min(len(configs), MAX_PENDING_SHOWN)
        self.pending_list.options = [(self._row_label(i, configs[i], results[i]), i) for i in range(shown)]
        text = self.preview_text()
        invalid = list(
            dict.fromkeys(r.message for r in results if r is not None and r.outcome in ("invalid", "refused"))
        )
        lines = [submitted_note(len(configs), self._submitted)] if self._submitted and configs else []
        lines += [_note(text, "color:#b3261e" if invalid or self._preview_problem else NOTE_STYLE)]
        lines += [error_html(message) for message in invalid[:3]]
        if shown < len(configs):
            lines.append(_note(f"the list shows the first {shown} of {len(configs)}"))
        self.pending_summary.value = "<br>".join(lines)

    # --- submitting --------------------------------------------------------------------------------------

    def submit(self) -> Batch | None:
        """Send the pending configs as one batch and follow it under the form. The pending configs stay, so
        submitting again is harmless: the service serves identical jobs from its cache or joins them."""
        configs = self.pending
        if not configs:
            self.submit_status.value = error_html("nothing to submit: add configs first")
            return None
        options = self.options.read()
        self.submit_button.disabled = True
        try:
            batch = Batch.submit(configs, connection=self.connection, poll=self.poll, **options)
        finally:
            self.submit_button.disabled = False
        self.batch = batch
        self.batches.append(batch)
        if self.out and self.namespace is not None:
            self.namespace[self.out] = batch
        self.submit_status.value = _note(self.submission_text(batch), OK_STYLE)
        with self._lock:
            self._submitted = batch.batch_id
        self._render_pending()
        self._follow(batch)
        return batch

    submission_text = staticmethod(submission_text)

    def _follow(self, batch: Batch) -> None:
        if self._view is not None:
            self._view.close()
        self._settled.clear()
        self._view = BatchView(batch, cancel=False)
        self.results.children = [self._view]
        self.cancel_button.disabled = batch.done
        self._view.follow(on_done=lambda: self._finished(batch))

    def _finished(self, batch: Batch) -> None:
        """In the view's thread once the batch is done: no more cancelling; the preview is out of date (its new
        jobs are now cached or failed), so it is asked again."""
        if batch is not self.batch:  # a newer submission's view has taken over
            return
        try:
            self.cancel_button.disabled = True
            self.refresh_preview(changed=False)
        finally:
            self._settled.set()

    def cancel(self) -> None:
        """Cancel the unfinished jobs of the latest batch (the ones already done keep their results)."""
        batch = self.batch
        if batch is None or batch.done:
            self.submit_status.value = error_html("nothing to cancel: no batch is running")
            return
        unfinished = batch.stats.pending + batch.stats.running + batch.stats.queued
        batch.cancel()
        self.submit_status.value = _note(f"batch {batch.batch_id}: cancel sent for {unfinished} unfinished job(s)")

    def wait(self, timeout: float | None = None) -> Batch | None:
        """Block until the latest batch is done and the form shows it (its display and the preview)."""
        if self.batch is None:
            return None
        self.batch.wait(timeout)
        if not self._settled.wait(timeout):
            raise TimeoutError(f"the form did not show the end of batch {self.batch.batch_id} within {timeout} s")
        return self.batch

    # --- for people and notebooks ------------------------------------------------------------------------

    def summary(self) -> str:
        """The form's state as text: the chosen method and files, the pending configs and the latest batch."""
        lines = [
            f"method: {self.method.value or '(none)'} · files: {len(self.files.selected)} selected",
            self.preview_text(),
        ]
        if self.batch is not None:
            lines.append(f"latest batch {self.batch.batch_id}: {self.batch.stats.summary()}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<dshpc_jupyter.JobForm: {self.preview_text()}>"  # short: ipywidgets cuts its text at 110 characters

    def close(self) -> None:
        if self._view is not None:
            self._view.close()
        super().close()

    def _handler(self, action: Callable[[], Any], status: widgets.HTML) -> Callable[[Any], None]:
        """A click handler running ``action`` and showing its failure in ``status`` (nothing else would)."""

        def handle(_: Any) -> None:
            try:
                action()
            except Exception as exc:
                self.last_error = exc
                status.value = error_html(_message(exc))

        return handle


__all__ = ["JobForm"]
