"""Batch documents: the three forms, expansion order, duplicates, local files, and one-line errors."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from support import CountingBackend

from dshpc_jupyter.backends.embedded import EmbeddedBackend
from dshpc_jupyter.domain.hashing import sha256_bytes, sha256_file
from dshpc_jupyter.front.connection import Connection
from dshpc_jupyter.front.sweep import BatchSpecError, expand, load_file, parse_text
from dshpc_jupyter.service.factory import open_engine

H1, H2 = "a" * 64, "b" * 64

SEED_REQUEST = """{
  "jobs": [
    {
      "file_hash": "hash_of_file_1",
      "method_name": "Example Method",
      "parameters": {
        "param1": "value1",
        "param2": "value2"
      }
    },
    {
      "file_hash": "hash_of_file_2",
      "method_name": "Another Method",
      "parameters": {
        "threshold": 0.5,
        "verbose": true
      }
    }
    // Additional job configurations...
  ]
}"""


@pytest.fixture
def counted(home: Path) -> Iterator[tuple[Connection, CountingBackend]]:
    backend = CountingBackend(EmbeddedBackend(open_engine(home)))
    connection = Connection(backend)
    yield connection, backend
    connection.close()


def test_seed_request_pasted_verbatim_with_its_comment_line() -> None:
    expansion = expand(parse_text(SEED_REQUEST))
    assert expansion.configs == [
        {"file_hash": "hash_of_file_1", "method_name": "Example Method",
         "parameters": {"param1": "value1", "param2": "value2"}},
        {"file_hash": "hash_of_file_2", "method_name": "Another Method",
         "parameters": {"threshold": 0.5, "verbose": True}},
    ]  # fmt: skip
    assert expansion.duplicates == []


def test_bare_list_in_yaml_and_parameters_optional() -> None:
    text = f"- {{method_name: M, file_hash: {H1}}}\n- method_name: N\n  file_hash: {H2}\n  parameters: {{x: 1}}\n"
    configs = expand(parse_text(text)).configs
    assert configs == [
        {"file_hash": H1, "method_name": "M", "parameters": {}},
        {"file_hash": H2, "method_name": "N", "parameters": {"x": 1}},
    ]


def test_sweep_is_methods_by_files_by_grid_in_order() -> None:
    document = {
        "methods": ["A", "B"],
        "files": [H1, H2],
        "parameters": {"fixed": True},
        "grid": {"x": [1, 2, 3]},
    }
    configs = expand(document).configs
    assert len(configs) == 12
    assert [(c["method_name"], c["file_hash"][0], c["parameters"]["x"]) for c in configs[:4]] == [
        ("A", "a", 1), ("A", "a", 2), ("A", "a", 3), ("A", "b", 1),
    ]  # fmt: skip
    assert all(c["parameters"]["fixed"] is True for c in configs)
    assert configs[-1] == {"file_hash": H2, "method_name": "B", "parameters": {"fixed": True, "x": 3}}


def test_grid_of_two_parameters_is_a_cartesian_product() -> None:
    configs = expand({"method": "A", "files": H1, "grid": {"x": [1, 2], "y": ["p", "q", "r"]}}).configs
    assert [tuple(c["parameters"].values()) for c in configs] == [
        (1, "p"), (1, "q"), (1, "r"), (2, "p"), (2, "q"), (2, "r"),
    ]  # fmt: skip


def test_a_list_may_mix_configs_and_sweeps() -> None:
    document = [{"method_name": "M", "file_hash": H1}, {"method": "A", "files": [H2], "grid": {"x": [1, 2]}}]
    assert [c["method_name"] for c in expand(document).configs] == ["M", "A", "A"]


def test_duplicates_are_kept_and_reported() -> None:
    document = {"method": "A", "files": [H1, H1.upper()], "grid": {"x": [1, 1, 2]}}
    expansion = expand(document)
    assert len(expansion.configs) == 6
    assert expansion.duplicates == [(1, 0), (3, 0), (4, 0), (5, 2)]
    assert any("4 duplicate config(s)" in line and "#1 = #0" in line for line in expansion.notes())


def test_dataframe_with_parameter_columns_and_with_a_parameters_column() -> None:
    frame = pd.DataFrame({"method_name": ["A", "A"], "file_hash": [H1, H2], "x": [1, None], "label": ["p", "q"]})
    configs = expand(frame).configs
    assert configs == [
        {"file_hash": H1, "method_name": "A", "parameters": {"x": 1.0, "label": "p"}},
        {"file_hash": H2, "method_name": "A", "parameters": {"label": "q"}},
    ]
    assert type(configs[0]["parameters"]["x"]) is float  # numpy scalars become plain Python values
    again = pd.DataFrame({"method_name": ["A"], "file_hash": [H1], "parameters": [{"x": 2}], "status": ["F"]})
    assert expand(again).configs == [{"file_hash": H1, "method_name": "A", "parameters": {"x": 2}}]


def test_local_paths_and_globs_are_hashed_relative_to_the_base(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    for name, content in (("a.csv", b"1"), ("b.csv", b"2"), ("notes.txt", b"3")):
        (tmp_path / "data" / name).write_bytes(content)
    expansion = expand({"method": "A", "files": ["data/*.csv", "data/notes.txt", H1]}, base_dir=tmp_path)
    assert [c["file_hash"] for c in expansion.configs] == [sha256_bytes(b"1"), sha256_bytes(b"2"),
                                                           sha256_bytes(b"3"), H1]  # fmt: skip
    assert set(expansion.files) == {str(tmp_path / "data" / n) for n in ("a.csv", "b.csv", "notes.txt")}


def test_local_files_are_uploaded_once_and_only_when_missing(
    tmp_path: Path, counted: tuple[Connection, CountingBackend]
) -> None:
    connection, backend = counted
    (tmp_path / "a.txt").write_text("alpha")
    (tmp_path / "b.txt").write_text("beta")
    document = {"method": "A", "files": ["a.txt", "*.txt", "b.txt"], "grid": {"x": [1, 2]}}
    first = expand(document, upload=connection.upload_files, base_dir=tmp_path)
    assert len(first.configs) == 8 and len(first.duplicates) == 4
    assert backend.calls["upload_file"] == 2 and backend.calls["check_hashes"] == 1
    assert {f.file_hash for f in connection.list_files()} == {sha256_bytes(b"alpha"), sha256_bytes(b"beta")}
    second = expand(document, upload=connection.upload_files, base_dir=tmp_path)
    assert second.configs == first.configs
    assert backend.calls["upload_file"] == 2 and backend.calls["check_hashes"] == 2


def test_load_file_reads_paths_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("x")
    spec = tmp_path / "batch.yaml"
    spec.write_text("method: A\nfiles: [in.txt]\n")
    assert expand(parse_text(spec.read_text()), base_dir=tmp_path).configs == load_file(spec).configs


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("", "batch: the cell is empty"),
        ("method: [unclosed", "batch: invalid YAML at line 1"),
        ('{"jobs": [{"a": 1}', "batch: invalid YAML"),
        ("42", "batch: expected a sweep (mapping), a list of configs"),
        ("jobs: {a: 1}", "jobs: must be a list of configs, got mapping"),
        ("{jobs: [], extra: 1}", "batch: unexpected field 'extra' beside 'jobs'"),
        ("jobs: []", "batch: no configs"),
        ("- 3", "configs[0]: a config must be a mapping"),
        (f"- {{method_name: M, file_hash: {H1}, parameter: {{}}}}", "configs[0]: unknown field 'parameter'"),
        (f"- {{file_hash: {H1}}}", "configs[0].method_name: is required"),
        ("- {method_name: 3, file_hash: x}", "configs[0].method_name: must be a string, got integer"),
        ("- {method_name: M, file_hash: x, parameters: [1]}", "configs[0].parameters: must be a mapping, got list"),
        (f"method: A\nfile: {H1}", "sweep: unknown field 'file' (a sweep has method, methods, files"),
        (f"method_name: A\nfiles: [{H1}]", "(a config uses method_name and file_hash; a sweep uses method and"),
        (f"method: A\nmethods: [B]\nfiles: [{H1}]", "sweep: give 'method' or 'methods', not both"),
        ("method: A", "sweep: missing field 'files'"),
        (f"methods: []\nfiles: [{H1}]", "sweep.methods: must be a string or a non-empty list"),
        (f"methods: [A, 3]\nfiles: [{H1}]", "sweep.methods[1]: must be a non-empty string, got integer"),
        (f"method: A\nfiles: [{H1}]\ngrid: {{x: 1}}", "sweep.grid.x: must be a non-empty list of values, got integer"),
        (f"method: A\nfiles: [{H1}]\ngrid: {{x: []}}", "sweep.grid.x: must be a non-empty list"),
        (f"method: A\nfiles: [{H1}]\ngrid: [1]", "sweep.grid: must be a mapping of parameter name"),
        (f"method: A\nfiles: [{H1}]\nparameters: {{x: 1}}\ngrid: {{x: [2]}}", "sweep.grid.x: also set in parameters"),
        (f"method: A\nfiles: [{H1}]\nparameters: [1]", "sweep.parameters: must be a mapping, got list"),
        ("method: A\nfiles: [nowhere/*.csv]", "sweep.files[0]: no file matches 'nowhere/*.csv'"),
        ("method: A\nfiles: [missing.txt]", "sweep.files[0]: 'missing.txt' is neither a file_hash"),
        (f"- {{method: A, files: [{H1}], grid: {{x: 2}}}}", "configs[0].grid.x: must be a non-empty list"),
    ],
)
def test_every_mistake_is_one_line_naming_the_field(document: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(BatchSpecError) as caught:
        expand(parse_text(document), base_dir=tmp_path)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_dataframe_mistakes_name_the_column() -> None:
    with pytest.raises(BatchSpecError, match="DataFrame: missing column 'file_hash'"):
        expand(pd.DataFrame({"method_name": ["A"]}))
    with pytest.raises(BatchSpecError, match="DataFrame row 0: 'parameters' must be a mapping, got string"):
        expand(pd.DataFrame({"method_name": ["A"], "file_hash": [H1], "parameters": ["x=1"]}))


def test_a_sweep_over_named_inputs(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    for name in ("a", "b", "c"):
        (tmp_path / "data" / f"{name}.csv").write_text(name)
    (tmp_path / "ref.csv").write_text("ref")
    document = "method: M\ninputs: {reference: ref.csv, data: 'data/*.csv'}\ngrid: {k: [1, 2]}"
    expansion = expand(parse_text(document), base_dir=tmp_path)
    ref, a, b, c = (sha256_file(tmp_path / p) for p in ("ref.csv", "data/a.csv", "data/b.csv", "data/c.csv"))
    assert [(cfg["file_inputs"], cfg["parameters"]) for cfg in expansion.configs] == [
        ({"reference": ref, "data": d}, {"k": k}) for d in (a, b, c) for k in (1, 2)
    ]
    assert all("file_hash" not in cfg for cfg in expansion.configs)
    plain = expand(parse_text(f"- {{method_name: M, file_inputs: {{data: {a}}}}}\n- {{method_name: P}}"))
    assert plain.configs == [
        {"method_name": "M", "file_inputs": {"data": a}, "parameters": {}},
        {"method_name": "P", "parameters": {}},
    ]
    for bad, message in [
        (f"method: M\nfiles: [{H1}]\ninputs: {{d: {H1}}}", "sweep: give 'files' (one input) or 'inputs'"),
        ("method: M\ninputs: [1]", "sweep.inputs: must be a mapping of input name"),
        ("method: M\ninputs: {d: 'none/*.csv'}", "sweep.inputs.d[0]: no file matches 'none/*.csv'"),
    ]:
        with pytest.raises(BatchSpecError, match=re.escape(message)):
            expand(parse_text(bad), base_dir=tmp_path)
