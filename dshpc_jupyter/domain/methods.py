"""Method directories: load and check ``method.json``, hash the directory, install a frozen copy, and
validate and canonicalize the parameters of a call against the spec.

A registered method runs from its copy under the home directory, so the code that runs is always the code
that was hashed, whatever happens to the source directory afterwards.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .configs import INPUT_NAME, json_type
from .errors import InvalidParametersError as InvalidParametersError  # its name here before errors.py held it
from .errors import MethodSpecError
from .hashing import IGNORED_NAMES, canonical_json, function_hash, method_files, parameters_key
from .home import Home
from .models import MethodParameter, MethodSpec
from .retries import RetryPolicy

SPEC_FILE = "method.json"
#: The seed's layout: one spec per method in ``commands/NAME.json``, its files in ``scripts/NAME/``.
SEED_COMMANDS = "commands"
SEED_SCRIPTS = "scripts"

TYPE_ALIASES = {
    "string": "string", "str": "string", "text": "string",
    "integer": "integer", "int": "integer",
    "number": "number", "float": "number", "double": "number",
    "boolean": "boolean", "bool": "boolean",
    "array": "array", "list": "array",
    "object": "object", "dict": "object",
}  # fmt: skip


@dataclass(frozen=True)
class LoadedMethod:
    """A method directory read from disk and hashed, not yet registered."""

    spec: MethodSpec
    source: Path
    function_hash: str


# --- loading ---------------------------------------------------------------------------------------------


@contextmanager
def method_dirs(path: str | os.PathLike[str]) -> Iterator[list[Path]]:
    """The method directories under ``path`` (:func:`find_method_dirs`); a folder in the seed's layout
    (``commands/NAME.json`` beside ``scripts/NAME/``) is laid out as method directories in a temporary folder
    first, removed afterwards, so a dsHPC user's methods register unchanged (docs/design.md section 8.4)."""
    root = Path(path).expanduser()
    if not (root / SEED_COMMANDS).is_dir() or (root / SPEC_FILE).is_file():
        yield find_method_dirs(root)
        return
    staging = Path(tempfile.mkdtemp(prefix="dshpc-seed-methods-"))
    try:
        for command in sorted((root / SEED_COMMANDS).glob("*.json")):
            scripts = root / SEED_SCRIPTS / command.stem
            if not scripts.is_dir():
                raise MethodSpecError(f"{command}: no script folder {SEED_SCRIPTS}/{command.stem}/ beside it")
            target = staging / command.stem
            shutil.copytree(scripts, target, ignore=shutil.ignore_patterns(*IGNORED_NAMES, "*.pyc", "*.pyo"))
            shutil.copyfile(command, target / SPEC_FILE)
        yield find_method_dirs(staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def find_method_dirs(path: str | os.PathLike[str]) -> list[Path]:
    """``path`` itself when it holds ``method.json``, else its subdirectories that do (sorted)."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise MethodSpecError(f"method directory {str(root)!r} does not exist or is not a directory")
    if (root / SPEC_FILE).is_file():
        return [root]
    found = sorted(child for child in root.iterdir() if (child / SPEC_FILE).is_file())
    if not found:
        raise MethodSpecError(f"no {SPEC_FILE} in {str(root)!r} or in its subdirectories")
    return found


def load_method(directory: Path) -> LoadedMethod:
    """Read, check and hash one method directory."""
    spec_path = directory / SPEC_FILE
    try:
        raw = json.loads(spec_path.read_text(encoding="utf-8"), parse_int=_bounded_int)
    except RecursionError:
        raise MethodSpecError(f"{spec_path}: cannot read JSON: nested too deeply") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise MethodSpecError(f"{spec_path}: cannot read JSON: {exc}") from None
    spec = parse_spec(raw, origin=str(spec_path))
    script = directory / spec.script_path
    if not _is_inside(script, directory):
        raise MethodSpecError(f"{spec_path}: script_path {spec.script_path!r} points outside the method directory")
    if not script.is_file():
        raise MethodSpecError(f"{spec_path}: script_path {spec.script_path!r} is not a file in {directory}")
    return LoadedMethod(spec=spec, source=directory, function_hash=function_hash(raw, directory))


def parse_spec(raw: object, *, origin: str = SPEC_FILE) -> MethodSpec:
    """Validate a spec document, naming the offending field in the error."""
    if not isinstance(raw, dict):
        raise MethodSpecError(f"{origin}: must be a JSON object")
    problem = _unstorable_value(raw)
    if problem is not None:
        raise MethodSpecError(f"{origin}: {problem}")
    raw = dict(raw)
    params = raw.get("parameters")
    if isinstance(params, list):
        raw["parameters"] = [_normalize_type(p) for p in params]
    try:
        spec = MethodSpec.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise MethodSpecError(f"{origin}: {where}: {first['msg']}") from None
    if not spec.name.strip():
        raise MethodSpecError(f"{origin}: name: must not be empty")
    if not spec.command.strip():
        raise MethodSpecError(f"{origin}: command: must not be empty")
    seen: set[str] = set()
    for index, param in enumerate(spec.parameters):
        where = f"{origin}: parameters[{index}] ({param.name!r})"
        if param.name in seen:
            raise MethodSpecError(f"{where}: duplicate parameter name")
        seen.add(param.name)
        for value, what in [(param.default, "default"), *((c, "choice") for c in param.choices or [])]:
            if value is None and what == "default":
                continue
            try:
                _coerce(param, value)
            except InvalidParametersError as exc:
                raise MethodSpecError(f"{where}: {what} {value!r} does not fit the type: {exc}") from None
    names = [i.name for i in spec.inputs or []]
    for index, name in enumerate(names):
        if INPUT_NAME.fullmatch(name) is None or name in names[:index]:
            problem = "duplicate input name" if name in names[:index] else "must be 1-64 of A-Z a-z 0-9 _ . -"
            raise MethodSpecError(f"{origin}: inputs[{index}] ({name!r}): {problem}")
    try:
        parse_time_limit(spec.resources.time)
        parse_memory_limit(spec.resources.mem)
        check_retry_caps(spec.retry)
    except MethodSpecError as exc:
        raise MethodSpecError(f"{origin}: {exc}") from None
    return spec


def check_retry_caps(policy: RetryPolicy | None) -> None:
    """A retry policy's caps must be a Slurm time and a memory size (MethodSpecError naming the field)."""
    if policy is None:
        return
    for field, value, parse in (("max_time", policy.max_time, parse_time_limit),
                                ("max_mem", policy.max_mem, parse_memory_limit)):  # fmt: skip
        try:
            parse(value)
        except MethodSpecError as exc:
            raise MethodSpecError(f"retry.{field}: {str(exc).partition(': ')[2]}") from None


#: Longest integer a spec may hold, in digits (Python's own limit for converting text to int).
MAX_INT_DIGITS = 4300


class _TooLongInteger(int):
    """An integer literal with more digits than :data:`MAX_INT_DIGITS`, kept as its digit count, so the
    spec check can name the field that holds it instead of the JSON parser failing without a place."""

    digits: int


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) <= MAX_INT_DIGITS:
        return int(text)
    marker = _TooLongInteger(0)
    marker.digits = len(text.lstrip("-"))
    return marker


def _unstorable_value(raw: object) -> str | None:
    """Where ``raw`` holds a value no store can keep (a too-long integer, text with a lone surrogate), and
    what it is; None when it holds none. Walked without recursion, so any depth the parser allowed is fine."""
    pending: list[tuple[str, object]] = [("", raw)]
    while pending:
        where, value = pending.pop()
        if isinstance(value, _TooLongInteger):
            return f"{where}: an integer of {value.digits} digits is too long (at most {MAX_INT_DIGITS})"
        if isinstance(value, str) and not _is_utf8(value):
            return f"{where or 'the spec'}: text with a lone surrogate is not valid Unicode"
        if isinstance(value, dict):
            for key, item in value.items():
                if not _is_utf8(key):
                    return f"{where or 'the spec'}: a key with a lone surrogate is not valid Unicode"
                pending.append((f"{where}.{key}" if where else key, item))
        elif isinstance(value, list):
            pending.extend((f"{where}[{index}]", item) for index, item in enumerate(value))
    return None


def _normalize_type(param: object) -> object:
    if isinstance(param, dict) and isinstance(param.get("type"), str):
        return {**param, "type": TYPE_ALIASES.get(param["type"].lower(), param["type"])}
    return param


def _is_inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def install_method(home: Home, method: LoadedMethod) -> Path:
    """Copy the method's files into the home directory (atomically, once per version)."""
    target = home.method_dir(method.function_hash)
    if target.is_dir():
        return target
    staging = Path(tempfile.mkdtemp(dir=home.tmp_dir, prefix="method-"))
    try:
        for rel, path in method_files(method.source):
            destination = staging / rel
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, destination)
        _make_read_only(staging)
        try:
            staging.rename(target)
        except OSError:
            if not target.is_dir():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _make_read_only(root: Path) -> None:
    """A frozen copy's files are read-only, and readable by a job run as another user (``nobody``, see the
    sandbox); its directories stay the owner's to write, so the home can still be removed with ``rm -r``."""
    for path in root.rglob("*"):
        if path.is_dir():
            path.chmod(0o755)
        else:
            path.chmod(0o555 if os.access(path, os.X_OK) else 0o444)
    root.chmod(0o755)


# --- resources -------------------------------------------------------------------------------------------

# Bounded digit counts: a year of minutes fits in 9, and an exabyte in 18 digits; more is a typo or an attack.
_TIME = re.compile(r"^(?:(?P<days>\d{1,9})-)?(?P<rest>\d{1,9}(?::\d{1,9}){0,2})$")
_MEMORY = re.compile(r"^(?P<amount>\d{1,18}(?:\.\d{1,9})?)\s*(?P<unit>[KMGT]?)B?$", re.IGNORECASE)
_MAX_MEMORY = 1 << 62
_MEMORY_UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_time_limit(value: str | None) -> float | None:
    """Seconds from a Slurm time string: ``M``, ``M:S``, ``H:M:S``, ``D-H``, ``D-H:M``, ``D-H:M:S``."""
    if value is None:
        return None
    match = _TIME.match(value.strip())
    if not match:
        raise MethodSpecError(f"resources.time: {value[:40]!r} is not a Slurm time (M, M:S, H:M:S or D-H:M:S)")
    parts = [int(p) for p in match["rest"].split(":")]
    if match["days"] is not None:
        hours, minutes, seconds = ([*parts, 0, 0])[:3]
        return float(int(match["days"]) * 86400 + hours * 3600 + minutes * 60 + seconds)
    if len(parts) == 1:
        return float(parts[0] * 60)
    if len(parts) == 2:
        return float(parts[0] * 60 + parts[1])
    return float(parts[0] * 3600 + parts[1] * 60 + parts[2])


def parse_memory_limit(value: str | None) -> int | None:
    """Bytes from a Slurm memory string (``512M``, ``2G``; a bare number means megabytes)."""
    if value is None:
        return None
    match = _MEMORY.match(value.strip())
    if not match:
        raise MethodSpecError(f"resources.mem: {value[:40]!r} is not a memory size such as 512M or 2G")
    unit = (match["unit"] or "M").upper()
    amount = float(match["amount"]) * _MEMORY_UNITS[unit]
    if amount > _MAX_MEMORY:
        raise MethodSpecError(f"resources.mem: {value[:40]!r} is more memory than any machine has")
    return int(amount)


# --- parameters ------------------------------------------------------------------------------------------

_TYPE_WORDS = {
    "string": "a string", "integer": "an integer", "number": "a number",
    "boolean": "a boolean", "array": "an array", "object": "an object",
}  # fmt: skip


def _coerce(param: MethodParameter, value: Any) -> Any:
    """The canonical form of one value, or InvalidParametersError naming the parameter."""
    kind = param.type
    ok: Any
    if kind == "string":
        ok = value if isinstance(value, str) else None
    elif kind == "boolean":
        ok = value if isinstance(value, bool) else None
    elif kind == "integer":
        if isinstance(value, int) and not isinstance(value, bool):
            ok = value
        elif isinstance(value, float) and value.is_integer():
            ok = int(value)
        else:
            ok = None
    elif kind == "number":
        # Huge integers overflow a float; adding 0.0 turns -0.0 into 0.0, so both are one job.
        try:
            finite = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        except OverflowError:
            finite = False
        ok = float(value) + 0.0 if finite else None
    elif kind == "array":
        ok = value if isinstance(value, list) else None
    else:
        ok = value if isinstance(value, dict) else None
    if ok is None:
        shown = "" if value is None else " " + json.dumps(value, default=repr)[:60]
        raise InvalidParametersError(
            f"parameter {param.name!r} must be {_TYPE_WORDS[kind]}, got {json_type(value)}{shown}"
        )
    if kind in ("array", "object"):
        try:
            ok = json.loads(canonical_json(ok))
        except (TypeError, ValueError):
            raise InvalidParametersError(f"parameter {param.name!r} must hold only JSON values") from None
    if param.choices is not None and ok not in param.choices:
        raise InvalidParametersError(f"parameter {param.name!r} must be one of {param.choices!r}, got {ok!r}")
    return ok


class ParameterSchema:
    """Validates and canonicalizes the parameters of calls to one method version.

    Sweeps repeat the same parameter sets over many files, so results are memoized by the (hashable) value.
    """

    def __init__(self, spec: MethodSpec, function_hash_: str) -> None:
        self.spec = spec
        self.function_hash = function_hash_
        self._params = {p.name: p for p in spec.parameters}
        self._memo: dict[object, tuple[dict[str, Any], str]] = {}

    def canonicalize(self, given: Any) -> tuple[dict[str, Any], str]:
        """(canonical parameters, parameters_key) for a call, or InvalidParametersError."""
        if given is None:
            given = {}
        if type(given) is not dict and not isinstance(given, Mapping):  # a dict skips the ABC's slower check
            raise InvalidParametersError(f"parameters must be a JSON object, got {json_type(given)}")
        try:
            # The type is part of the key: True == 1 in Python, but not as a parameter value.
            memo_key: object = frozenset((name, type(value), value) for name, value in given.items())
            cached = self._memo.get(memo_key)
        except TypeError:
            memo_key, cached = None, None
        if cached is not None:
            return cached
        result = self._canonicalize(given)
        if memo_key is not None and len(self._memo) < 65536:
            self._memo[memo_key] = result
        return result

    def _canonicalize(self, given: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
        unknown = sorted(str(name) for name in given if name not in self._params)
        if unknown:
            known = ", ".join(sorted(self._params)) or "none"
            raise InvalidParametersError(f"unknown parameter {unknown[0]!r} (known: {known})")
        canonical: dict[str, Any] = {}
        for name, param in self._params.items():
            if name in given and not (given[name] is None and param.default is None and not param.required):
                canonical[name] = _coerce(param, given[name])
            elif param.required:
                raise InvalidParametersError(f"missing required parameter {name!r}")
            else:
                canonical[name] = param.default
        text = canonical_json(canonical)
        try:
            return canonical, parameters_key(self.function_hash, text)
        except UnicodeEncodeError:  # a lone surrogate ("\ud800" in JSON) has no UTF-8 form to hash or store
            bad = next(name for name, value in canonical.items() if not _is_utf8(value))
            raise InvalidParametersError(f"parameter {bad!r} must be valid Unicode text") from None


def _is_utf8(value: Any) -> bool:
    try:
        canonical_json(value).encode()
    except UnicodeEncodeError:
        return False
    return True
