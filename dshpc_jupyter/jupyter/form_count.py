"""How many configs the form's "Add" would make, said on the button before it is clicked ("Add (12 configs)").

Counted from the fields and file pickers without building the configs and without marking anything as an error
(a field that cannot be read yet leaves the count unsaid), so it can follow every keystroke.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from .form_fields import UNSET, ParameterField
from .form_inputs import FileInputs
from .form_values import FieldError


def field_count(field: ParameterField) -> int | None:
    """The values a field gives one Add: 1 for one value (or none), a sweep's length; ``None`` while unreadable."""
    try:
        value = field.read()
    except FieldError:
        return None
    if value is UNSET or not field.swept:
        return 1
    return len(value)


def input_count(inputs: FileInputs) -> int | None:
    """The input choices of one Add (files, or combinations of the declared inputs' files); ``None`` while a
    required one has nothing selected."""
    if not inputs.declares_inputs:
        return len(inputs.single.selected) or None
    counts = []
    for shown in inputs.pickers:
        selected = len(shown.picker.selected)
        if not selected:
            if shown.declared.required:
                return None
            continue
        counts.append(1 if shown.declared.multiple else selected)
    return math.prod(counts)


def planned_configs(fields: Sequence[ParameterField], inputs: FileInputs) -> int | None:
    """What one Add would make now (``None``: not yet known)."""
    counts = [input_count(inputs), *(field_count(f) for f in fields)]
    return None if any(c is None for c in counts) else math.prod(c for c in counts if c is not None)


def add_label(count: int | None) -> str:
    return "Add" if count is None else f"Add ({count} config{'' if count == 1 else 's'})"


__all__ = ["add_label", "planned_configs"]
