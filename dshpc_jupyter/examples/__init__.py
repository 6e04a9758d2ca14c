"""Example methods and data files, shipped with the package for the demo, the notebooks and the tests."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent


def methods_dir() -> Path:
    """A directory of method directories: pass it to ``register_method``."""
    return ROOT / "methods"


def data_dir() -> Path:
    """Small CSV and text files. ``stations/`` holds four hourly temperature logs for the sweep notebook; the
    west station's logger names its column ``temp_c`` instead of ``temperature``, on purpose, so that a sweep fails."""
    return ROOT / "data"


def data_files(pattern: str = "*") -> list[Path]:
    """The example data files matching a glob pattern, sorted."""
    return sorted(p for p in data_dir().glob(pattern) if p.is_file())
