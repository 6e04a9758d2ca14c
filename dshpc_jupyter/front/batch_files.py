"""A batch's files as pandas (docs/design.md section 8): one column per named input (file names where the
service knows them), and the output files every job wrote, listed and downloaded."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from ..domain.errors import InvalidInputError
from .batch_row import Row

if TYPE_CHECKING:
    import pandas as pd

    from .connection import Connection


def input_names(configs: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every input name the configs give, in the order first met."""
    given = (c.get("file_inputs") for c in configs)  # mostly None: the ABC check only for those that have some
    names = (n for inputs in given if inputs and isinstance(inputs, Mapping) for n in inputs)
    return list(dict.fromkeys(names))


def input_columns(
    configs: Sequence[Mapping[str, Any]], names: Sequence[str], file_names: Mapping[str, str | None]
) -> dict[str, Any]:
    """``input.NAME`` columns (one per name of :func:`input_names`): each input's file name (its hash when the
    service has no name), a list for an array input."""

    def shown(value: Any) -> Any:
        if isinstance(value, list):
            return [shown(v) for v in value]
        return file_names.get(str(value).lower()) or value

    import pandas as pd

    return {
        f"input.{name}": pd.Series([shown((c.get("file_inputs") or {}).get(name)) for c in configs], dtype=object)
        for name in names
    }


def files_frame(rows: Sequence[Row], sizes: Mapping[str, int]) -> pd.DataFrame:
    """One row per output file of every job: the config's row, the file's path, hash and size."""
    import pandas as pd

    records = [
        {"row": r.index, "job_id": r.job.job_id, "path": path, "hash": file_hash, "size": sizes.get(file_hash)}
        for r in rows
        if r.job is not None
        for path, file_hash in r.job.output_files.items()
    ]
    frame = pd.DataFrame.from_records(records, columns=["row", "job_id", "path", "hash", "size"])
    frame["size"] = frame["size"].astype("Int64")
    return frame


def download_outputs(connection: Connection, frame: pd.DataFrame, folder: str | Path) -> list[Path]:
    """Each output file into ``folder/<row>/<path>`` (folders made as needed); the paths written."""
    root = Path(folder).expanduser()
    written = []
    for row, path, file_hash in zip(frame["row"], frame["path"], frame["hash"], strict=True):
        relative = PurePosixPath(path.lstrip("@"))
        if relative.is_absolute() or ".." in relative.parts:  # a job's own outputs never are; a service's might be
            raise InvalidInputError(f"output_files: path {path!r} of row {row} leaves its folder")
        target = root / str(row) / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        written.append(connection.download(file_hash, target))
    return written
