"""One parameter of a method as form widgets: its input, its sweep modes and the error shown beside it.

The input follows the spec: a checkbox for a boolean, a number box holding the default for an integer or a
number, a dropdown for a parameter with choices, a text box otherwise (and for a number without a default, so
that "not given" can be told from 0). Each field can be switched to a sweep: a list of values, or (for numbers)
a range with a step.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from typing import Any, Final

import ipywidgets as widgets

from ..domain.models import MethodParameter
from .form_values import NUMERIC, FieldError, parse_list, parse_range, parse_value, range_defaults

VALUE, LIST, RANGE = "value", "list", "range"
UNSET: Final = object()
"""What :meth:`ParameterField.read` returns for an optional parameter left empty: not sent, the default applies."""
LABEL_WIDTH: Final = "170px"
INPUT_WIDTH: Final = "220px"
NO_CHOICE: Final = "—"
ERROR_STYLE: Final = "color:#b3261e"


def error_html(message: str) -> str:
    return f'<span style="{ERROR_STYLE}">⚠ {html.escape(message)}</span>' if message else ""


def _input(param: MethodParameter) -> widgets.Widget:
    """The widget for one value of ``param``, holding its default."""
    layout = {"width": INPUT_WIDTH}
    default = param.default
    if param.choices is not None:
        options: list[tuple[str, Any]] = [(str(c), c) for c in param.choices]
        if default not in param.choices:
            options.insert(0, (NO_CHOICE, UNSET))
            default = UNSET
        return widgets.Dropdown(options=options, value=default, layout=layout)
    if param.type == "boolean":
        return widgets.Checkbox(value=bool(default), indent=False, layout={"width": "auto"})
    if param.type == "integer" and isinstance(default, int) and not isinstance(default, bool):
        return widgets.IntText(value=default, layout=layout)
    if param.type == "number" and isinstance(default, int | float) and not isinstance(default, bool):
        return widgets.FloatText(value=float(default), layout=layout)
    if param.type in ("array", "object"):
        text = "" if default is None else json.dumps(default)
        return widgets.Text(value=text, placeholder=f"JSON {param.type}", layout=layout)
    placeholder = "required" if param.required else ("(not set)" if default is None else "")
    if param.type in NUMERIC:
        placeholder = f"{param.type}, {placeholder}" if placeholder else param.type
    return widgets.Text(value="" if default is None else str(default), placeholder=placeholder, layout=layout)


class ParameterField(widgets.VBox):  # type: ignore[misc]
    """The widgets of one parameter: label (``*`` = required; the description as tooltip and help text),
    mode (one value, a list, a range), the inputs of that mode, and an error line under them."""

    def __init__(self, param: MethodParameter) -> None:
        self.param = param
        mark = ' <span style="color:#b3261e" title="required">*</span>' if param.required else ""
        tooltip = param.description or param.name
        self.label = widgets.HTML(
            f"<b>{html.escape(param.name)}</b>{mark}", tooltip=tooltip, layout={"width": LABEL_WIDTH}
        )
        self.input = _input(param)
        self.input.tooltip = tooltip
        modes = [VALUE] if param.type in ("array", "object") else [VALUE, LIST]
        if param.type in NUMERIC and param.choices is None:
            modes.append(RANGE)
        self.mode = widgets.ToggleButtons(
            options=modes,
            value=VALUE,
            tooltips=["one value", "sweep: comma-separated values", "sweep: from, to, step (to included)"][
                : len(modes)
            ],
            style={"button_width": "62px"},
            layout={"width": "auto"},
        )
        example = ", ".join(str(c) for c in param.choices[:3]) if param.choices else _list_example(param)
        self.values_text = widgets.Text(placeholder=f"e.g. {example}", tooltip=tooltip, layout={"width": INPUT_WIDTH})
        number = widgets.IntText if param.type == "integer" else widgets.FloatText
        start, stop, step = range_defaults(param) if param.type in NUMERIC else (0, 2, 1)
        self.start = number(
            value=start, description="from", layout={"width": "120px"}, style={"description_width": "34px"}
        )
        self.stop = number(value=stop, description="to", layout={"width": "110px"}, style={"description_width": "22px"})
        self.step = number(
            value=step, description="step", layout={"width": "120px"}, style={"description_width": "34px"}
        )
        self.inputs = widgets.HBox([self.input])
        self.help = widgets.HTML(f'<span style="color:#666">{html.escape(param.description)}</span>')
        self.error = widgets.HTML()
        row = (
            [self.label, self.mode, self.inputs, self.help] if len(modes) > 1 else [self.label, self.inputs, self.help]
        )
        super().__init__([widgets.HBox(row, layout={"align_items": "center"}), self.error])
        self.add_class("dshpc-param")
        self.add_class(f"dshpc-param-{_css_name(param.name)}")
        self.mode.observe(self._mode_changed, "value")

    def on_edit(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` whenever the field's mode or any of its inputs changes (the form's config count)."""
        for widget in (self.mode, self.input, self.values_text, self.start, self.stop, self.step):
            widget.observe(lambda _: callback(), "value")

    def _mode_changed(self, change: dict[str, Any]) -> None:
        self.inputs.children = {
            VALUE: [self.input],
            LIST: [self.values_text],
            RANGE: [self.start, self.stop, self.step],
        }[change["new"]]
        self.set_error("")

    @property
    def swept(self) -> bool:
        return bool(self.mode.value != VALUE)

    def set_error(self, message: str) -> None:
        self.error.value = error_html(message)

    @property
    def error_text(self) -> str:
        """The error shown beside the field, as text ("" when none)."""
        return html.unescape(self.error.value).removeprefix(f'<span style="{ERROR_STYLE}">⚠ ').removesuffix("</span>")

    def read(self) -> Any:
        """The value to send (one value), the list of values (a sweep), or :data:`UNSET`; FieldError when the
        input cannot be used."""
        if self.mode.value == LIST:
            return parse_list(self.param, self.values_text.value)
        if self.mode.value == RANGE:
            return parse_range(self.param, self.start.value, self.stop.value, self.step.value)
        value = self.input.value
        if value is UNSET or (isinstance(self.input, widgets.Text) and not value.strip()):
            if self.param.required:
                raise FieldError(self.param.name, "required")
            return UNSET
        if isinstance(self.input, widgets.Text):
            value = parse_value(self.param, value)
        if not self.param.required and _same(value, self.param.default):
            return UNSET  # the default: left out, so the config shows only what was chosen
        return value


def _same(value: Any, default: Any) -> bool:
    """Equal as parameter values: 1 and 1.0 are, True and 1 are not."""
    return isinstance(value, bool) == isinstance(default, bool) and bool(value == default)


def _list_example(param: MethodParameter) -> str:
    return {"integer": "1, 2, 5", "number": "0.1, 0.5, 0.9", "boolean": "true, false"}.get(param.type, "a, b, c")


def _css_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in name)


__all__ = ["LIST", "RANGE", "UNSET", "VALUE", "ParameterField", "error_html"]
