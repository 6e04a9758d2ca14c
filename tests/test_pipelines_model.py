"""The pipeline model on its own: steps read with their references, every problem named by step and field,
cycles found whatever their length, a dependency order, and references resolved to what the upstream made."""

from __future__ import annotations

from typing import Any

import pytest

from dshpc_jupyter.domain.errors import InvalidInputError
from dshpc_jupyter.domain.pipelines import (
    Ref,
    StepResolutionError,
    Upstream,
    order,
    parse_pipeline,
    read_step,
    resolve,
)

H = "a" * 64


def test_references_and_after_are_the_dependencies_in_the_order_written() -> None:
    step = read_step("s", {
        "method_name": "M", "after": ["z", "x"],
        "parameters": {"k": {"$ref": "x", "path": "a/0"}, "deep": [{"w": {"$ref": "y"}}]},
        "file_inputs": {"one": {"$ref": "y", "output": "o.csv"}, "many": [H, {"$ref": "w"}]},
    })  # fmt: skip
    assert step.depends_on == ("x", "y", "w", "z")
    assert step.parameters["deep"] == [{"w": Ref("y")}]
    assert read_step("s", step.wire()) == step, "the stored form reads back the same"


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([], "steps: must be an object from step name to step, got array"),
        ({}, "steps: a pipeline needs at least one step"),
        ({"-a": {"method_name": "M"}}, "steps: step name '-a' must be"),
        ({"a": 3}, "steps.a: a step must be an object, got integer"),
        ({"a": {"method": "M"}}, "steps.a: unknown field 'method'"),
        ({"a": {}}, "steps.a.method_name: is required"),
        ({"a": {"method_name": "M", "parameters": []}}, "steps.a.parameters: must be an object, got array"),
        ({"a": {"method_name": "M", "file_hash": 3}}, "steps.a.file_hash: must be a file hash or a reference"),
        ({"a": {"method_name": "M", "file_hash": {"$ref": "a", "path": "x"}}},
         "steps.a.file_hash: a file reference takes 'output'"),
        ({"a": {"method_name": "M", "file_inputs": {"t": []}}}, "steps.a.file_inputs.t: must not be an empty array"),
        ({"a": {"method_name": "M", "parameters": {"p": {"$ref": 1}}}},
         "steps.a.parameters.p: $ref must name a step (a string), got integer"),
        ({"a": {"method_name": "M", "parameters": {"p": {"$ref": "a", "nope": 1}}}},
         "steps.a.parameters.p: unknown field 'nope' in a reference"),
        ({"a": {"method_name": "M", "after": "b"}}, "steps.a.after: must be an array of step names"),
        ({"a": {"method_name": "M", "after": ["a"]}}, "steps.a: references itself"),
        ({"a": {"method_name": "M", "after": ["c"]}, "b": {"method_name": "M", "after": ["a"]},
          "c": {"method_name": "M", "after": ["b"]}}, "steps: the dependencies form a cycle: a -> c -> b -> a"),
    ],
)  # fmt: skip
def test_each_problem_names_its_step_and_field(steps: Any, message: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_pipeline(steps)
    assert str(caught.value).startswith(message)


def test_the_order_puts_every_step_after_its_dependencies() -> None:
    steps = parse_pipeline({
        "d": {"method_name": "M", "after": ["b", "c"]}, "c": {"method_name": "M", "after": ["a"]},
        "b": {"method_name": "M", "after": ["a"]}, "a": {"method_name": "M"}, "e": {"method_name": "M"},
    })  # fmt: skip
    assert order(steps) == ["a", "b", "c", "d", "e"]
    chain = parse_pipeline({f"s{i}": {"method_name": "M", "after": [f"s{i + 1}"] if i < 3000 else []}
                            for i in range(3001)})  # fmt: skip
    assert order(chain)[:2] == ["s3000", "s2999"], "a long chain needs no deep recursion"


def test_resolving_replaces_references_by_what_the_upstream_made() -> None:
    steps = parse_pipeline({
        "up": {"method_name": "U"},
        "down": {"method_name": "D", "parameters": {"x": {"$ref": "up", "path": "r/1/v"}, "all": {"$ref": "up"}},
                 "file_inputs": {"t": {"$ref": "up", "output": "t.csv"}, "s": [{"$ref": "up"}, H]}},
    })  # fmt: skip
    made = Upstream('{"r": [0, {"v": 7}]}', {"t.csv": "b" * 64}, lambda: "c" * 64)
    config = resolve(steps["down"], {"up": made})
    assert config == {
        "method_name": "D", "parameters": {"x": 7, "all": {"r": [0, {"v": 7}]}},
        "file_inputs": {"t": "b" * 64, "s": ["c" * 64, H]},
    }  # fmt: skip
    with pytest.raises(StepResolutionError, match=r"path 'r/1/v': the output of step 'up' is not JSON"):
        resolve(steps["down"], {"up": Upstream("not json", {"t.csv": H}, lambda: H)})
    with pytest.raises(StepResolutionError, match=r"no '1' in the output of step 'up' \(found: array\)"):
        resolve(steps["down"], {"up": Upstream('{"r": [0]}', {"t.csv": H}, lambda: H)})
