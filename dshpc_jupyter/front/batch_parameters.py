"""The per-parameter columns of a batch's frames, kept until the answers or the defaults change.

A parameter column depends on the configs (fixed), the method each config was resolved to (its result) and that
method's defaults (fetched): none of them moves while jobs run, so a live batch computes them once per sending
rather than at every view (a Python pass over every config: about a quarter of a 100,000-row ``Batch.df``).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .batch_columns import ColumnsSnapshot
from .batch_views import ParameterDefaults


@dataclass(frozen=True, slots=True)
class ParameterColumn:
    """One parameter's value per config (given, else the method's default); ``strings`` when every value present
    is a string (the frame then makes it a category)."""

    values: list[Any]
    strings: bool


class ParameterColumns:
    """The parameter columns of the last snapshot asked, reused while its answers and the defaults are the same."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple[object, int, object] | None = None
        self._columns: dict[str, ParameterColumn] = {}

    def of(self, snapshot: ColumnsSnapshot, defaults: ParameterDefaults) -> dict[str, ParameterColumn]:
        """Each parameter's column, in the order first met (shared lists: callers copy them into their frames)."""
        key = (snapshot.configs, snapshot.results_version, defaults.by_function)
        with self._lock:
            known = self._key
            if known is not None and known[0] is key[0] and known[1] == key[1] and known[2] is key[2]:
                return self._columns
        columns = {name: ParameterColumn(values, _all_strings(values))
                   for name, values in parameter_columns(snapshot, defaults).items()}  # fmt: skip
        with self._lock:
            self._key, self._columns = key, columns
        return columns


def parameter_columns(snapshot: ColumnsSnapshot, defaults: ParameterDefaults) -> dict[str, list[Any]]:
    """Each parameter's values, a column per name in the order first met: those given, over the method's
    defaults (what :meth:`ParameterDefaults.of` gives one row), without building a merged dict per row."""
    known_of = defaults.by_function or {}
    pairs: list[tuple[Mapping[str, Any], Mapping[str, Any]]] = []
    for config, function_hash in zip(snapshot.configs, snapshot.columns.function_hash, strict=True):
        given = config.get("parameters") or {}
        if not isinstance(given, dict) and not isinstance(given, Mapping):  # the cheap check first: dicts
            pairs.append(({}, {}))
            continue
        pairs.append((given, known_of.get(function_hash or "", {})))
    names: dict[str, None] = {}
    last: Mapping[str, Any] | None = None
    for given, known in pairs:
        if known is not last:  # consecutive rows mostly share a method's defaults: its names are added once
            names.update(dict.fromkeys(known))
            last = known
        if not given.keys() <= known.keys():  # a name the defaults lack (invalid, or defaults unknown)
            names.update(dict.fromkeys(given))
    return {name: [g[name] if name in g else k.get(name) for g, k in pairs] for name in names}


def _all_strings(values: list[Any]) -> bool:
    present = [v for v in values if v is not None]
    return bool(present) and all(isinstance(v, str) for v in present)
