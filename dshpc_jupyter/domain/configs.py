"""One config of a ``simulate-jobs`` call, read into a type: the one check of its three fields.

The request model (:class:`.models.MultiJobSimulationRequest`), the engine and the batch documents
(``front/sweep.py``) all read configs with :func:`parse_config`, so a problem has one message wherever it is
found. A config that cannot be read is not an exception: it becomes a :class:`ConfigError`, answered in its
own result row, because one bad config never stops the others (docs/design.md section 3). Whether its method,
file and parameters exist is the engine's question; the parameters are checked by the method's schema.
"""

from __future__ import annotations

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


@dataclass(slots=True)
class Config:
    """A config whose ``method_name`` and ``file_hash`` are strings; its parameters are still as sent.

    Not frozen: a request builds one per config, and a frozen dataclass takes three times as long to build.
    """

    file_hash: str
    method_name: str
    parameters: Any


@dataclass(frozen=True, slots=True)
class ConfigError:
    """A config that cannot be read: the field at fault (None when the config itself is not an object), the
    problem, and what its result row echoes of it (the fields that were strings, the parameters as sent)."""

    field: str | None
    problem: str
    file_hash: str | None = None
    method_name: str | None = None
    parameters: Any = None

    @property
    def message(self) -> str:
        """The message of its result row (the seed's wording)."""
        where = f"field '{self.field}' " if self.field is not None else ""
        return f"Invalid config: {where}{self.problem}"


def parse_config(item: object) -> Config | ConfigError:
    """One config as sent (a JSON object, any mapping, or one already read) into a typed config or the
    error naming its first bad field (``method_name`` is checked before ``file_hash``)."""
    if type(item) is dict:  # the common case, from a request body: checked without building an error
        file_hash, method_name = item.get("file_hash"), item.get("method_name")
        if type(file_hash) is str and type(method_name) is str:
            return Config(file_hash, method_name, item.get("parameters", {}))
    elif isinstance(item, Config | ConfigError):
        return item
    if not isinstance(item, Mapping):
        return ConfigError(None, f"a job must be a JSON object, got {json_type(item)}")
    file_hash, method_name, parameters = item.get("file_hash"), item.get("method_name"), item.get("parameters", {})
    if isinstance(file_hash, str) and isinstance(method_name, str):
        return Config(file_hash, method_name, parameters)
    field, value = ("method_name", method_name) if not isinstance(method_name, str) else ("file_hash", file_hash)
    problem = "is required" if value is None else f"must be a string, got {json_type(value)}"
    return ConfigError(
        field,
        problem,
        file_hash if isinstance(file_hash, str) else None,
        method_name if isinstance(method_name, str) else None,
        parameters,
    )
