"""Batch documents: what a ``%%dshpc_batch`` cell (or ``dshpc-jupyter submit FILE``) holds, turned into configs.

Three forms, in YAML or JSON text or as Python objects:

- the seed's request verbatim: ``{"jobs": [{"file_hash": ..., "method_name": ..., "parameters": {...}}, ...]}``;
- a bare list of such configs (items may also be sweeps, to sweep several methods with different grids);
- a sweep: ``method`` or ``methods``, ``files`` (hashes, paths or globs), fixed ``parameters`` and a ``grid``
  expanded as a cartesian product, in the order methods x files x grid; or, instead of ``files``, ``inputs``:
  input name to paths, globs or hashes, each name one dimension (a single value is fixed for all), making
  configs with ``file_inputs`` (docs/design.md section 8.1).

Structural mistakes raise :class:`BatchSpecError` with one line naming the field; whether a method, file or
parameter exists is the service's question, answered per config. Identical configs after expansion are kept
(each keeps its row; the service gives them one job) and reported in :attr:`Expansion.duplicates`.
Local files are hashed and uploaded only when the service lacks them. Nothing here depends on IPython.
"""

from __future__ import annotations

import difflib
import glob
import itertools
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..domain.configs import DOCUMENT_TYPES, ConfigError, json_type, parse_config
from ..domain.errors import InvalidInputError
from ..domain.hashing import canonical_json, is_sha256_hex, sha256_file

CONFIG_FIELDS = ("file_hash", "method_name", "parameters", "file_inputs")
SWEEP_FIELDS = ("method", "methods", "files", "inputs", "parameters", "grid")
GLOB_CHARS = frozenset("*?[")

Uploader = Callable[[Sequence[Path]], list[str]]
"""Hashes local files and uploads those the service lacks (``Connection.upload_files``)."""


class BatchSpecError(InvalidInputError):
    """A batch document that cannot be turned into configs; the message is one line naming the field."""


@dataclass
class Expansion:
    """The configs of a batch document, in request order, and what a user should know about them."""

    configs: list[dict[str, Any]]
    #: (index, index of the first identical config) for every repeated config.
    duplicates: list[tuple[int, int]] = field(default_factory=list)
    #: local path -> file_hash of every local file the document named.
    files: dict[str, str] = field(default_factory=dict)

    def notes(self, *, uploaded: bool = True) -> list[str]:
        """One line per thing worth telling: local files used (``uploaded``: false for a dry run, which only
        hashes them), duplicate configs."""
        lines = []
        if self.files:
            done = "uploaded where the service lacked them" if uploaded else "not uploaded (dry run)"
            lines.append(f"{len(self.files)} local file(s) hashed; {done}")
        if self.duplicates:
            shown = ", ".join(f"#{i} = #{first}" for i, first in self.duplicates[:5])
            more = f" and {len(self.duplicates) - 5} more" if len(self.duplicates) > 5 else ""
            lines.append(
                f"{len(self.duplicates)} duplicate config(s) after expansion ({shown}{more}): "
                "each keeps its row and they share one job"
            )
        return lines


def _type_name(value: object) -> str:
    return json_type(value, DOCUMENT_TYPES)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices`` to a mistyped ``word``, or ``""``."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def parse_text(text: str, *, first_line: int = 1) -> Any:
    """A document from YAML or JSON text (JSON first, for its exact error positions on JSON-looking text);
    ``first_line`` is the editor's number of the text's first line (2 in a cell under its ``%%`` line), so an
    error names the line as the editor numbers it."""
    leading = len(text) - len(text.lstrip())
    first_line += text[:leading].count("\n")
    stripped = text.strip()
    if not stripped:
        raise BatchSpecError('batch: the cell is empty (give a sweep, a list of configs or {"jobs": [...]})')
    if stripped[0] in "[{":
        # JSON as pasted from documentation, whose examples often carry whole-line // comments
        uncommented = "\n".join(line for line in stripped.splitlines() if not line.lstrip().startswith("//"))
        try:
            return json.loads(uncommented)
        except json.JSONDecodeError:
            pass  # YAML flow style is a superset of JSON; let YAML report the error if it is bad too
    try:
        return yaml.safe_load(stripped)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + first_line}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise BatchSpecError(f"batch: invalid YAML{where}: {problem}") from None


def load_file(path: str | os.PathLike[str], upload: Uploader | None = None) -> Expansion:
    """The configs of a YAML or JSON file; relative file paths in it are relative to the file's folder."""
    source = Path(path).expanduser()
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise BatchSpecError(f"batch: cannot read {str(source)!r}: {exc.strerror or exc}") from None
    return expand(parse_text(text), upload=upload, base_dir=source.parent)


def expand(
    document: Any, *, upload: Uploader | None = None, base_dir: str | os.PathLike[str] | None = None
) -> Expansion:
    """The configs of a document (parsed text, a list, a mapping or a pandas DataFrame).

    ``upload`` hashes and uploads local files (without it they are only hashed, for a look that changes
    nothing); relative paths and globs are taken from ``base_dir`` (default: the current directory).
    """
    files = _Files(Path(base_dir) if base_dir is not None else Path.cwd(), upload)
    if _is_dataframe(document):
        configs = from_dataframe(document)
    elif isinstance(document, Mapping) and "jobs" in document:
        extra = sorted(set(document) - {"jobs"})
        if extra:
            raise BatchSpecError(f"batch: unexpected field {extra[0]!r} beside 'jobs'")
        jobs = document["jobs"]
        if not isinstance(jobs, list):
            raise BatchSpecError(f"jobs: must be a list of configs, got {_type_name(jobs)}")
        configs = _items(jobs, "jobs", files)
    elif isinstance(document, Mapping):
        configs = _sweep(document, "sweep", files)
    elif isinstance(document, list | tuple):
        configs = _items(document, "configs", files)
    else:
        raise BatchSpecError(
            f'batch: expected a sweep (mapping), a list of configs or {{"jobs": [...]}}, got {_type_name(document)}'
        )
    files.upload_all(configs)
    if not configs:
        raise BatchSpecError("batch: no configs (the document expands to nothing)")
    return Expansion(configs, find_duplicates(configs), files.hashes)


def find_duplicates(configs: Iterable[Mapping[str, Any]]) -> list[tuple[int, int]]:
    """(index, first index) of configs identical to an earlier one (same method, file and parameters)."""
    first: dict[str, int] = {}
    found = []
    for index, config in enumerate(configs):
        key = canonical_json([config.get("method_name"), str(config.get("file_hash", "")).lower(),
                              config.get("parameters", {})])  # fmt: skip
        if key in first:
            found.append((index, first[key]))
        else:
            first[key] = index
    return found


def _is_dataframe(value: object) -> bool:
    return hasattr(value, "columns") and hasattr(value, "to_dict")


def from_dataframe(frame: Any) -> list[dict[str, Any]]:
    """Configs from a DataFrame: ``method_name`` and ``file_hash`` columns, and either a ``parameters`` column of
    mappings (as in ``Batch.df``, so a filtered ``df`` can be sent again) or one column per parameter (empty
    cells left out)."""
    columns = [str(c) for c in frame.columns]
    for required in ("method_name", "file_hash"):
        if required not in columns:
            raise BatchSpecError(f"DataFrame: missing column {required!r} (columns: {', '.join(columns)})")
    use_parameters = "parameters" in columns
    parameter_columns = [c for c in columns if c not in CONFIG_FIELDS]
    configs = []
    for position, row in enumerate(frame.to_dict(orient="records")):
        if use_parameters:
            parameters = row["parameters"]
            if not isinstance(parameters, Mapping):
                raise BatchSpecError(f"DataFrame row {position}: 'parameters' must be a mapping, got "
                                     f"{_type_name(parameters)}")  # fmt: skip
            parameters = dict(parameters)
        else:
            parameters = {c: _plain(row[c]) for c in parameter_columns if not _is_missing(row[c])}
        config = {"method_name": _plain(row["method_name"]), "file_hash": _plain(row["file_hash"])}
        configs.append(_config({**config, "parameters": parameters}, f"DataFrame row {position}"))
    return configs


def _is_missing(value: object) -> bool:
    try:
        return bool(value is None or value != value)  # NaN, NaT and pandas.NA are not equal to themselves
    except (TypeError, ValueError):
        return False


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value it holds (JSON and the service want plain types)."""
    item = getattr(value, "item", None)
    return item() if callable(item) and not isinstance(value, list | dict | str) else value


def _items(items: Sequence[Any], where: str, files: _Files) -> list[dict[str, Any]]:
    configs: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        path = f"{where}[{index}]"
        if isinstance(item, Mapping) and ("method" in item or "methods" in item):
            configs.extend(_sweep(item, path, files))
        else:
            configs.append(_config(item, path))
    return configs


def _config(item: Any, where: str) -> dict[str, Any]:
    """One config, checked for shape; the service checks that its method, file and parameters exist."""
    if not isinstance(item, Mapping):
        raise BatchSpecError(f"{where}: a config must be a mapping with method_name and file_hash, got "
                             f"{_type_name(item)}")  # fmt: skip
    unknown = [str(k) for k in item if k not in CONFIG_FIELDS]
    if unknown:
        hint = did_you_mean(unknown[0], CONFIG_FIELDS)
        raise BatchSpecError(f"{where}: unknown field {unknown[0]!r} (a config has {', '.join(CONFIG_FIELDS)}){hint}")
    config = parse_config(item)  # the service's own check, so the same problem gets the same words
    if isinstance(config, ConfigError):
        raise BatchSpecError(f"{where}.{config.field}: {config.problem}")
    parameters = item.get("parameters", {})
    if parameters is None:
        parameters = {}
    if not isinstance(parameters, Mapping):
        raise BatchSpecError(f"{where}.parameters: must be a mapping, got {_type_name(parameters)}")
    if config.file_inputs is not None:
        return {"method_name": config.method_name, "file_inputs": config.file_inputs, "parameters": dict(parameters)}
    if not config.file_hash:  # a parameters-only job
        return {"method_name": config.method_name, "parameters": dict(parameters)}
    return {"file_hash": config.file_hash, "method_name": config.method_name, "parameters": dict(parameters)}


def _sweep(spec: Mapping[str, Any], where: str, files: _Files) -> list[dict[str, Any]]:
    """methods x files x grid, in that order; fixed ``parameters`` in every config."""
    unknown = [str(k) for k in spec if k not in SWEEP_FIELDS]
    if unknown:
        hint = " (a config uses method_name and file_hash; a sweep uses method and files)" if (
            "method_name" in spec or "file_hash" in spec) else ""  # fmt: skip
        hint = hint or did_you_mean(unknown[0], SWEEP_FIELDS)
        raise BatchSpecError(f"{where}: unknown field {unknown[0]!r} (a sweep has {', '.join(SWEEP_FIELDS)}){hint}")
    if "method" in spec and "methods" in spec:
        raise BatchSpecError(f"{where}: give 'method' or 'methods', not both")
    key = "methods" if "methods" in spec else "method"
    methods = _strings(spec.get(key), f"{where}.{key}")
    if "files" in spec and "inputs" in spec:
        raise BatchSpecError(f"{where}: give 'files' (one input) or 'inputs' (named inputs), not both")
    if "files" not in spec and "inputs" not in spec:
        raise BatchSpecError(f"{where}: missing field 'files' (hashes, paths or globs) or 'inputs' (named inputs)")
    if "inputs" in spec:
        named = _named_inputs(spec["inputs"], f"{where}.inputs", files)
    else:
        named = [{"file_hash": h} for h in files.resolve(_strings(spec["files"], f"{where}.files"), f"{where}.files")]
    fixed = spec.get("parameters") or {}
    if not isinstance(fixed, Mapping):
        raise BatchSpecError(f"{where}.parameters: must be a mapping, got {_type_name(fixed)}")
    grid = spec.get("grid") or {}
    if not isinstance(grid, Mapping):
        raise BatchSpecError(f"{where}.grid: must be a mapping of parameter name to a list of values, got "
                             f"{_type_name(grid)}")  # fmt: skip
    for name, values in grid.items():
        if not isinstance(values, list) or not values:
            raise BatchSpecError(f"{where}.grid.{name}: must be a non-empty list of values, got {_type_name(values)}")
        if name in fixed:
            raise BatchSpecError(f"{where}.grid.{name}: also set in parameters; set it in one place")
    names = list(grid)
    combos = [dict(zip(names, values, strict=True)) for values in itertools.product(*(grid[n] for n in names))]
    return [
        {**inputs, "method_name": method, "parameters": {**fixed, **combo}}
        for method in methods
        for inputs in named
        for combo in combos
    ]


def _named_inputs(spec: Any, where: str, files: _Files) -> list[dict[str, Any]]:
    """Each input name is one dimension of the sweep (its paths, globs or hashes; a single one is fixed for
    all), expanded as a cartesian product in the order the names are given: ``{"file_inputs": ...}`` each."""
    if not isinstance(spec, Mapping) or not spec:
        raise BatchSpecError(f"{where}: must be a mapping of input name to paths, globs or hashes, got "
                             f"{_type_name(spec)}")  # fmt: skip
    names = [str(n) for n in spec]
    choices = [files.resolve(_strings(spec[n], f"{where}.{n}"), f"{where}.{n}") for n in names]
    return [{"file_inputs": dict(zip(names, combo, strict=True))} for combo in itertools.product(*choices)]


def _strings(value: Any, where: str) -> list[str]:
    """A string or a non-empty list of strings."""
    if value is None:
        raise BatchSpecError(f"{where.rsplit('.', 1)[0]}: missing field 'method' (or 'methods')")
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise BatchSpecError(f"{where}: must be a string or a non-empty list of strings, got {_type_name(value)}")
    for index, item in enumerate(items):
        if not isinstance(item, str) or not item:
            raise BatchSpecError(f"{where}[{index}]: must be a non-empty string, got {_type_name(item)}")
    return items


class _Files:
    """Turns ``files`` entries into hashes: a SHA-256 stays as it is, a path or glob becomes its files' hashes.
    Paths are collected first and uploaded in one go, once each, after the whole document is read."""

    def __init__(self, base: Path, upload: Uploader | None) -> None:
        self.base = base
        self.upload = upload
        self.hashes: dict[str, str] = {}
        self._placeholders: dict[str, Path] = {}

    def resolve(self, entries: Sequence[str], where: str) -> list[str]:
        resolved = []
        for index, entry in enumerate(entries):
            if is_sha256_hex(entry.lower()) and not (self.base / entry).exists():
                resolved.append(entry.lower())
                continue
            for path in self._paths(entry, f"{where}[{index}]"):
                key = f"\0path:{path}"
                self._placeholders[key] = path
                resolved.append(key)
        return resolved

    def _paths(self, entry: str, where: str) -> list[Path]:
        pattern = Path(entry).expanduser()
        absolute = pattern.is_absolute()
        if GLOB_CHARS & set(entry):
            root = None if absolute else self.base
            found = sorted(glob.glob(str(pattern), root_dir=root, recursive=True))  # noqa: PTH207 (root_dir, **)
            paths = [p for p in (Path(f) if root is None else root / f for f in found) if p.is_file()]
            if not paths:
                raise BatchSpecError(f"{where}: no file matches {entry!r} in {root or pattern.parent}")
            return paths
        path = pattern if absolute else self.base / pattern
        if not path.is_file():
            raise BatchSpecError(
                f"{where}: {entry!r} is neither a file_hash (64 hex characters) nor a file in {path.parent}"
            )
        return [path]

    def upload_all(self, configs: list[dict[str, Any]]) -> None:
        """Replace path placeholders by hashes, uploading the files the service lacks (one check for all)."""
        if not self._placeholders:
            return
        keys = list(self._placeholders)
        paths = [self._placeholders[k] for k in keys]
        hashes = self.upload(paths) if self.upload is not None else [sha256_file(p) for p in paths]
        by_key = dict(zip(keys, hashes, strict=True))
        self.hashes = {str(path): digest for path, digest in zip(paths, hashes, strict=True)}
        for config in configs:
            if "file_hash" in config:
                config["file_hash"] = by_key.get(config["file_hash"], config["file_hash"])
            inputs = config.get("file_inputs")
            if isinstance(inputs, dict):
                config["file_inputs"] = {k: by_key.get(v, v) if isinstance(v, str) else v for k, v in inputs.items()}
