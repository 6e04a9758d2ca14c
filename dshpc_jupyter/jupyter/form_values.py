"""What the form's fields mean: text typed into a parameter field, read as values of the parameter's type.

Plain functions, apart from the widgets, so the rules (how a list or a range is read, what "required" means, how
many configs one click may make) are written once and tested without a front end. The service checks every
value again per config; the form's preview (a dry run) shows what it says.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, Final

from ..domain.errors import InvalidInputError
from ..domain.hashing import canonical_json
from ..domain.models import MethodParameter
from ..front.sweep import expand

MAX_VALUES: Final = 1000
"""At most this many values for one swept parameter."""
MAX_CONFIGS: Final = 10_000
"""At most this many configs from one "Add" (and pending at once): the grid is checked before it is expanded."""
NUMERIC: Final = frozenset({"integer", "number"})
TRUE_WORDS: Final = frozenset({"true", "yes", "on", "1"})
FALSE_WORDS: Final = frozenset({"false", "no", "off", "0"})
_TYPE_WORDS: Final = {
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "array": "a JSON list",
    "object": "a JSON object",
    "string": "text",
}


class FieldError(InvalidInputError):
    """A form field the form cannot use. ``field`` names it (a parameter, ``method`` or ``files``);
    ``problem`` is the message shown next to it."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


def _number(param: MethodParameter, text: str) -> int | float:
    try:
        value = float(text)
    except ValueError:
        raise FieldError(param.name, f"{text!r} is not {_TYPE_WORDS[param.type]}") from None
    if not math.isfinite(value):
        raise FieldError(param.name, f"{text!r} is not a finite number")
    if param.type == "integer":
        if not value.is_integer():
            raise FieldError(param.name, f"{text!r} is not an integer")
        return int(text) if text.lstrip("+-").isdigit() else int(value)
    return value + 0.0


def parse_value(param: MethodParameter, text: str) -> Any:
    """One value typed as text, as the parameter's type (numbers, true/false words, JSON for lists and
    objects, text as typed); a choice must be one of the spec's choices."""
    stripped = text.strip()
    value: Any
    if param.type in NUMERIC:
        value = _number(param, stripped)
    elif param.type == "boolean":
        word = stripped.lower()
        if word not in TRUE_WORDS | FALSE_WORDS:
            raise FieldError(param.name, f"{text!r} is not true or false")
        value = word in TRUE_WORDS
    elif param.type in ("array", "object"):
        try:
            value = json.loads(stripped)
        except ValueError:
            raise FieldError(param.name, f"{_short(text)!r} is not {_TYPE_WORDS[param.type]}") from None
        if not isinstance(value, list if param.type == "array" else dict):
            raise FieldError(param.name, f"{_short(text)!r} is not {_TYPE_WORDS[param.type]}")
    else:
        value = text
    check_choice(param, value)
    return value


def check_choice(param: MethodParameter, value: Any) -> None:
    if param.choices is not None and value not in param.choices:
        choices = ", ".join(str(c) for c in param.choices)
        raise FieldError(param.name, f"{_short(str(value))!r} is not one of: {choices}")


def _short(text: str, width: int = 40) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def parse_list(param: MethodParameter, text: str) -> list[Any]:
    """Comma-separated values (or a JSON list, for text that holds commas), as the parameter's type; repeats
    are dropped (they would be the same jobs)."""
    stripped = text.strip()
    if not stripped:
        raise FieldError(param.name, "give the values to sweep, separated by commas")
    if param.type in ("array", "object"):
        raise FieldError(param.name, f"{param.type} parameters cannot be swept in the form; give one value")
    if stripped.startswith("["):
        try:
            items = json.loads(stripped)
        except ValueError:
            raise FieldError(param.name, "starts with '[' but is not a JSON list") from None
        texts = [item if isinstance(item, str) else json.dumps(item) for item in items]
    else:
        texts = [item.strip() for item in stripped.split(",")]
        empty = [i + 1 for i, item in enumerate(texts) if not item]
        if empty:
            raise FieldError(param.name, f"value {empty[0]} of the list is empty")
    if not texts:
        raise FieldError(param.name, "the list is empty")
    values = list({canonical_json(v): v for v in (parse_value(param, t) for t in texts)}.values())
    if len(values) > MAX_VALUES:
        raise FieldError(param.name, f"{len(values)} values; at most {MAX_VALUES} in one sweep")
    return values


def _tidy(value: float) -> float:
    """0.1 + 2 * 0.2 as 0.5, not 0.5000000000000001: a range's values as a person would write them."""
    return float(f"{value:.12g}") + 0.0


def parse_range(param: MethodParameter, start: float, stop: float, step: float) -> list[Any]:
    """``start``, ``start + step``, ... up to ``stop`` included (when the steps land on it)."""
    if param.type not in NUMERIC:
        raise FieldError(param.name, "only integer and number parameters take a range")
    if not all(math.isfinite(v) for v in (start, stop, step)):
        raise FieldError(param.name, "the range's from, to and step must be finite numbers")
    if step == 0:
        raise FieldError(param.name, "the range's step must not be 0")
    if (stop - start) * step < 0:
        direction = "positive" if stop > start else "negative"
        raise FieldError(param.name, f"from {start:g} to {stop:g} needs a {direction} step, got {step:g}")
    if param.type == "integer" and not all(float(v).is_integer() for v in (start, stop, step)):
        raise FieldError(param.name, "an integer range needs integer from, to and step")
    count = math.floor((stop - start) / step + 1e-9) + 1
    if count > MAX_VALUES:
        raise FieldError(param.name, f"the range gives {count} values; at most {MAX_VALUES} in one sweep")
    values: list[Any]
    if param.type == "integer":
        values = [int(start) + i * int(step) for i in range(count)]
    else:
        values = [_tidy(start + i * step) for i in range(count)]
    for value in values:
        check_choice(param, value)
    return values


def range_defaults(param: MethodParameter) -> tuple[float, float, float]:
    """A range's first from, to and step: three values starting at the default (0 without one), a step of 1
    for an integer and, for a number, of the default's order of magnitude (0.5 gives 0.5, 0.6, 0.7), so a range
    sweeps something as soon as it is chosen."""
    default = param.default
    start = default if isinstance(default, int | float) and not isinstance(default, bool) else 0
    if param.type == "integer":
        return int(start), int(start) + 2, 1
    step = 10.0 ** math.floor(math.log10(abs(start))) if start else 0.1
    return float(start), _tidy(start + 2 * step), step


def count_configs(files: int, grid: Mapping[str, Sequence[Any]]) -> int:
    return files * math.prod(len(values) for values in grid.values())


def describe_grid(files: int | str, grid: Mapping[str, Sequence[Any]]) -> str:
    """ "2 file(s) × 3 values of threshold": what a number of configs is made of (``files`` a count of files,
    or the form's own words for its inputs; empty for none)."""
    head = f"{files} file(s)" if isinstance(files, int) else files
    return " × ".join([*([head] if head else []), *(f"{len(v)} values of {k}" for k, v in grid.items())]) or "1 config"


_STAND_IN: Final = "0" * 64
"""The one file the parameter grid is expanded over before it is crossed with the inputs (never sent)."""


def build_configs(
    method: str, file_hashes: Sequence[str], fixed: Mapping[str, Any], grid: Mapping[str, Sequence[Any]]
) -> list[dict[str, Any]]:
    """The configs of one "Add" with the single file picker: the method x files x grid, each with ``file_hash``."""
    return build_input_configs(method, [{"file_hash": h} for h in file_hashes], fixed, grid, len(file_hashes))


def build_input_configs(
    method: str,
    inputs: Sequence[Mapping[str, Any]],
    fixed: Mapping[str, Any],
    grid: Mapping[str, Sequence[Any]],
    described: int | str,
) -> list[dict[str, Any]]:
    """The configs of one "Add": each input choice (``{"file_hash": h}``, ``{"file_inputs": {...}}`` or ``{}``)
    x the grid, in that order. The grid is expanded by the same code as a ``%%dshpc_batch`` sweep (over one
    stand-in file, so the three input forms share it), after checking the count so a huge grid is refused
    before it is built; ``described`` says what the inputs are in the error."""
    count = count_configs(len(inputs), grid)
    if count > MAX_CONFIGS:
        raise FieldError("add", f"{describe_grid(described, grid)} = {count} configs; at most {MAX_CONFIGS} at once")
    document = {
        "method": method,
        "files": [_STAND_IN],
        "parameters": dict(fixed),
        "grid": {k: list(v) for k, v in grid.items()},
    }
    combos = [c["parameters"] for c in expand(document).configs]
    return [{**dict(choice), "method_name": method, "parameters": dict(p)} for choice in inputs for p in combos]


def format_size(size: int) -> str:
    """Bytes for people: 512 B, 1.2 kB, 3.4 MB (powers of 1000, as file managers show them)."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000:
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


__all__ = [
    "MAX_CONFIGS",
    "MAX_VALUES",
    "FieldError",
    "build_configs",
    "build_input_configs",
    "count_configs",
    "describe_grid",
    "format_size",
    "parse_list",
    "parse_range",
    "parse_value",
]
