"""The checks of each config of a call, in the seed's order, set-wise: methods and files are looked up once for
the whole call, and each config leaves with its job key or the message saying why it gets no job."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..domain.configs import Config, ConfigError, FileInputs
from ..domain.errors import InvalidParametersError
from ..domain.hashing import inputs_key, job_key
from ..domain.methods import ParameterSchema
from ..domain.models import MethodSpec, read_config
from ..store.sqlite import Store
from .inputs import declared_inputs_problem, missing_file, resolved_inputs

#: The parameter schema of a method version (cached by the catalogue).
SchemaOf = Callable[[str, MethodSpec], ParameterSchema]


@dataclass(slots=True)
class Checked:
    """One config after the engine's checks: its job key and what a new job needs, or the message saying why it
    gets no job. ``file_hash`` is echoed as sent; the job and its key use the lower-case form."""

    file_hash: str | None
    method_name: str | None
    parameters: Any
    function_hash: str | None = None
    error: str | None = None
    key: str = ""
    canonical: dict[str, Any] | None = None
    file_inputs: Any = None
    #: The named inputs the job runs on: lower-cased, a declared ``multiple`` input always an array.
    inputs: FileInputs | None = None


def prepare(store: Store, schema_of: SchemaOf, items: Sequence[object]) -> list[Checked]:
    """Check every config and compute its job key; errors stay per config."""
    configs = [read_config(item) for item in items]
    valid = [c for c in configs if isinstance(c, Config)]
    methods = store.latest_methods({c.method_name for c in valid})
    with_inputs = (c.file_inputs for c in valid if c.file_inputs)  # most configs name one file_hash instead
    named = (h for inputs in with_inputs for v in inputs.values() for h in ([v] if isinstance(v, str) else v))
    hashes = {c.file_hash.lower() for c in valid if c.file_hash} | {h.lower() for h in named}
    files = store.existing_files(sorted(hashes))
    return [check(config, methods, files, schema_of) for config in configs]


def check(
    config: Config | ConfigError, methods: Mapping[str, tuple[str, MethodSpec]], files: set[str], schema_of: SchemaOf
) -> Checked:
    """The seed's checks of one config, in its order: the config, its method, its file, its parameters."""
    if isinstance(config, ConfigError):
        return Checked(
            config.file_hash, config.method_name, config.parameters, error=config.message,
            file_inputs=config.file_inputs,
        )  # fmt: skip
    file_hash = config.file_hash or None
    method = methods.get(config.method_name)
    if method is None:
        error = f"Method '{config.method_name}' not found"
        return Checked(file_hash, config.method_name, config.parameters, error=error, file_inputs=config.file_inputs)
    checked = Checked(
        file_hash, config.method_name, config.parameters, function_hash=method[0], file_inputs=config.file_inputs
    )
    if config.file_inputs is not None or method[1].inputs is not None:  # the seed's form has nothing to resolve
        inputs_problem = declared_inputs_problem(method[1], config)
        if inputs_problem is not None:
            checked.error = f"Invalid inputs: {inputs_problem}"
            return checked
        checked.inputs = resolved_inputs(method[1], config.file_inputs)
    missing = missing_file(config, files)
    if missing is not None:
        checked.error = missing
        return checked
    try:
        checked.canonical, params_key = schema_of(*method).canonicalize(config.parameters)
    except InvalidParametersError as exc:
        checked.error = f"Invalid parameters: {exc}"
        return checked
    checked.key = job_key(inputs_key(config.file_hash.lower(), checked.inputs), params_key)
    return checked
