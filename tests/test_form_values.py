"""How the form reads what was typed: one value, a list, a range; every mistake named after its field."""

from __future__ import annotations

from typing import Any

import pytest

from dshpc_jupyter.domain.models import MethodParameter
from dshpc_jupyter.jupyter.form_values import (
    MAX_CONFIGS,
    MAX_VALUES,
    FieldError,
    build_configs,
    build_input_configs,
    describe_grid,
    format_size,
    parse_list,
    parse_range,
    parse_value,
)

H1, H2 = "a" * 64, "b" * 64


def param(kind: str, **extra: Any) -> MethodParameter:
    return MethodParameter(name="p", type=kind, **extra)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kind", "text", "value"),
    [
        ("integer", " 42 ", 42),
        ("integer", "1e3", 1000),
        ("integer", "-7", -7),
        ("number", "0.25", 0.25),
        ("number", "-0", 0.0),
        ("number", "3", 3.0),
        ("boolean", "Yes", True),
        ("boolean", "off", False),
        ("string", " spaced ", " spaced "),
        ("array", "[1, 2]", [1, 2]),
        ("object", '{"a": 1}', {"a": 1}),
    ],
)
def test_one_value_is_read_as_the_parameter_type(kind: str, text: str, value: Any) -> None:
    got = parse_value(param(kind), text)
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize(
    ("kind", "text", "problem"),
    [
        ("integer", "2.5", "'2.5' is not an integer"),
        ("integer", "ten", "'ten' is not an integer"),
        ("number", "nan", "'nan' is not a finite number"),
        ("number", "", "'' is not a number"),
        ("boolean", "maybe", "'maybe' is not true or false"),
        ("array", "{}", "'{}' is not a JSON list"),
        ("object", "[1", "'[1' is not a JSON object"),
    ],
)
def test_a_value_of_the_wrong_type_names_the_field(kind: str, text: str, problem: str) -> None:
    with pytest.raises(FieldError) as caught:
        parse_value(param(kind), text)
    assert caught.value.field == "p" and caught.value.problem == problem and str(caught.value) == f"p: {problem}"


def test_lists_keep_order_drop_repeats_and_check_choices() -> None:
    assert parse_list(param("number"), "0.1, 0.5,0.9, 0.5") == [0.1, 0.5, 0.9]
    assert parse_list(param("integer"), "3,1,2") == [3, 1, 2]
    assert parse_list(param("boolean"), "true, false") == [True, False]
    assert parse_list(param("string"), ' ["a, b", "c"] ') == ["a, b", "c"]  # a JSON list for text with commas
    unit = param("string", choices=["lines", "words", "bytes"])
    assert parse_list(unit, "lines, bytes") == ["lines", "bytes"]
    with pytest.raises(FieldError, match="'pages' is not one of: lines, words, bytes"):
        parse_list(unit, "lines, pages")


@pytest.mark.parametrize(
    ("kind", "text", "problem"),
    [
        ("number", "  ", "give the values to sweep, separated by commas"),
        ("number", "1,,2", "value 2 of the list is empty"),
        ("number", "1, x", "'x' is not a number"),
        ("string", "[1,", "starts with '[' but is not a JSON list"),
        ("string", "[]", "the list is empty"),
        ("object", '{"a": 1}', "object parameters cannot be swept in the form; give one value"),
        ("integer", ",".join(str(i) for i in range(MAX_VALUES + 1)), f"{MAX_VALUES + 1} values; at most {MAX_VALUES}"),
    ],
)
def test_bad_lists_are_refused_with_the_reason(kind: str, text: str, problem: str) -> None:
    with pytest.raises(FieldError) as caught:
        parse_list(param(kind), text)
    assert problem in caught.value.problem


def test_ranges_include_the_end_and_read_as_people_write_them() -> None:
    assert parse_range(param("number"), 0.1, 0.9, 0.2) == [0.1, 0.3, 0.5, 0.7, 0.9]
    assert parse_range(param("number"), 1.0, 0.0, -0.25) == [1.0, 0.75, 0.5, 0.25, 0.0]
    assert parse_range(param("number"), 0.0, 1.0, 0.3) == [0.0, 0.3, 0.6, 0.9]  # 1.0 is not on the grid
    assert parse_range(param("integer"), 2, 10, 4) == [2, 6, 10]
    assert parse_range(param("integer"), 5, 5, 1) == [5]
    assert all(type(v) is int for v in parse_range(param("integer"), 0, 3, 1))


@pytest.mark.parametrize(
    ("kind", "start", "stop", "step", "problem"),
    [
        ("number", 0, 1, 0, "the range's step must not be 0"),
        ("number", 0, 1, -0.1, "from 0 to 1 needs a positive step, got -0.1"),
        ("number", 1, 0, 0.5, "from 1 to 0 needs a negative step, got 0.5"),
        ("integer", 0, 5, 0.5, "an integer range needs integer from, to and step"),
        ("number", 0, 10, 0.001, f"the range gives 10001 values; at most {MAX_VALUES}"),
        ("string", 0, 1, 1, "only integer and number parameters take a range"),
        ("number", 0, float("inf"), 1, "must be finite numbers"),
    ],
)
def test_bad_ranges_are_refused_with_the_reason(
    kind: str, start: float, stop: float, step: float, problem: str
) -> None:
    with pytest.raises(FieldError) as caught:
        parse_range(param(kind), start, stop, step)
    assert problem in caught.value.problem


def test_configs_are_methods_x_files_x_grid_in_sweep_order() -> None:
    configs = build_configs("M", [H1, H2], {"fixed": 1}, {"x": [1, 2], "y": ["a", "b", "c"]})
    assert len(configs) == 12
    assert configs[0] == {"file_hash": H1, "method_name": "M", "parameters": {"fixed": 1, "x": 1, "y": "a"}}
    assert [c["file_hash"] for c in configs] == [H1] * 6 + [H2] * 6
    assert [(c["parameters"]["x"], c["parameters"]["y"]) for c in configs[:6]] == [
        (1, "a"), (1, "b"), (1, "c"), (2, "a"), (2, "b"), (2, "c"),
    ]  # fmt: skip
    assert build_configs("M", [H1], {}, {}) == [{"file_hash": H1, "method_name": "M", "parameters": {}}]


def test_named_inputs_and_parameters_only_share_the_grid() -> None:
    named = [{"file_inputs": {"data": H1, "replicates": [H2, H1]}}, {"file_inputs": {"data": H2}}]
    configs = build_input_configs("M", named, {}, {"x": [1, 2]}, "2 data file(s)")
    assert [(c["file_inputs"], c["parameters"]) for c in configs] == [
        (named[0]["file_inputs"], {"x": 1}), (named[0]["file_inputs"], {"x": 2}),
        (named[1]["file_inputs"], {"x": 1}), (named[1]["file_inputs"], {"x": 2}),
    ]  # fmt: skip
    assert build_input_configs("M", [{}], {"x": 3}, {}, "") == [{"method_name": "M", "parameters": {"x": 3}}]
    assert describe_grid("", {}) == "1 config" and describe_grid("", {"x": [1, 2]}) == "2 values of x"


def test_a_grid_too_large_is_refused_before_it_is_built() -> None:
    values = list(range(MAX_VALUES))
    with pytest.raises(FieldError) as caught:
        build_configs("M", [H1, H2], {}, {"x": values, "y": values})
    assert caught.value.field == "add"
    assert (
        caught.value.problem
        == f"2 file(s) × 1000 values of x × 1000 values of y = 2000000 configs; at most {MAX_CONFIGS} at once"
    )


def test_sizes_for_people() -> None:
    assert [format_size(n) for n in (0, 999, 1000, 1234567, 5 * 10**9, 7 * 10**15)] == [
        "0 B", "999 B", "1.0 kB", "1.2 MB", "5.0 GB", "7000.0 TB",
    ]  # fmt: skip
