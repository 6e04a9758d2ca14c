"""A config's inputs against its method (docs/design.md section 8.1): the checks of a declared ``inputs`` list,
the inputs a job runs on, and the first input the store lacks. Each problem is a per-config message."""

from __future__ import annotations

from ..domain.configs import Config, FileInputs
from ..domain.hashing import normalized_inputs
from ..domain.models import MethodSpec


def declared_inputs_problem(spec: MethodSpec, config: Config) -> str | None:
    """Why a config's inputs do not fit the inputs its method declares, naming the input; None when they fit
    (a method that declares none takes any form)."""
    if spec.inputs is None:
        return None
    declared = {i.name: i for i in spec.inputs}
    names = ", ".join(declared) or "none"
    if config.file_hash:
        return f"method '{spec.name}' takes named inputs ({names}): give field 'file_inputs', not 'file_hash'"
    given = config.file_inputs or {}
    for name, value in given.items():
        declaration = declared.get(name)
        if declaration is None:
            return f"input '{name}' is not declared by method '{spec.name}' (its inputs: {names})"
        if isinstance(value, list) and not declaration.multiple:
            return f"input '{name}' takes one file hash, got an array"
    for declaration in spec.inputs:
        if declaration.required and declaration.name not in given:
            return f"input '{declaration.name}' is required by method '{spec.name}'"
    return None


def resolved_inputs(spec: MethodSpec, file_inputs: FileInputs | None) -> FileInputs | None:
    """The named inputs a job runs on: hashes lower-cased, and a single hash given for a declared ``multiple``
    input as an array of one (so both spellings are one job)."""
    if file_inputs is None:
        return None
    multiple = {i.name for i in spec.inputs or [] if i.multiple}
    inputs = normalized_inputs(file_inputs)
    return {k: [v] if isinstance(v, str) and k in multiple else v for k, v in inputs.items()}


def missing_file(config: Config, stored: set[str]) -> str | None:
    """The message for the first input the store lacks (the seed's words for its single file), or None."""
    if config.file_inputs is None:
        if config.file_hash and config.file_hash.lower() not in stored:
            return f"File '{config.file_hash}' not found"
        return None
    for name, value in config.file_inputs.items():
        for file_hash in [value] if isinstance(value, str) else value:
            if file_hash.lower() not in stored:
                return f"File '{file_hash}' (input '{name}') not found"
    return None
