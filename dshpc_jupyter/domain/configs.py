"""One config of a ``simulate-jobs`` call, read into a type: the one check of its three fields.

The request model (:class:`.models.MultiJobSimulationRequest`), the engine and the batch documents
(``front/sweep.py``) all read configs with :func:`parse_config`, so a problem has one message wherever it is
found. A config that cannot be read is not an exception: it becomes a :class:`ConfigError`, answered in its
own result row, because one bad config never stops the others (docs/design.md section 3). Whether its method,
file and parameters exist is the engine's question; the parameters are checked by the method's schema.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: The names a message gives a value's type: JSON's, as the wire and the seed's messages say them.
JSON_TYPES: Mapping[type, str] = {
    bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object",
}  # fmt: skip
#: The same for batch documents, which are YAML (or Python) before they are JSON.
DOCUMENT_TYPES: Mapping[type, str] = {**JSON_TYPES, list: "list", dict: "mapping"}


def json_type(value: object, names: Mapping[type, str] = JSON_TYPES) -> str:
    """The name of a value's type for a message ("got integer"): the nearest JSON type it is an instance of,
    else its Python name (``bool`` is found before ``int``, being first in its own MRO)."""
    if value is None:
        return "null"
    for kind in type(value).__mro__:
        name = names.get(kind)
        if name is not None:
            return name
    return type(value).__name__


#: What ``file_inputs`` maps each input name to: one file hash, or an ordered array of them.
FileInputs = dict[str, str | list[str]]
INPUT_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}")


@dataclass(slots=True)
class Config:
    """A config whose ``method_name`` is a string and whose inputs are named one way (docs/design.md section
    8.1): ``file_hash`` (the seed's form), ``file_inputs``, or neither (``file_hash`` is then ``""``); its
    parameters are still as sent.

    Not frozen: a request builds one per config, and a frozen dataclass takes three times as long to build.
    """

    file_hash: str
    method_name: str
    parameters: Any
    file_inputs: FileInputs | None = None


@dataclass(frozen=True, slots=True)
class ConfigError:
    """A config that cannot be read: the field at fault (None when the config itself is not an object), the
    problem, and what its result row echoes of it (the fields that were strings, the parameters as sent)."""

    field: str | None
    problem: str
    file_hash: str | None = None
    method_name: str | None = None
    parameters: Any = None
    file_inputs: Any = None

    @property
    def message(self) -> str:
        """The message of its result row (the seed's wording)."""
        where = f"field '{self.field}' " if self.field is not None else ""
        return f"Invalid config: {where}{self.problem}"


def parse_config(item: object) -> Config | ConfigError:
    """One config as sent (a JSON object, any mapping, or one already read) into a typed config or the
    error naming its first bad field (``method_name`` first, then the inputs)."""
    if type(item) is dict:  # the common case, from a request body: checked without building an error
        file_hash, method_name = item.get("file_hash"), item.get("method_name")
        if type(file_hash) is str and type(method_name) is str and "file_inputs" not in item:
            return Config(file_hash, method_name, item.get("parameters", {}))
    elif isinstance(item, Config | ConfigError):
        return item
    if not isinstance(item, Mapping):
        return ConfigError(None, f"a job must be a JSON object, got {json_type(item)}")
    file_hash, method_name, parameters = item.get("file_hash"), item.get("method_name"), item.get("parameters", {})
    inputs = item.get("file_inputs")
    field, problem = _inputs_problem(file_hash, inputs)
    if not isinstance(method_name, str):
        field, value = "method_name", method_name
        problem = "is required" if value is None else f"must be a string, got {json_type(value)}"
    if problem is None:
        assert isinstance(method_name, str)
        return Config(file_hash or "", method_name, parameters, dict(inputs) if inputs is not None else None)
    return ConfigError(
        field,
        problem,
        file_hash if isinstance(file_hash, str) else None,
        method_name if isinstance(method_name, str) else None,
        parameters,
        inputs,
    )


def _inputs_problem(file_hash: object, inputs: object) -> tuple[str | None, str | None]:
    """The field at fault in how a config names its inputs and the problem, or (None, None)."""
    if file_hash is not None and inputs is not None:
        return "file_inputs", "cannot be given together with field 'file_hash': name the inputs one way"
    if file_hash is not None and not isinstance(file_hash, str):
        return "file_hash", f"must be a string, got {json_type(file_hash)}"
    if inputs is None:
        return None, None
    if not isinstance(inputs, Mapping):
        return "file_inputs", f"must be an object from input name to file hash, got {json_type(inputs)}"
    for name, value in inputs.items():
        where = f"file_inputs.{name}"
        if not isinstance(name, str) or INPUT_NAME.fullmatch(name) is None:
            return "file_inputs", f"input name {name!r} must be 1-64 of A-Z a-z 0-9 _ . - (not starting with '.')"
        if isinstance(value, list):
            if not value:
                return where, "must not be an empty array"
            bad = [v for v in value if not isinstance(v, str)]  # a list, so that a null item is found too
            if bad:
                return where, f"must be an array of file hashes (strings), got an item of type {json_type(bad[0])}"
        elif not isinstance(value, str):
            return where, f"must be a file hash or an array of them, got {json_type(value)}"
    return None, None
