"""Pipelines: named steps whose inputs and parameters may reference other steps (docs/design.md section 10).

A step is a config (``method_name``, ``parameters``, ``file_hash`` or ``file_inputs`` or neither) plus
``after``. Wherever a file hash may stand, ``{"$ref": step}`` (that step's stdout, as a file) or ``{"$ref":
step, "output": name}`` (one of its output files) may stand instead; wherever a parameter value may stand,
``{"$ref": step, "path": "a/b"}`` (a value inside its JSON output; no path: the whole output). References and
``after`` are the step's dependencies. Here the whole pipeline is read and checked (unknown steps, cycles,
malformed references) before anything runs, and a step's references are resolved to the content its upstream
produced, so the step becomes an ordinary config whose job key is the content's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .configs import INPUT_NAME, json_type
from .errors import InvalidInputError

STEP_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
REF = "$ref"
#: The keys a reference object may have besides ``$ref``.
REF_KEYS = frozenset({REF, "output", "path"})
STEP_KEYS = frozenset({"method_name", "parameters", "file_hash", "file_inputs", "after"})
MAX_STEPS = 50_000


@dataclass(frozen=True, slots=True)
class Ref:
    """A reference to another step's result: a file (``output`` names an output file, None its stdout) where
    an input is expected, a JSON value (``path`` inside its output) where a parameter is."""

    step: str
    output: str | None = None
    path: str | None = None


@dataclass(frozen=True, slots=True)
class Step:
    """One step as submitted: its config with references still in it, and the steps it waits for."""

    name: str
    method_name: str
    parameters: dict[str, Any]
    file_hash: str | Ref | None = None
    file_inputs: dict[str, str | Ref | list[str | Ref]] | None = None
    after: tuple[str, ...] = ()
    #: Every step it depends on (references, then ``after``), each once, in the order written.
    depends_on: tuple[str, ...] = field(default=())

    def wire(self) -> dict[str, Any]:
        """The step as JSON again (how the store keeps it)."""
        out: dict[str, Any] = {"method_name": self.method_name, "parameters": _wire(self.parameters)}
        if self.file_hash is not None:
            out["file_hash"] = _wire(self.file_hash)
        if self.file_inputs is not None:
            out["file_inputs"] = _wire(self.file_inputs)
        if self.after:
            out["after"] = list(self.after)
        return out


@dataclass(frozen=True, slots=True)
class Upstream:
    """What a completed step produced, as its dependents read it: its stdout text and output files; and how
    its stdout becomes a file (stored on demand, so only steps that need it pay for it)."""

    output: str | None
    output_files: Mapping[str, str]
    stdout_file: Callable[[], str]


class StepResolutionError(InvalidInputError):
    """A reference that names something the upstream step did not produce: the step's own failure."""


# --- reading ---------------------------------------------------------------------------------------------


def parse_pipeline(steps: object) -> dict[str, Step]:
    """Every step read and the whole checked: InvalidInputError names the step, the field and the problem."""
    if not isinstance(steps, Mapping):
        raise InvalidInputError(f"steps: must be an object from step name to step, got {json_type(steps)}")
    if not steps:
        raise InvalidInputError("steps: a pipeline needs at least one step")
    if len(steps) > MAX_STEPS:
        raise InvalidInputError(f"steps: {len(steps)} steps is over the limit of {MAX_STEPS}")
    parsed = {}
    for name, raw in steps.items():
        if not isinstance(name, str) or STEP_NAME.fullmatch(name) is None:
            raise InvalidInputError(f"steps: step name {name!r} must be 1-64 of A-Z a-z 0-9 _ . - (not first . -)")
        parsed[name] = read_step(name, raw)
    for step in parsed.values():
        for dep in step.depends_on:
            if dep not in parsed:
                raise InvalidInputError(
                    f"steps.{step.name}: references step '{dep}', which is not in the pipeline "
                    f"(steps: {', '.join(sorted(parsed))})"
                )
            if dep == step.name:
                raise InvalidInputError(f"steps.{step.name}: references itself")
    cycle = find_cycle(parsed)
    if cycle:
        raise InvalidInputError(f"steps: the dependencies form a cycle: {' -> '.join(cycle)}")
    return parsed


def read_step(name: str, raw: object) -> Step:
    """One step on its own (the pipeline's checks are :func:`parse_pipeline`'s)."""
    where = f"steps.{name}"
    if not isinstance(raw, Mapping):
        raise InvalidInputError(f"{where}: a step must be an object, got {json_type(raw)}")
    unknown = sorted(set(raw) - STEP_KEYS, key=str)
    if unknown:
        raise InvalidInputError(f"{where}: unknown field {unknown[0]!r} (known: {', '.join(sorted(STEP_KEYS))})")
    method = raw.get("method_name")
    if not isinstance(method, str):
        problem = "is required" if method is None else f"must be a string, got {json_type(method)}"
        raise InvalidInputError(f"{where}.method_name: {problem}")
    parameters = raw.get("parameters", {})
    if not isinstance(parameters, Mapping):
        raise InvalidInputError(f"{where}.parameters: must be an object, got {json_type(parameters)}")
    refs: list[str] = []
    params = {key: _parse_value(f"{where}.parameters.{key}", value, refs) for key, value in parameters.items()}
    file_hash, file_inputs = raw.get("file_hash"), raw.get("file_inputs")
    if file_hash is not None and file_inputs is not None:
        raise InvalidInputError(f"{where}.file_inputs: cannot be given together with 'file_hash'")
    hash_or_ref = None if file_hash is None else _parse_file(f"{where}.file_hash", file_hash, refs)
    inputs = None if file_inputs is None else _parse_inputs(f"{where}.file_inputs", file_inputs, refs)
    after = raw.get("after", [])
    if not isinstance(after, list) or not all(isinstance(a, str) for a in after):
        raise InvalidInputError(f"{where}.after: must be an array of step names")
    depends = tuple(dict.fromkeys([*refs, *after]))
    return Step(name, method, params, hash_or_ref, inputs, tuple(after), depends)


def _as_ref(where: str, value: Mapping[Any, Any], refs: list[str], kind: str) -> Ref:
    unknown = sorted(set(value) - REF_KEYS, key=str)
    step = value.get(REF)
    if unknown:
        raise InvalidInputError(f"{where}: unknown field {unknown[0]!r} in a reference (known: $ref, output, path)")
    if not isinstance(step, str):
        raise InvalidInputError(f"{where}: $ref must name a step (a string), got {json_type(step)}")
    output, path = value.get("output"), value.get("path")
    if kind == "file" and path is not None:
        raise InvalidInputError(f"{where}: a file reference takes 'output' (a file name), not 'path'")
    if kind == "value" and output is not None:
        raise InvalidInputError(f"{where}: a parameter reference takes 'path' (into the JSON output), not 'output'")
    for key, text in (("output", output), ("path", path)):
        if text is not None and not isinstance(text, str):
            raise InvalidInputError(f"{where}.{key}: must be a string, got {json_type(text)}")
    refs.append(step)
    return Ref(step, output, path)


def _parse_file(where: str, value: object, refs: list[str]) -> str | Ref:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping) and REF in value:
        return _as_ref(where, value, refs, "file")
    raise InvalidInputError(f'{where}: must be a file hash or a reference {{"$ref": step}}, got {json_type(value)}')


def _parse_inputs(where: str, value: object, refs: list[str]) -> dict[str, str | Ref | list[str | Ref]]:
    if not isinstance(value, Mapping):
        raise InvalidInputError(f"{where}: must be an object from input name to file, got {json_type(value)}")
    inputs: dict[str, str | Ref | list[str | Ref]] = {}
    for name, item in value.items():
        if not isinstance(name, str) or INPUT_NAME.fullmatch(name) is None:
            raise InvalidInputError(f"{where}: input name {name!r} must be 1-64 of A-Z a-z 0-9 _ . -")
        if isinstance(item, list):
            if not item:
                raise InvalidInputError(f"{where}.{name}: must not be an empty array")
            inputs[name] = [_parse_file(f"{where}.{name}[{i}]", v, refs) for i, v in enumerate(item)]
        else:
            inputs[name] = _parse_file(f"{where}.{name}", item, refs)
    return inputs


def _parse_value(where: str, value: object, refs: list[str]) -> Any:
    """A parameter value, with every reference object inside it (at any depth) read into a :class:`Ref`."""
    if isinstance(value, Mapping):
        if REF in value:
            return _as_ref(where, value, refs, "value")
        return {k: _parse_value(f"{where}.{k}", v, refs) for k, v in value.items()}
    if isinstance(value, list):
        return [_parse_value(f"{where}[{i}]", v, refs) for i, v in enumerate(value)]
    return value


def find_cycle(steps: Mapping[str, Step]) -> list[str]:
    """A dependency cycle as the steps along it (first repeated at the end), or [] for none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in steps:
        if state.get(start):
            continue
        path: list[str] = []
        stack: list[tuple[str, int]] = [(start, 0)]
        while stack:
            name, index = stack.pop()
            if index == 0:
                state[name] = 1
                path.append(name)
            deps = steps[name].depends_on
            if index < len(deps):
                stack.append((name, index + 1))
                dep = deps[index]
                if state.get(dep) == 1:
                    return [*path[path.index(dep) :], dep]
                if not state.get(dep):
                    stack.append((dep, 0))
            else:
                state[name] = 2
                path.pop()
    return []


def order(steps: Mapping[str, Step]) -> list[str]:
    """The steps in an order where each comes after everything it depends on (ties: as written)."""
    done: dict[str, None] = {}

    def visit(name: str) -> None:
        pending = [(name, iter(steps[name].depends_on))]
        while pending:
            current, deps = pending[-1]
            dep = next((d for d in deps if d not in done), None)
            if dep is None:
                pending.pop()
                done[current] = None
            else:
                pending.append((dep, iter(steps[dep].depends_on)))

    for name in steps:
        if name not in done:
            visit(name)
    return list(done)


# --- resolving -------------------------------------------------------------------------------------------


def resolve(step: Step, upstream: Mapping[str, Upstream]) -> dict[str, Any]:
    """The step as a plain config, each reference replaced by what its upstream produced (every dependency
    completed); StepResolutionError names the step, the reference and what is missing."""
    where = f"step '{step.name}'"
    config: dict[str, Any] = {
        "method_name": step.method_name,
        "parameters": {k: _value(f"{where}: parameter '{k}'", v, upstream) for k, v in step.parameters.items()},
    }
    if step.file_hash is not None:
        config["file_hash"] = _file(f"{where}: file_hash", step.file_hash, upstream)
    if step.file_inputs is not None:
        inputs: dict[str, str | list[str]] = {}
        for name, value in step.file_inputs.items():
            label = f"{where}: input '{name}'"
            inputs[name] = (
                [_file(label, v, upstream) for v in value] if isinstance(value, list) else _file(label, value, upstream)
            )
        config["file_inputs"] = inputs
    return config


def _file(where: str, value: str | Ref, upstream: Mapping[str, Upstream]) -> str:
    if isinstance(value, str):
        return value
    source = upstream[value.step]
    if value.output is None:
        return source.stdout_file()
    found = source.output_files.get(value.output)
    if found is None:
        made = ", ".join(sorted(source.output_files)) or "none"
        raise StepResolutionError(
            f"{where}: $ref '{value.step}' output '{value.output}': step '{value.step}' produced no such output "
            f"file (it produced: {made})"
        )
    return found


def _value(where: str, value: Any, upstream: Mapping[str, Upstream]) -> Any:
    if isinstance(value, Ref):
        return json_at(where, value, upstream[value.step].output)
    if isinstance(value, dict):
        return {k: _value(where, v, upstream) for k, v in value.items()}
    if isinstance(value, list):
        return [_value(where, v, upstream) for v in value]
    return value


def json_at(where: str, ref: Ref, output: str | None) -> Any:
    """The value at ``ref.path`` (``a/b/0``: keys and array indexes) inside an upstream's JSON output."""
    label = f"{where}: $ref '{ref.step}'" + (f" path '{ref.path}'" if ref.path else "")
    try:
        value = json.loads(output or "")
    except ValueError:
        raise StepResolutionError(f"{label}: the output of step '{ref.step}' is not JSON") from None
    for part in [p for p in (ref.path or "").split("/") if p]:
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            have = ", ".join(map(str, value)) if isinstance(value, dict) else json_type(value)
            raise StepResolutionError(f"{label}: no '{part}' in the output of step '{ref.step}' (found: {have})")
    return value


def _wire(value: Any) -> Any:
    if isinstance(value, Ref):
        out: dict[str, Any] = {REF: value.step}
        if value.output is not None:
            out["output"] = value.output
        if value.path is not None:
            out["path"] = value.path
        return out
    if isinstance(value, dict):
        return {k: _wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_wire(v) for v in value]
    return value


def waiting_reason(steps: Sequence[str]) -> str:
    return f"waiting for {', '.join(steps)}"


def failed_reason(step: str) -> str:
    return f"dependency {step} failed"
