"""Real data on both backends (docs/design.md section 8): named inputs and arrays staged read-only,
parameters-only jobs, the identity of multi-input jobs, the per-config errors of inputs, output files stored
once and read back byte for byte (and used as a later job's input), a stdout over the limit kept whole."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from support import wait_for_jobs, write_method
from test_backends_shared import BACKENDS, open_connection

from dshpc_jupyter.domain.errors import MethodSpecError
from dshpc_jupyter.domain.hashing import sha256_bytes
from dshpc_jupyter.front.batch import Batch
from dshpc_jupyter.front.connection import Connection
from dshpc_jupyter.schedulers.runner import OUTPUT_LIMIT, STDOUT_OUTPUT

MERGE = "Merge Inputs"
PARAMS_ONLY = "Parameters Only"
LOUD = "Loud Method"
ANY_FORM = "Any Form"

MERGE_SCRIPT = r"""
import json, os, sys
manifest_path, params_path = sys.argv[1], sys.argv[2]
assert manifest_path == os.environ["INPUTS_FILE"] and "INPUT_FILE" not in os.environ
inputs = json.load(open(manifest_path))
def read(path):
    assert os.stat(path).st_mode & 0o222 == 0, f"{path} is writable"
    assert path.startswith(os.environ["JOB_WORKSPACE"])
    return open(path).read()
text = {k: read(v) if isinstance(v, str) else [read(p) for p in v] for k, v in inputs.items()}
out = os.path.join(os.environ["JOB_WORKSPACE"], "outputs")
os.makedirs(os.path.join(out, "tables"), exist_ok=True)
open(os.path.join(out, "tables", "joined.txt"), "w").write(text["data"] + "|" + text["reference"])
open(os.path.join(out, "constant.txt"), "w").write("the same in every job\n")
os.symlink("/etc/passwd", os.path.join(out, "escape"))
print(json.dumps({"inputs": sorted(inputs), "replicates": text.get("replicates", [])}))
"""
PARAMS_SCRIPT = r"""
import json, os, sys
assert len(sys.argv) == 2 and "INPUT_FILE" not in os.environ and "INPUTS_FILE" not in os.environ
print(json.dumps({"n": json.load(open(sys.argv[1]))["n"] * 2}))
"""
ANY_SCRIPT = r"""
import json, os, sys
print(json.dumps({"args": len(sys.argv) - 1, "input": open(sys.argv[1]).read() if len(sys.argv) == 3 else None}))
"""
LOUD_SCRIPT = f"import sys\nsys.stdout.write('x' * {OUTPUT_LIMIT + 1000})\n"


def declare_inputs(directory: Path, inputs: list[dict[str, Any]]) -> Path:
    spec = json.loads((directory / "method.json").read_text())
    (directory / "method.json").write_text(json.dumps({**spec, "inputs": inputs}))
    return directory


@pytest.fixture(params=BACKENDS)
def conn(request: pytest.FixtureRequest, home: Path, tmp_path: Path) -> Iterator[Connection]:
    root = tmp_path / "methods"
    declare_inputs(
        write_method(root, MERGE, MERGE_SCRIPT),
        [{"name": "data", "description": "the data"}, {"name": "reference"},
         {"name": "replicates", "required": False, "multiple": True}],
    )  # fmt: skip
    write_method(root, PARAMS_ONLY, PARAMS_SCRIPT, parameters=[{"name": "n", "type": "integer", "required": True}])
    write_method(root, ANY_FORM, ANY_SCRIPT)
    write_method(root, LOUD, LOUD_SCRIPT)
    with ExitStack() as stack:
        connection = open_connection(request.param, home, stack)
        connection.register_method(root)
        yield connection


@pytest.fixture
def files(conn: Connection) -> dict[str, str]:
    return {name: conn.upload_file(f"{name}-content".encode(), filename=f"{name}.txt").file_hash
            for name in ("a", "b", "c", "d")}  # fmt: skip


def run(conn: Connection, configs: list[dict[str, Any]]) -> list[Any]:
    response = conn.simulate_jobs(configs)
    ids = [r.job_id for r in response.results]
    assert all(ids), [r.message for r in response.results]
    records = {r.job_id: r for r in wait_for_jobs(conn, ids)}  # type: ignore[arg-type]
    return [records[i] for i in ids]


def test_named_inputs_and_an_array_are_staged_read_only_and_outputs_are_stored(
    conn: Connection, files: dict[str, str]
) -> None:
    inputs = {"reference": files["b"], "data": files["a"], "replicates": [files["c"], files["d"]]}
    (job,) = run(conn, [{"method_name": MERGE, "file_inputs": inputs}])
    assert job.status == "CD", job.error
    assert json.loads(job.output) == {"inputs": ["data", "reference", "replicates"],
                                      "replicates": ["c-content", "d-content"]}  # fmt: skip
    assert job.file_hash is None and job.file_inputs == inputs
    joined = b"a-content|b-content"
    assert job.output_files == {"constant.txt": sha256_bytes(b"the same in every job\n"),
                                "tables/joined.txt": sha256_bytes(joined)}, "symlinks are not collected"  # fmt: skip
    assert conn.read_bytes(job.output_files["tables/joined.txt"]) == joined
    stored = conn.get_file(job.output_files["tables/joined.txt"])
    assert (stored.filename, stored.file_size, stored.metadata) == (
        "joined.txt", len(joined), {"job_id": job.job_id, "path": "tables/joined.txt"},
    )  # fmt: skip
    assert conn.get_job(job.job_id).output_files == job.output_files
    assert conn.job_statuses([job.job_id])[0].output_files == job.output_files


def test_outputs_are_stored_once_downloaded_byte_for_byte_and_feed_a_later_job(
    conn: Connection, files: dict[str, str], tmp_path: Path
) -> None:
    first, second = run(conn, [
        {"method_name": MERGE, "file_inputs": {"data": files["a"], "reference": files["b"]}},
        {"method_name": MERGE, "file_inputs": {"data": files["c"], "reference": files["d"]}},
    ])  # fmt: skip
    constant = first.output_files["constant.txt"]
    assert second.output_files["constant.txt"] == constant
    assert [f.file_hash for f in conn.list_files()].count(constant) == 1, "stored once"
    target = conn.download(first.output_files["tables/joined.txt"], tmp_path)
    assert target == tmp_path / "joined.txt" and target.read_bytes() == b"a-content|b-content"
    renamed = conn.download(constant, tmp_path / "renamed.txt")
    assert renamed.read_bytes() == b"the same in every job\n"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]
    (later,) = run(conn, [{"method_name": ANY_FORM, "file_hash": first.output_files["tables/joined.txt"]}])
    assert json.loads(later.output) == {"args": 2, "input": "a-content|b-content"}


def test_a_parameters_only_job_gets_no_input_argument(conn: Connection) -> None:
    (job,) = run(conn, [{"method_name": PARAMS_ONLY, "parameters": {"n": 21}}])
    assert (job.status, json.loads(job.output), job.file_hash, job.file_inputs) == ("CD", {"n": 42}, None, None)
    again = conn.simulate_jobs([{"method_name": PARAMS_ONLY, "parameters": {"n": 21}}]).results[0]
    assert (again.outcome, again.job_id) == ("cached", job.job_id)


def test_a_method_declaring_no_inputs_takes_all_three_forms(conn: Connection, files: dict[str, str]) -> None:
    seed, named, none = run(conn, [
        {"method_name": ANY_FORM, "file_hash": files["a"]},
        {"method_name": ANY_FORM, "file_inputs": {"x": files["a"]}},
        {"method_name": ANY_FORM},
    ])  # fmt: skip
    assert json.loads(seed.output) == {"args": 2, "input": "a-content"}
    assert json.loads(named.output)["args"] == 2 and named.job_id != seed.job_id, "a manifest, another job"
    assert json.loads(none.output) == {"args": 1, "input": None}


def test_multi_input_identity(conn: Connection, files: dict[str, str]) -> None:
    a, b, c, d = (files[k] for k in "abcd")
    configs = [
        {"method_name": MERGE, "file_inputs": {"data": a, "reference": b, "replicates": [c, d]}},
        {"method_name": MERGE, "file_inputs": {"replicates": [c, d], "reference": b.upper(), "data": a}},
        {"method_name": MERGE, "file_inputs": {"data": a, "reference": b, "replicates": [d, c]}},
    ]
    results = conn.simulate_jobs(configs).results
    assert results[0].job_id == results[1].job_id, "names in any order (and hash case) are one job"
    assert results[2].job_id not in (None, results[0].job_id), "arrays reordered are another job"
    single = conn.simulate_jobs([{"method_name": MERGE, "file_inputs": {"data": a, "reference": b, "replicates": c}}])
    plain = conn.simulate_jobs([{"method_name": MERGE, "file_inputs": {"data": a, "reference": b, "replicates": [c]}}])
    assert single.results[0].job_id == plain.results[0].job_id, "one hash for a multiple input is an array of one"
    wait_for_jobs(conn, [r.job_id for r in (*results, *single.results) if r.job_id])


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"file_hash": "A", "file_inputs": {"data": "A"}},
         "Invalid config: field 'file_inputs' cannot be given together with field 'file_hash'"),
        ({"file_inputs": {"data": "A", "reference": "B", "extra": "C"}},
         f"Invalid inputs: input 'extra' is not declared by method '{MERGE}' (its inputs: data, reference, repl"),
        ({"file_inputs": {"data": "A"}}, f"Invalid inputs: input 'reference' is required by method '{MERGE}'"),
        ({"file_inputs": {"data": ["A"], "reference": "B"}}, "Invalid inputs: input 'data' takes one file hash"),
        ({"file_hash": "A"}, f"Invalid inputs: method '{MERGE}' takes named inputs (data, reference, replicates)"),
        ({}, f"Invalid inputs: input 'data' is required by method '{MERGE}'"),
        ({"file_inputs": {"data": "A", "reference": "0" * 64}}, f"File '{'0' * 64}' (input 'reference') not found"),
        ({"file_inputs": {"data": "A", "reference": 5}}, "Invalid config: field 'file_inputs.reference' must be a"),
    ],
)  # fmt: skip
def test_each_input_error_is_per_config(
    conn: Connection, files: dict[str, str], config: dict[str, Any], message: str
) -> None:
    def spell(value: Any) -> Any:
        return (
            {"A": files["a"], "B": files["b"], "C": files["c"]}.get(value, value) if isinstance(value, str) else value
        )

    sent = {k: ({n: [spell(x) for x in v] if isinstance(v, list) else spell(v) for n, v in v.items()}
                if isinstance(v, dict) else spell(v)) for k, v in config.items()}  # fmt: skip
    good = {"method_name": PARAMS_ONLY, "parameters": {"n": 1}}
    response = conn.simulate_jobs([{"method_name": MERGE, **sent}, good])
    bad, fine = response.results
    assert bad.outcome == "invalid" and bad.message.startswith(message), bad.message
    assert bad.job_id is None and fine.outcome == "new"
    wait_for_jobs(conn, [fine.job_id])  # type: ignore[list-item]


def test_a_stdout_over_the_output_limit_is_kept_whole(conn: Connection) -> None:
    (job,) = run(conn, [{"method_name": LOUD}])
    assert job.status == "CD" and len(job.output) == OUTPUT_LIMIT
    whole = conn.read_bytes(job.output_files[STDOUT_OUTPUT])
    assert whole == b"x" * (OUTPUT_LIMIT + 1000)
    assert STDOUT_OUTPUT in (job.error or "")


def test_a_batch_shows_inputs_by_name_and_lists_and_downloads_its_output_files(
    conn: Connection, files: dict[str, str], tmp_path: Path
) -> None:
    configs = [
        {"method_name": MERGE, "file_inputs": {"data": files["a"], "reference": files["b"],
                                               "replicates": [files["c"], files["d"]]}},
        {"method_name": PARAMS_ONLY, "parameters": {"n": 2}},
    ]  # fmt: skip
    batch = Batch.submit(configs, connection=conn).wait(timeout=60)
    frame = batch.df
    assert list(frame["input.data"]) == ["a.txt", None] and frame["input.replicates"][0] == ["c.txt", "d.txt"]
    assert frame["output_files"][0] == conn.get_job(frame["job_id"][0]).output_files and frame["output_files"][1] == {}
    listed = batch.files()
    assert list(listed.columns) == ["row", "job_id", "path", "hash", "size"]
    assert sorted(listed["path"]) == ["constant.txt", "tables/joined.txt"] and set(listed["row"]) == {0}
    assert listed.set_index("path")["size"]["tables/joined.txt"] == len(b"a-content|b-content")
    written = batch.download(tmp_path / "out")
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in written) == [
        "0/constant.txt",
        "0/tables/joined.txt",
    ]
    assert (tmp_path / "out" / "0" / "tables" / "joined.txt").read_bytes() == b"a-content|b-content"


def test_methods_in_the_seeds_layout_register_unchanged(
    conn: Connection, files: dict[str, str], tmp_path: Path
) -> None:
    root = tmp_path / "seed_methods"
    (root / "commands").mkdir(parents=True)
    (root / "scripts" / "shout" / "utils").mkdir(parents=True)
    spec = {"name": "Shout", "description": "seed layout", "command": "python3", "script_path": "main.py",
            "parameters": [{"name": "times", "type": "int", "default": 2}], "version": "1.0.0"}  # fmt: skip
    (root / "commands" / "shout.json").write_text(json.dumps(spec))
    (root / "scripts" / "shout" / "utils" / "loud.py").write_text("def loud(t, n):\n    return t.upper() * n\n")
    (root / "scripts" / "shout" / "main.py").write_text(
        "import json, sys\nfrom utils.loud import loud\n"
        "print(json.dumps({'text': loud(open(sys.argv[1]).read(), json.load(open(sys.argv[2]))['times'])}))\n"
    )
    (registered,) = conn.register_method(root)
    assert (registered.name, registered.version, registered.parameters[0].type) == ("Shout", "1.0.0", "integer")
    assert conn.register_method(root)[0].function_hash == registered.function_hash, "the same files, the same hash"
    (job,) = run(conn, [{"method_name": "Shout", "file_hash": files["a"]}])
    assert json.loads(job.output) == {"text": "A-CONTENT" * 2}
    (root / "commands" / "orphan.json").write_text(json.dumps({**spec, "name": "Orphan"}))
    with pytest.raises(MethodSpecError, match="no script folder scripts/orphan/"):
        conn.register_method(root)


def test_a_download_never_writes_outside_its_folder(tmp_path: Path) -> None:
    import pandas as pd

    from dshpc_jupyter.domain.errors import InvalidInputError
    from dshpc_jupyter.front.batch_files import download_outputs

    listed = pd.DataFrame({"row": [0], "job_id": ["j"], "path": ["../escape.txt"], "hash": ["0" * 64], "size": [1]})
    with pytest.raises(InvalidInputError, match="leaves its folder"):
        download_outputs(None, listed, tmp_path / "out")  # type: ignore[arg-type]
    assert not (tmp_path / "escape.txt").exists()
