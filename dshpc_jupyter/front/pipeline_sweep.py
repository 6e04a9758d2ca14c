"""Pipeline documents: ``steps:`` in a ``%%dshpc_batch`` cell or a ``dshpc-jupyter submit`` file, expanded into
the explicit steps ``POST /pipelines`` takes (docs/design.md section 10.4).

Each step is a sweep (``method``, ``files`` or ``inputs``, ``parameters``, ``grid``; or a config's own
``method_name``, ``file_hash``, ``file_inputs``) plus ``after``. A sweep fans its step out into one step per
point, named ``step.0``, ``step.1``, ...; a step that references a swept step fans out with it (one instance per
upstream instance); ``{$gather: step, output: name}`` (or ``path:`` in a parameter) collects every instance of a
swept step into one array instead (fan-in); ``after`` waits for every instance. Mistakes raise
:class:`~.sweep.BatchSpecError` naming the step and field.
"""

from __future__ import annotations

import graphlib
import itertools
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .sweep import BatchSpecError, Uploader, _Files, _strings, _type_name, did_you_mean

STEP_FIELDS = ("method", "methods", "method_name", "files", "file_hash", "inputs", "file_inputs", "parameters",
               "grid", "after")  # fmt: skip
GATHER = "$gather"
REF = "$ref"
PLACEHOLDER = "\0path:"


@dataclass(frozen=True, slots=True)
class Instance:
    """One explicit step of an expanded document: the document's step it comes from, and the swept values that
    make it (its own and its upstream's: ``{"file": "readings_a.csv", "threshold": 0.2}``)."""

    step: str
    labels: dict[str, Any]


@dataclass
class PipelineExpansion:
    """A pipeline document as explicit steps, and where each came from."""

    steps: dict[str, dict[str, Any]]
    instances: dict[str, Instance]
    #: Every document step and the document steps it depends on (the graph that is drawn).
    graph: dict[str, list[str]]
    files: dict[str, str] = field(default_factory=dict)


def is_pipeline_document(document: object) -> bool:
    return isinstance(document, Mapping) and "steps" in document


def expand_pipeline(
    document: Any, *, upload: Uploader | None = None, base_dir: str | os.PathLike[str] | None = None
) -> PipelineExpansion:
    """The explicit steps of a ``steps:`` document; local files are hashed and uploaded as in a sweep."""
    extra = sorted(str(k) for k in document if k != "steps")
    if extra:
        raise BatchSpecError(f"pipeline: unexpected field {extra[0]!r} beside 'steps'")
    spec = document["steps"]
    if not isinstance(spec, Mapping) or not spec:
        raise BatchSpecError(f"steps: must be a non-empty mapping of step name to step, got {_type_name(spec)}")
    files = _Files(Path(base_dir) if base_dir is not None else Path.cwd(), upload)
    graph = {str(name): _dependencies(str(name), step, spec) for name, step in spec.items()}
    try:
        ordered = graph_order(graph)
    except graphlib.CycleError as exc:
        raise BatchSpecError(f"steps: the dependencies form a cycle: {' -> '.join(reversed(exc.args[1]))}") from None
    made: dict[str, list[str]] = {}
    steps: dict[str, dict[str, Any]] = {}
    instances: dict[str, Instance] = {}
    for name in ordered:
        variants = _variants(name, spec[name], files)
        fanned = [n for n in graph[name] if _referenced(spec[name], n)]
        combos = list(itertools.product(*(made[n] for n in fanned)))
        points = [(combo, variant) for combo in combos for variant in variants]
        made[name] = [name] if len(points) == 1 else [f"{name}.{i}" for i in range(len(points))]
        for instance, (combo, (config, labels)) in zip(made[name], points, strict=True):
            chosen = dict(zip(fanned, combo, strict=True))
            step = _substitute(config, chosen, made, f"steps.{name}")
            after = [i for n in _after(spec[name]) for i in made[n]]
            if after:
                step["after"] = after
            steps[instance] = step
            inherited = {k: v for upstream in combo for k, v in instances[upstream].labels.items()}
            instances[instance] = Instance(name, {**inherited, **labels})
    _fill_files(steps, files)
    return PipelineExpansion(steps, instances, {n: graph[n] for n in spec}, files.hashes)


def graph_order(graph: Mapping[str, list[str]]) -> list[str]:
    """The document's steps, each after those it depends on, otherwise as written (graphlib finds cycles)."""
    graphlib.TopologicalSorter(graph).prepare()
    done: dict[str, None] = {}
    while len(done) < len(graph):
        done.update(dict.fromkeys(n for n, deps in graph.items() if n not in done and all(d in done for d in deps)))
    return list(done)


def _dependencies(name: str, step: object, spec: Mapping[str, Any]) -> list[str]:
    where = f"steps.{name}"
    if not isinstance(step, Mapping):
        raise BatchSpecError(f"{where}: a step must be a mapping, got {_type_name(step)}")
    unknown = [str(k) for k in step if k not in STEP_FIELDS]
    if unknown:
        hint = did_you_mean(unknown[0], STEP_FIELDS)
        raise BatchSpecError(f"{where}: unknown field {unknown[0]!r} (a step has {', '.join(STEP_FIELDS)}){hint}")
    found = [*_names(step), *_after(step)]
    for dep in found:
        if dep not in spec:
            raise BatchSpecError(f"{where}: references step {dep!r}, which is not in the pipeline"
                                 f"{did_you_mean(dep, [str(k) for k in spec])}")  # fmt: skip
    return list(dict.fromkeys(found))


def _after(step: Mapping[str, Any]) -> list[str]:
    after = step.get("after", [])
    return [after] if isinstance(after, str) else _strings(after, "after") if after else []


def _names(value: Any) -> list[str]:
    """Every step a value references, by ``$ref`` or ``$gather``, at any depth."""
    if isinstance(value, Mapping):
        for key in (REF, GATHER):
            if key in value:
                return [str(value[key])]
        return [n for k, v in value.items() if k != "after" for n in _names(v)]
    if isinstance(value, list):
        return [n for v in value for n in _names(v)]
    return []


def _referenced(value: Any, name: str) -> bool:
    """Whether ``value`` references step ``name`` by ``$ref`` (which fans out with it, unlike ``$gather``)."""
    if isinstance(value, Mapping):
        if value.get(REF) == name:
            return True
        return any(_referenced(v, name) for k, v in value.items() if k not in ("after", GATHER))
    return isinstance(value, list) and any(_referenced(v, name) for v in value)


def _variants(name: str, step: Mapping[str, Any], files: _Files) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """The step's own sweep: (config with references still in it, the values that make this point)."""
    where = f"steps.{name}"
    keys = [k for k in ("method", "methods", "method_name") if k in step]
    if len(keys) != 1:
        raise BatchSpecError(f"{where}: give one of 'method', 'methods' or 'method_name'")
    methods = _strings(step[keys[0]], f"{where}.{keys[0]}")
    fixed = step.get("parameters") or {}
    grid = step.get("grid") or {}
    if not isinstance(fixed, Mapping):
        raise BatchSpecError(f"{where}.parameters: must be a mapping, got {_type_name(fixed)}")
    if not isinstance(grid, Mapping) or any(not isinstance(v, list) or not v for v in grid.values()):
        raise BatchSpecError(f"{where}.grid: must map each parameter name to a non-empty list of values")
    combos = [dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())]
    inputs = _inputs(step, where, files)
    return [
        ({"method_name": method, **given, "parameters": {**fixed, **combo}},
         {**({"method": method} if len(methods) > 1 else {}), **shown, **combo})
        for method in methods for given, shown in inputs for combo in combos
    ]  # fmt: skip


def _inputs(step: Mapping[str, Any], where: str, files: _Files) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """The step's input points: (the config's input fields, what names the point)."""
    given = [k for k in ("files", "file_hash", "inputs", "file_inputs") if k in step]
    if len(given) > 1:
        raise BatchSpecError(f"{where}: give one of {', '.join(given)}, not several")
    if not given:
        return [({}, {})]
    key, value = given[0], step[given[0]]
    if key in ("files", "file_hash"):
        if isinstance(value, Mapping):
            return [({"file_hash": value}, {})]
        hashes = files.resolve(_strings(value, f"{where}.{key}"), f"{where}.{key}")
        return [({"file_hash": h}, {"file": _shown(h)} if len(hashes) > 1 else {}) for h in hashes]
    if not isinstance(value, Mapping) or not value:
        raise BatchSpecError(f"{where}.{key}: must be a mapping of input name to files or a reference")
    dimensions: list[list[tuple[str, Any]]] = []
    for input_name, entry in value.items():
        if isinstance(entry, Mapping):
            dimensions.append([(str(input_name), entry)])
        else:
            choices = files.resolve(_strings(entry, f"{where}.{key}.{input_name}"), f"{where}.{key}.{input_name}")
            dimensions.append([(str(input_name), h) for h in choices])
    points = []
    for combo in itertools.product(*dimensions):
        shown = {f"input.{n}": _shown(h) for (n, h), dim in zip(combo, dimensions, strict=True) if len(dim) > 1}
        points.append(({"file_inputs": dict(combo)}, shown))
    return points


def _shown(entry: str) -> str:
    return Path(entry[len(PLACEHOLDER) :]).name if entry.startswith(PLACEHOLDER) else entry


def _substitute(value: Any, chosen: Mapping[str, str], made: Mapping[str, list[str]], where: str) -> Any:
    """References to instances: ``$ref`` to the chosen instance of its step, ``$gather`` to all of them."""
    if isinstance(value, Mapping):
        if GATHER in value:
            rest = {k: v for k, v in value.items() if k != GATHER}
            return [{REF: instance, **rest} for instance in made[str(value[GATHER])]]
        if REF in value:
            return {**value, REF: chosen.get(str(value[REF]), made[str(value[REF])][0])}
        return {k: _substitute(v, chosen, made, where) for k, v in value.items()}
    if isinstance(value, list):
        out: list[Any] = []
        for item in value:
            replaced = _substitute(item, chosen, made, where)
            gathered = isinstance(item, Mapping) and GATHER in item
            out.extend(replaced if gathered else [replaced])
        return out
    return value


def _fill_files(steps: dict[str, dict[str, Any]], files: _Files) -> None:
    """Local paths replaced by their hashes, uploading what the service lacks (one check for all)."""
    files.upload_all([])
    by_placeholder = {f"{PLACEHOLDER}{path}": digest for path, digest in files.hashes.items()}

    def fill(value: Any) -> Any:
        if isinstance(value, str):
            return by_placeholder.get(value, value)
        if isinstance(value, list):
            return [fill(v) for v in value]
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        return value

    for name, step in steps.items():
        steps[name] = {k: (fill(v) if k in ("file_hash", "file_inputs") else v) for k, v in step.items()}
