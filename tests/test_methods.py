"""Method directories: spec errors naming the field, function_hash rules, versions, parameter validation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support import wait_for_jobs, write_method

from dshpc_jupyter.domain.errors import InvalidInputError, MethodSpecError
from dshpc_jupyter.domain.hashing import function_hash
from dshpc_jupyter.domain.methods import InvalidParametersError, ParameterSchema, parse_spec
from dshpc_jupyter.domain.models import MethodSpec
from dshpc_jupyter.service.engine import Engine

ECHO = "import sys\nprint(open(sys.argv[2]).read())\n"


def _spec(directory: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((directory / "method.json").read_text())
    return loaded


def _rewrite_spec(directory: Path, **changes: Any) -> None:
    (directory / "method.json").write_text(json.dumps({**_spec(directory), **changes}))


def _hash(directory: Path) -> str:
    return function_hash(_spec(directory), directory)


# --- method.json errors name the field ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"parameters": [{"name": "x", "type": "float32"}]}, "parameters.0.type"),
        ({"parameters": [{"name": "x", "type": "integer", "default": "ten"}]}, "parameters[0] ('x'): default 'ten'"),
        ({"parameters": [{"name": "x", "type": "string", "choices": ["a", 3]}]}, "parameters[0] ('x'): choice 3"),
        (
            {"parameters": [{"name": "x", "type": "string"}, {"name": "x", "type": "integer"}]},
            "parameters[1] ('x'): duplicate parameter name",
        ),
        ({"parameters": [{"type": "string"}]}, "parameters.0.name"),
        ({"parameters": "uppercase"}, "parameters"),
        ({"script_path": "../outside.py"}, "script_path '../outside.py' points outside the method directory"),
        ({"script_path": "missing.py"}, "script_path 'missing.py' is not a file"),
        ({"command": "  "}, "command: must not be empty"),
        ({"name": ""}, "name: must not be empty"),
        ({"resources": {"time": "soon"}}, "resources.time: 'soon'"),
        ({"resources": {"mem": "lots"}}, "resources.mem: 'lots'"),
    ],
)
def test_method_json_errors_name_the_field(
    engine: Engine, tmp_path: Path, changes: dict[str, Any], expected: str
) -> None:
    directory = write_method(tmp_path, "Broken", ECHO)
    (tmp_path / "outside.py").write_text("print(1)\n")
    _rewrite_spec(directory, **changes)
    with pytest.raises(MethodSpecError) as caught:
        engine.register_method(directory)
    assert expected in str(caught.value)
    assert "method.json" in str(caught.value)
    assert "Broken" not in [m.name for m in engine.list_methods()]


def test_method_json_missing_required_field_and_bad_json(engine: Engine, tmp_path: Path) -> None:
    directory = write_method(tmp_path, "Broken", ECHO)
    spec = _spec(directory)
    del spec["command"]
    (directory / "method.json").write_text(json.dumps(spec))
    with pytest.raises(MethodSpecError, match="command: Field required"):
        engine.register_method(directory)
    (directory / "method.json").write_text("{not json")
    with pytest.raises(MethodSpecError, match="cannot read JSON"):
        engine.register_method(directory)
    (directory / "method.json").write_text("[1, 2]")
    with pytest.raises(MethodSpecError, match="must be a JSON object"):
        engine.register_method(directory)


def test_method_directory_errors(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(MethodSpecError, match="does not exist or is not a directory"):
        engine.register_method(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MethodSpecError, match=r"no method\.json"):
        engine.register_method(tmp_path / "empty")
    # MethodSpecError is an InvalidInputError: a caller's mistake (422 over HTTP), never a crash.
    assert issubclass(MethodSpecError, InvalidInputError)


def test_type_aliases_are_normalized() -> None:
    spec = parse_spec(
        {"name": "A", "command": "python3", "script_path": "m.py", "parameters": [{"name": "n", "type": "Float"}]}
    )
    assert spec.parameters[0].type == "number"


# --- function_hash and versions ----------------------------------------------------------------------


def test_function_hash_covers_every_file_recursively(tmp_path: Path) -> None:
    directory = write_method(tmp_path, "Multi", ECHO, extra_files={"pkg/__init__.py": "", "pkg/helper.py": "A = 1\n"})
    base = _hash(directory)
    assert _hash(directory) == base, "hashing is deterministic"

    (directory / "pkg" / "helper.py").write_text("A = 2\n")
    changed_subdir = _hash(directory)
    assert changed_subdir != base

    (directory / "pkg" / "helper.py").write_text("A = 1\n")
    assert _hash(directory) == base, "the content, not the modification time, is hashed"

    (directory / "pkg" / "helper.py").rename(directory / "pkg" / "renamed.py")
    assert _hash(directory) != base, "paths are hashed too"
    (directory / "pkg" / "renamed.py").rename(directory / "pkg" / "helper.py")

    (directory / "pkg" / "__pycache__").mkdir()
    (directory / "pkg" / "__pycache__" / "helper.cpython-311.pyc").write_bytes(b"\0junk")
    (directory / "notes.pyc").write_bytes(b"junk")
    assert _hash(directory) == base, "bytecode caches are not part of a method"

    (directory / "pkg" / "deeper").mkdir()
    (directory / "pkg" / "deeper" / "data.txt").write_text("new")
    assert _hash(directory) != base

    _rewrite_spec(directory, version="2")
    assert _hash(directory) != base


def test_changed_file_in_subdirectory_makes_new_version_and_new_jobs(
    engine: Engine, example_hashes: dict[str, str], tmp_path: Path
) -> None:
    script = "import json, sys\nfrom pkg.helper import WORD\nprint(json.dumps({'word': WORD}))\n"
    directory = write_method(
        tmp_path, "Versioned", script, extra_files={"pkg/__init__.py": "", "pkg/helper.py": "WORD = 'one'\n"}
    )
    [v1] = engine.register_method(directory)
    config = {"file_hash": example_hashes["hello.txt"], "method_name": "Versioned"}

    first = engine.simulate_jobs([config]).results[0]
    assert (first.message, first.function_hash) == ("New job submitted", v1.function_hash)
    [record] = wait_for_jobs(engine, [first.job_id or ""])
    assert (record.status, json.loads(record.output or "")) == ("CD", {"word": "one"})
    cached = engine.simulate_jobs([config]).results[0]
    assert (cached.message, cached.job_id) == ("Completed job found", first.job_id)

    (directory / "pkg" / "helper.py").write_text("WORD = 'two'\n")
    [v2] = engine.register_method(directory)
    assert v2.function_hash != v1.function_hash and v2.latest
    second = engine.simulate_jobs([config]).results[0]
    assert (second.message, second.function_hash, second.old_status) == ("New job submitted", v2.function_hash, None)
    assert second.job_id != first.job_id
    [record] = wait_for_jobs(engine, [second.job_id or ""])
    assert json.loads(record.output or "") == {"word": "two"}, "the new version's code ran"

    # Registering the first version again (unchanged) makes it the latest again: its cached job is served.
    (directory / "pkg" / "helper.py").write_text("WORD = 'one'\n")
    [again] = engine.register_method(directory)
    assert again.function_hash == v1.function_hash and again.latest
    back = engine.simulate_jobs([config]).results[0]
    assert (back.message, back.job_id, back.function_hash) == ("Completed job found", first.job_id, v1.function_hash)
    versions = engine.method_versions("Versioned")
    assert [v.function_hash for v in versions] == [v1.function_hash, v2.function_hash], "newest registration first"
    assert [v.latest for v in versions] == [True, False]


def test_reregistering_unchanged_method_is_idempotent(engine: Engine, tmp_path: Path) -> None:
    directory = write_method(tmp_path, "Stable", ECHO)
    [first] = engine.register_method(directory)
    [second] = engine.register_method(directory)
    assert second.function_hash == first.function_hash
    assert len(engine.method_versions("Stable")) == 1
    assert [m.function_hash for m in engine.list_methods() if m.name == "Stable"] == [first.function_hash]


def test_latest_is_last_registered_not_newest_content(engine: Engine, tmp_path: Path) -> None:
    a = write_method(tmp_path / "a", "Flip", ECHO)
    b = write_method(tmp_path / "b", "Flip", ECHO + "# b\n")
    [ha] = engine.register_method(a)
    [hb] = engine.register_method(b)
    [ha2] = engine.register_method(a)
    assert ha2.function_hash == ha.function_hash != hb.function_hash
    latest = [m for m in engine.list_methods() if m.name == "Flip"]
    assert [m.function_hash for m in latest] == [ha.function_hash]


def test_directory_of_methods_registers_each(engine: Engine, tmp_path: Path) -> None:
    write_method(tmp_path / "set", "One", ECHO)
    write_method(tmp_path / "set", "Two", ECHO)
    registered = engine.register_method(tmp_path / "set")
    assert sorted(m.name for m in registered) == ["One", "Two"]


def test_registered_method_runs_from_its_frozen_copy(
    engine: Engine, example_hashes: dict[str, str], tmp_path: Path
) -> None:
    directory = write_method(tmp_path, "Frozen", "print('original')\n")
    engine.register_method(directory)
    (directory / "main.py").write_text("print('edited but not registered')\n")
    result = engine.simulate_jobs([{"file_hash": example_hashes["hello.txt"], "method_name": "Frozen"}]).results[0]
    [record] = wait_for_jobs(engine, [result.job_id or ""])
    assert record.output == "original\n"


# --- parameters --------------------------------------------------------------------------------------

SPEC = MethodSpec.model_validate(
    {
        "name": "P",
        "command": "python3",
        "script_path": "m.py",
        "parameters": [
            {"name": "flag", "type": "boolean", "default": False},
            {"name": "count", "type": "integer", "default": 1},
            {"name": "ratio", "type": "number", "default": 0.5},
            {"name": "label", "type": "string", "default": ""},
            {"name": "mode", "type": "string", "default": "fast", "choices": ["fast", "slow"]},
            {"name": "items", "type": "array", "default": []},
            {"name": "options", "type": "object", "default": {}},
            {"name": "note", "type": "string"},
            {"name": "needed", "type": "string", "required": True},
        ],
    }
)


def _canonical(given: Any) -> tuple[dict[str, Any], str]:
    return ParameterSchema(SPEC, "f" * 64).canonicalize(given)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"needed": "x", "colour": 1}, "unknown parameter 'colour'"),
        ({"needed": "x", "flag": 1}, "parameter 'flag' must be a boolean, got integer 1"),
        ({"needed": "x", "flag": "true"}, "parameter 'flag' must be a boolean, got string"),
        ({"needed": "x", "count": True}, "parameter 'count' must be an integer, got boolean"),
        ({"needed": "x", "count": 1.5}, "parameter 'count' must be an integer, got number 1.5"),
        ({"needed": "x", "ratio": "0.5"}, "parameter 'ratio' must be a number, got string"),
        ({"needed": "x", "ratio": float("inf")}, "parameter 'ratio' must be a number"),
        ({"needed": "x", "ratio": 10**400}, "parameter 'ratio' must be a number"),
        ({"needed": "x", "label": None}, "parameter 'label' must be a string, got null"),
        ({"needed": "x", "mode": "medium"}, "parameter 'mode' must be one of ['fast', 'slow'], got 'medium'"),
        ({"needed": "x", "items": {"a": 1}}, "parameter 'items' must be an array, got object"),
        ({"needed": "x", "options": [1]}, "parameter 'options' must be an object, got array"),
        ({"needed": "x", "items": [float("nan")]}, "parameter 'items' must hold only JSON values"),
        ({"needed": "x", "label": "\ud800"}, "parameter 'label' must be valid Unicode text"),
        ({"needed": "x", "items": ["\udcff"]}, "parameter 'items' must be valid Unicode text"),
        ({"needed": None}, "parameter 'needed' must be a string, got null"),
        ({}, "missing required parameter 'needed'"),
        ([1, 2], "parameters must be a JSON object, got array"),
        ("flag=1", "parameters must be a JSON object, got string"),
        (3, "parameters must be a JSON object, got integer"),
    ],
)
def test_invalid_parameters_name_the_parameter(given: Any, expected: str) -> None:
    with pytest.raises(InvalidParametersError) as caught:
        _canonical(given)
    assert expected in str(caught.value)


def test_null_message_is_not_repeated() -> None:
    with pytest.raises(InvalidParametersError) as caught:
        _canonical({"needed": "x", "label": None})
    assert str(caught.value) == "parameter 'label' must be a string, got null"


def test_defaults_filled_and_null_means_default_only_without_one() -> None:
    canonical, _ = _canonical({"needed": "x", "note": None})
    assert canonical == {
        "flag": False, "count": 1, "ratio": 0.5, "label": "", "mode": "fast", "items": [], "options": {},
        "note": None, "needed": "x",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ({"needed": "x"}, {"needed": "x", "flag": False, "count": 1, "mode": "fast"}),
        ({"needed": "x", "label": "a", "flag": True}, {"flag": True, "label": "a", "needed": "x"}),
        ({"needed": "x", "ratio": 1}, {"needed": "x", "ratio": 1.0}),
        ({"needed": "x", "count": 3}, {"needed": "x", "count": 3.0}),
        ({"needed": "x", "ratio": 0.0}, {"needed": "x", "ratio": -0.0}),
        (
            {"needed": "x", "options": {"a": 1, "b": {"d": 2, "c": 3}}},
            {"needed": "x", "options": {"b": {"c": 3, "d": 2}, "a": 1}},
        ),
        ({"needed": "x", "note": None}, {"needed": "x"}),
    ],
)
def test_equivalent_parameters_share_one_key(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert _canonical(a) == _canonical(b)
    # Memoized or not, in either order: a fresh schema gives the same key as a warm one.
    warm = ParameterSchema(SPEC, "f" * 64)
    assert warm.canonicalize(b)[1] == warm.canonicalize(a)[1] == _canonical(a)[1]


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ({"needed": "x", "flag": True}, {"needed": "x"}),
        ({"needed": "x", "count": 2}, {"needed": "x"}),
        ({"needed": "x", "items": [1, 2]}, {"needed": "x", "items": [2, 1]}),
        ({"needed": "x", "label": "1"}, {"needed": "x", "label": "1 "}),
    ],
)
def test_different_parameters_have_different_keys(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert _canonical(a)[1] != _canonical(b)[1]


def test_true_and_1_are_never_confused() -> None:
    """True == 1 in Python; the memo must not hand one's answer to the other."""
    schema = ParameterSchema(SPEC, "f" * 64)
    assert schema.canonicalize({"needed": "x", "count": 1})[0]["count"] == 1
    with pytest.raises(InvalidParametersError, match="'count' must be an integer, got boolean"):
        schema.canonicalize({"needed": "x", "count": True})
    assert schema.canonicalize({"needed": "x", "flag": True})[0]["flag"] is True
    with pytest.raises(InvalidParametersError, match="'flag' must be a boolean, got integer"):
        schema.canonicalize({"needed": "x", "flag": 1})


def test_parameters_key_depends_on_the_method_version() -> None:
    assert (
        ParameterSchema(SPEC, "a" * 64).canonicalize({"needed": "x"})[1]
        != ParameterSchema(SPEC, "b" * 64).canonicalize({"needed": "x"})[1]
    )


def test_engine_reports_parameter_errors_per_config(engine: Engine, example_hashes: dict[str, str]) -> None:
    poem = example_hashes["poem.txt"]
    configs: list[dict[str, Any]] = [
        {"file_hash": poem, "method_name": "Example Python Method", "parameters": {"colour": "red"}},
        {"file_hash": poem, "method_name": "Example Python Method", "parameters": {"uppercase": 1}},
        {"file_hash": poem, "method_name": "Word Count (bash)", "parameters": {"unit": "chars"}},
        {"file_hash": poem, "method_name": "Example Python Method", "parameters": ["uppercase"]},
        {"file_hash": poem, "method_name": "Example Python Method", "parameters": {"prefix": None}},
        {"file_hash": poem, "method_name": "Threshold Filter", "parameters": {"threshold": 10**400}},
        {"file_hash": poem, "method_name": "Example Python Method", "parameters": {"prefix": "\ud800"}},
        {"file_hash": poem, "method_name": "Example Python Method", "parameters": None},
    ]
    response = engine.simulate_jobs(configs, dry_run=True)
    messages = [r.message for r in response.results]
    assert messages[:7] == [
        "Invalid parameters: unknown parameter 'colour' (known: prefix, uppercase)",
        "Invalid parameters: parameter 'uppercase' must be a boolean, got integer 1",
        "Invalid parameters: parameter 'unit' must be one of ['lines', 'words', 'bytes'], got 'chars'",
        "Invalid parameters: parameters must be a JSON object, got array",
        "Invalid parameters: parameter 'prefix' must be a string, got null",
        messages[5],
        "Invalid parameters: parameter 'prefix' must be valid Unicode text",
    ]
    assert messages[5].startswith("Invalid parameters: parameter 'threshold' must be a number, got integer 1000")
    assert response.results[7].outcome == "new", "parameters: null means no parameters"
    assert [r.outcome for r in response.results[:7]] == ["invalid"] * 7
    assert response.failed_submissions == 7
