"""The form's inputs section: the single file picker, or one picker per input the chosen method declares.

A method that declares no inputs keeps the seed's single picker and ``file_hash`` configs; one declaring an
empty list takes parameters only (no picker); otherwise each declared input gets its own :class:`.FilePicker`
and "Add" builds ``file_inputs`` (docs/design.md section 8.1): a single input is one sweep dimension (one config
per selected file), a ``multiple`` input sends all its selected files, in the order shown, as one array.
"""

from __future__ import annotations

import html
import itertools
from collections.abc import Callable, Mapping
from typing import Any

import ipywidgets as widgets

from ..domain.models import MethodInfo, MethodInput
from ..front.connection import Connection
from .form_files import FilePicker

REQUIRED_MARK = ' <span style="color:#b3261e" title="required">*</span>'


class InputPicker(widgets.VBox):  # type: ignore[misc]
    """One declared input: its label (name, ``*`` when required, description, one file or a list) and a picker."""

    def __init__(self, declared: MethodInput, connection: Connection, on_change: Callable[[], None] | None) -> None:
        self.declared = declared
        self.picker = FilePicker(connection, on_change)
        kind = "files, sent as one list in the order shown" if declared.multiple else "one job per selected file"
        about = f" — {html.escape(declared.description)}" if declared.description else ""
        self.label = widgets.HTML(
            f"<b>{html.escape(declared.name)}</b>{REQUIRED_MARK if declared.required else ''}{about} "
            f'<span style="color:#666">({kind})</span>'
        )
        super().__init__([self.label, self.picker])


class FileInputs(widgets.VBox):  # type: ignore[misc]
    """What section 2 of the form shows for the chosen method, and the input part of each config it adds."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        #: The seed's single picker, for methods that declare no inputs (``form.files``).
        self.single = FilePicker(connection)
        #: function_hash -> the pickers of its declared inputs: built once, so selections stay across methods.
        self._pickers: dict[str, list[InputPicker]] = {}
        self._info: MethodInfo | None = None
        self._none = widgets.HTML('<span style="color:#666">this method takes no files (parameters only)</span>')
        self._on_change: Callable[[], None] | None = None
        super().__init__([self.single])

    def _every_picker(self) -> list[FilePicker]:
        """The single picker and those of every method's declared inputs built so far."""
        return [self.single, *(shown.picker for pickers in self._pickers.values() for shown in pickers)]

    @property
    def on_change(self) -> Callable[[], None] | None:
        return self._on_change

    @on_change.setter
    def on_change(self, callback: Callable[[], None] | None) -> None:
        """Called when any picker's selection changes (the form clears its "added" note)."""
        self._on_change = callback
        for picker in self._every_picker():
            picker.on_change = callback

    def show_for(self, info: MethodInfo | None) -> None:
        """Show the pickers of this method (the single picker for none or a method declaring no inputs)."""
        self._info = info
        if info is None or info.inputs is None:
            self.children = [self.single]
        elif not info.inputs:
            self.children = [self._none]
        else:
            if info.function_hash not in self._pickers:
                self._pickers[info.function_hash] = [
                    InputPicker(i, self.connection, self._on_change) for i in info.inputs
                ]
            self.children = self._pickers[info.function_hash]

    @property
    def declares_inputs(self) -> bool:
        """Whether the chosen method declares its inputs (its own pickers, or none), not the single picker."""
        return self._info is not None and self._info.inputs is not None

    @property
    def pickers(self) -> list[InputPicker]:
        """The pickers of the chosen method's declared inputs (none for the single-picker and parameters-only)."""
        info = self._info
        return list(self._pickers.get(info.function_hash, [])) if info is not None else []

    def picker(self, name: str) -> FilePicker:
        """The file picker of declared input ``name`` of the chosen method."""
        for shown in self.pickers:
            if shown.declared.name == name:
                return shown.picker
        known = ", ".join(p.declared.name for p in self.pickers) or "none"
        raise KeyError(f"the chosen method declares no input {name!r} (inputs: {known})")

    def reload(self) -> None:
        """Ask the service for its files again, for every picker built so far."""
        for picker in self._every_picker():
            picker.reload()

    def read(self) -> tuple[list[dict[str, Any]], int]:
        """The input part of each config to add (the cartesian product of the single inputs' files), and how
        many pickers show an error (a required input, or the single picker, with nothing selected)."""
        info = self._info
        if info is None or info.inputs is None:
            if not self.single.selected:
                self.single.set_error("files: choose at least one file (or upload one)")
                return [], 1
            return [{"file_hash": h} for h in self.single.selected], 0
        dimensions: list[list[tuple[str, str | list[str]]]] = []
        problems = 0
        for shown in self.pickers:
            name, selected = shown.declared.name, shown.picker.selected
            if not selected:
                if shown.declared.required:
                    shown.picker.set_error(f"{name}: required input, choose at least one file (or upload one)")
                    problems += 1
                continue  # an optional input left empty is not sent
            dimensions.append([(name, selected)] if shown.declared.multiple else [(name, h) for h in selected])
        if problems:
            return [], problems
        if not dimensions:
            return [{}], 0
        return [{"file_inputs": dict(combo)} for combo in itertools.product(*dimensions)], 0

    def describe(self) -> int | str:
        """What the inputs of one "Add" are made of, for its note: a count of files for the single picker."""
        info = self._info
        if info is None or info.inputs is None:
            return len(self.single.selected)
        parts = []
        for shown in self.pickers:
            count = len(shown.picker.selected)
            if count:
                parts.append(
                    f"{shown.declared.name}: a list of {count}"
                    if shown.declared.multiple
                    else f"{count} {shown.declared.name} file(s)"
                )
        return " × ".join(parts)

    def _name_of(self, file_hash: str) -> str:
        """A file's name from whichever picker knows it: each one reloads only itself after an upload."""
        for picker in self._every_picker():
            if picker.knows(file_hash):
                return picker.name_of(file_hash)
        return self.single.name_of(file_hash)

    def describe_config(self, config: Mapping[str, Any]) -> str:
        """A config's inputs for the pending list: file names and short hashes, by input name."""
        if "file_hash" in config:
            return self._name_of(str(config["file_hash"]))
        named = config.get("file_inputs")
        if not isinstance(named, Mapping):
            return "no files"

        def names(value: Any) -> str:
            if isinstance(value, list):
                return "[" + ", ".join(self._name_of(str(h)) for h in value) + "]"
            return self._name_of(str(value))

        return ", ".join(f"{k}={names(v)}" for k, v in named.items())


__all__ = ["FileInputs", "InputPicker"]
