"""Tests of search spaces and parameter domains."""

from __future__ import annotations

import json
import math
import pickle
from typing import Any

import numpy as np
import pytest
import yaml

from raysweep.errors import SpecError
from raysweep.sweep.space import (
    Choice,
    Domain,
    Fixed,
    Grid,
    LogRandInt,
    LogUniform,
    QUniform,
    RandInt,
    SearchSpace,
    Uniform,
    choice,
    grid,
    lograndint,
    loguniform,
    quniform,
    randint,
    uniform,
)

AX_PARAMETERS: list[dict[str, Any]] = [
    {
        "name": "lr",
        "type": "range",
        "bounds": [1e-5, 0.1],
        "value_type": "float",
        "log_scale": True,
    },
    {"name": "batch", "type": "range", "bounds": [16, 256], "value_type": "int", "log_scale": True},
    {"name": "layers", "type": "range", "bounds": [1, 6]},
    {"name": "momentum", "type": "range", "bounds": [0, 1], "value_type": "float"},
    {"name": "dropout", "type": "range", "bounds": [0.0, 0.5], "digits": 1},
    {
        "name": "act",
        "type": "choice",
        "values": ["relu", "tanh"],
        "value_type": "str",
        "is_ordered": False,
        "sort_values": False,
    },
    {"name": "width", "type": "choice", "values": [64, 32, 128], "is_ordered": True},
    {"name": "epochs", "type": "fixed", "value": 20, "is_fidelity": True, "target_value": 20},
]


def mixed_space() -> SearchSpace:
    return SearchSpace(
        {
            "lr": loguniform(1e-4, 0.1),
            "x": uniform(-1, 1),
            "n": randint(1, 3),
            "units": lograndint(1, 8),
            "drop": quniform(0, 0.5, 0.1),
            "act": choice(["relu", "tanh"]),
            "bs": grid([16, 32]),
            "epochs": Fixed(5),
        }
    )


def test_factories_build_the_named_domains() -> None:
    """Each factory returns its domain class, whose type_name is the YAML type."""
    built = [
        (uniform(0, 1), Uniform, "uniform"),
        (loguniform(1e-4, 0.1), LogUniform, "loguniform"),
        (randint(1, 3), RandInt, "randint"),
        (lograndint(1, 8), LogRandInt, "lograndint"),
        (quniform(0, 1, 0.1), QUniform, "quniform"),
        (choice(["a"]), Choice, "choice"),
        (grid([1, 2]), Grid, "grid"),
        (Fixed(3), Fixed, "fixed"),
    ]
    for domain, cls, name in built:
        assert type(domain) is cls
        assert domain.type_name == name


def test_to_json_has_the_documented_shape() -> None:
    """Domains serialize to small dicts keyed by type and their arguments."""
    assert loguniform(1e-4, 0.1).to_json() == {"type": "loguniform", "low": 1e-4, "high": 0.1}
    assert quniform(0, 1, 0.1).to_json() == {"type": "quniform", "low": 0, "high": 1, "q": 0.1}
    assert choice(["a", 1]).to_json() == {"type": "choice", "values": ["a", 1]}
    assert Fixed(3).to_json() == {"type": "fixed", "value": 3}


def test_domains_print_compactly() -> None:
    """str() of a domain reads like the factory call that made it."""
    assert str(loguniform(0.0001, 0.1)) == "loguniform(0.0001, 0.1)"
    assert str(choice(["relu", "tanh"])) == "choice(['relu', 'tanh'])"
    assert str(Fixed(3)) == "fixed(3)"


@pytest.mark.parametrize(
    ("domain", "match"),
    [
        (uniform(1, 1), r"'p'.*low < high.*low=1, high=1"),
        (uniform(2, 1), r"'p'.*low < high"),
        (uniform(0, math.inf), r"'p'.*high=inf must be a finite number"),
        (uniform(math.nan, 1), r"'p'.*low=nan must be a finite number"),
        (uniform("0", 1), r"'p'.*low='0' must be a finite number"),  # type: ignore[arg-type]
        (loguniform(0, 1), r"'p'.*log-scaled and needs low > 0, got low=0"),
        (lograndint(-1, 5), r"'p'.*log-scaled and needs low > 0"),
        (randint(1.5, 3), r"'p'.*low=1.5 must be an integer"),  # type: ignore[arg-type]
        (quniform(0, 1, 0), r"'p'.*q=0 must be a number with 0 < q <= high - low"),
        (quniform(0, 1, 2), r"'p'.*q=2"),
        (choice([]), r"'p'.*at least one value"),
        (grid([1, 2, 1]), r"'p'.*grid value 1 is listed twice"),
        (choice([object()]), r"'p'.*is a object; expected str, int, float, bool or None"),
        (choice([[1, 2]]), r"'p'.*is a list"),
        (choice([math.nan]), r"'p'.*nan is not a finite number"),
        (Choice("ab"), r"'p'.*values must be a list"),  # type: ignore[arg-type]
        (Fixed({1: "a"}), r"'p'.*keys that are not strings"),
        (Fixed(math.inf), r"'p'.*fixed value inf"),
    ],
)
def test_bad_domains_raise_naming_the_parameter(domain: Domain, match: str) -> None:
    """A malformed domain fails at space construction with a message naming the parameter."""
    with pytest.raises(SpecError, match=match):
        SearchSpace({"p": domain})


@pytest.mark.parametrize("name", ["", "1a", "a-b", "a.b", 3])
def test_names_must_be_identifiers(name: Any) -> None:
    """Parameter names that constraints could not refer to are refused."""
    with pytest.raises(SpecError, match="must be a Python identifier"):
        SearchSpace({name: uniform(0, 1)})


def test_plain_values_need_from_any() -> None:
    """The constructor wants domains and points to from_any for anything else."""
    with pytest.raises(SpecError, match=r"'lr'.*from_any"):
        SearchSpace({"lr": 0.1})  # type: ignore[dict-item]


def test_from_unit_maps_the_ends_and_middle() -> None:
    """Unit coordinates map linearly, in log scale, and onto inclusive integer ranges."""
    assert uniform(-1, 1).from_unit(0.0) == -1.0
    assert uniform(-1, 1).from_unit(0.5) == 0.0
    assert loguniform(1e-4, 1e-2).from_unit(0.0) == 1e-4
    assert loguniform(1e-4, 1e-2).from_unit(0.5) == pytest.approx(1e-3)
    assert randint(1, 3).from_unit(0.0) == 1
    assert randint(1, 3).from_unit(math.nextafter(1.0, 0.0)) == 3
    assert lograndint(1, 8).from_unit(0.0) == 1
    assert lograndint(1, 8).from_unit(math.nextafter(1.0, 0.0)) == 8
    assert choice(["a", "b", "c"]).from_unit(0.7) == "c"
    assert Fixed([1, 2]).from_unit(0.3) == [1, 2]


def test_quniform_values_are_rounded() -> None:
    """Quantized values carry no float noise like 0.30000000000000004."""
    assert quniform(0, 1, 0.1).grid_values() == [k / 10 for k in range(11)]  # 3 / 10 == 0.3
    assert quniform(0, 0.3, 0.1).grid_values() == [0.0, 0.1, 0.2, 0.3]
    assert quniform(1, 2, 0.25).cardinality() == 5
    assert quniform(0, 1, 0.1).from_unit(0.35) == 0.3


def test_samples_are_plain_python_within_bounds() -> None:
    """Sampled values are JSON-ready Python values (never numpy scalars) inside their domains."""
    space = mixed_space()
    rng = np.random.default_rng(0)
    for _ in range(300):
        config = space.sample(rng)
        assert space.problems(config) == []
        assert json.loads(json.dumps(config)) == config
        for value in config.values():
            assert type(value) in (int, float, str, bool)


def test_integer_bounds_are_both_reached() -> None:
    """randint and lograndint include both bounds, and lograndint favours small values."""
    space = SearchSpace({"n": randint(1, 3), "u": lograndint(1, 8)})
    rng = np.random.default_rng(1)
    draws = [space.sample(rng) for _ in range(2000)]
    assert {d["n"] for d in draws} == {1, 2, 3}
    assert {d["u"] for d in draws} == set(range(1, 9))
    ones = sum(d["u"] == 1 for d in draws)
    eights = sum(d["u"] == 8 for d in draws)
    assert ones > 3 * eights


def test_contains_is_type_aware() -> None:
    """Membership follows JSON semantics: ints are not floats in ranges, bools are not ints."""
    assert randint(1, 3).contains(3)
    assert not randint(1, 3).contains(3.0)
    assert not randint(0, 3).contains(True)
    assert choice([1, 2]).contains(1.0)
    assert not choice([1, 2]).contains(True)
    assert not choice(["1"]).contains(1)
    assert quniform(0, 1, 0.1).contains(0.1 + 0.2)
    assert not quniform(0, 1, 0.1).contains(0.35)
    assert not uniform(0, 1).contains(math.nan)
    assert Fixed((1, 2)).contains([1, 2])


def test_grid_values_only_for_enumerable_domains() -> None:
    """Continuous domains cannot be listed; the others list every value in order."""
    assert uniform(0, 1).grid_values() is None
    assert loguniform(1, 2).grid_values() is None
    assert randint(2, 4).grid_values() == [2, 3, 4]
    assert lograndint(2, 4).grid_values() == [2, 3, 4]
    assert choice(["a", "b"]).grid_values() == ["a", "b"]
    assert grid([3, 1]).grid_values() == [3, 1]
    assert Fixed(7).grid_values() == [7]


def test_numpy_inputs_become_plain_values() -> None:
    """Bounds and choices given as numpy scalars are stored as Python values."""
    domain = uniform(np.float64(0.5), np.int64(2))
    assert type(domain.to_json()["low"]) is float
    assert type(domain.to_json()["high"]) is int
    assert type(choice(np.array([1, 2])).values[0]) is int  # type: ignore[arg-type]


def test_free_names_and_fixed() -> None:
    """Free names keep the given order and skip constants, which fixed lists."""
    space = mixed_space()
    assert space.free_names == ("lr", "x", "n", "units", "drop", "act", "bs")
    assert space.fixed == {"epochs": 5}
    assert list(space) == [*space.free_names, "epochs"]


def test_space_from_unit_builds_full_configs() -> None:
    """One coordinate per free parameter gives a full config; 1.0 is accepted, 1.5 is not."""
    space = SearchSpace({"x": uniform(0, 10), "k": Fixed("a"), "n": randint(0, 4)})
    assert space.from_unit([0.5, 1.0]) == {"x": 5.0, "k": "a", "n": 4}
    with pytest.raises(SpecError, match=r"needs 2 coordinates \(one for each of x, n\), got 1"):
        space.from_unit([0.5])
    with pytest.raises(SpecError, match=r"1.5 for 'x' is not in \[0, 1\]"):
        space.from_unit([1.5, 0.0])


def test_from_any_reads_yaml_style_mappings() -> None:
    """YAML-style mappings, domains and constants combine into one space."""
    spec = yaml.safe_load(
        """
        lr: {type: loguniform, low: 1e-4, high: 0.1}
        n: {type: randint, low: 1, high: 4}
        drop: {type: quniform, low: 0, high: 0.5, q: 0.1}
        act: {type: choice, values: [relu, tanh]}
        bs: {type: grid, values: [16, 32]}
        cfg: {type: fixed, value: {depth: 2}}
        epochs: 10
        tags: [a, b]
        """
    )
    space = SearchSpace.from_any({**spec, "m": uniform(0, 1)})
    assert space["lr"] == LogUniform(1e-4, 0.1)  # "1e-4" is a string to PyYAML
    assert space["n"] == RandInt(1, 4)
    assert space["drop"] == QUniform(0, 0.5, 0.1)
    assert space["act"] == Choice(("relu", "tanh"))
    assert space["bs"] == Grid((16, 32))
    assert space["cfg"] == Fixed({"depth": 2})
    assert space["epochs"] == Fixed(10)
    assert space["tags"] == Fixed(["a", "b"])
    assert space["m"] == Uniform(0, 1)


@pytest.mark.parametrize(
    ("text", "write"),
    [
        ("uniform(-5, 10)", "{type: uniform, low: -5, high: 10}"),
        ("tune.loguniform(1e-4, high=0.1)", "{type: loguniform, low: 0.0001, high: 0.1}"),
        ("choice(['a', 'b'])", "{type: choice, values: ['a', 'b']}"),
        ("rs.randint(1, 5).when('opt == 1')", "{type: randint, low: 1, high: 5, when: 'opt == 1'}"),
        ("Uniform(0, 1)", "{type: uniform, low: 0, high: 1}"),
        ("randint(1,", "{type: randint, ...}"),
        ("uniform(a, b)", "{type: uniform, ...}"),
        ("uniform(0, 1, 2)", "{type: uniform, ...}"),
    ],
)
def test_a_domain_written_as_a_string_is_refused_with_its_mapping(text: str, write: str) -> None:
    """YAML has no calls: ``x: uniform(0, 1)`` is text, which every trial would get as
    a constant; the error shows the mapping to write and how to keep the text."""
    with pytest.raises(SpecError) as info:
        SearchSpace.from_any({"x": text})
    message = str(info.value)
    assert message.startswith(f"parameter 'x': {text!r} is a string, not a domain; write {write} ")
    assert "(or {type: fixed, value: '...'} to pass this text to every trial)" in message
    assert "\n" not in message


def test_a_long_call_like_string_is_shortened_in_the_error() -> None:
    text = "uniform(" + "(" * 10_000 + ")" * 10_000 + ")"
    with pytest.raises(
        SpecError, match=r"^parameter 'x': 'uniform\(\(\(.*\.\.\.' is a string"
    ) as info:
        SearchSpace.from_any({"x": text})
    assert len(str(info.value)) < 300


@pytest.mark.parametrize("text", ["relu", "f(x)", "lambda: 1", "(1, 2)", "uniform"])
def test_other_strings_stay_constants(text: str) -> None:
    assert SearchSpace.from_any({"x": text}).fixed == {"x": text}


def test_a_call_like_string_can_be_kept_as_a_fixed_mapping() -> None:
    space = SearchSpace.from_any({"x": {"type": "fixed", "value": "uniform(0, 1)"}})
    assert space.fixed == {"x": "uniform(0, 1)"}


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        (
            {"type": "uniform", "low": 0, "hgih": 1},
            r"parameter 'lr' \(uniform\): unknown key 'hgih' \(did you mean 'high'\?\); "
            r"expected keys: type, low, high",
        ),
        ({"type": "uniform", "low": 0}, r"'lr' \(uniform\): missing key 'high'"),
        ({"type": "normal", "low": 0}, r"'lr' has unknown type 'normal'; expected one of: uniform"),
        ({"low": 0, "high": 1}, r"'lr' needs a 'type' key"),
        ({"type": "choice", "values": "relu"}, r"'lr' \(choice\): 'values' must be a list"),
        ({"type": "quniform", "low": 0, "high": 1}, r"missing key 'q'"),
    ],
)
def test_bad_yaml_mappings_raise_naming_parameter_and_key(spec: dict[str, Any], match: str) -> None:
    """Typos, missing keys and unknown types are errors naming the parameter and the key."""
    with pytest.raises(SpecError, match=match):
        SearchSpace.from_any({"lr": spec})


def test_from_any_reads_an_ax_parameter_list_unchanged() -> None:
    """A realistic Ax parameters.json maps onto the matching domains."""
    space = SearchSpace.from_any(json.loads(json.dumps(AX_PARAMETERS)))
    assert space == SearchSpace(
        {
            "lr": LogUniform(1e-5, 0.1),
            "batch": LogRandInt(16, 256),
            "layers": RandInt(1, 6),
            "momentum": Uniform(0.0, 1.0),
            "dropout": QUniform(0.0, 0.5, 0.1),
            "act": Choice(("relu", "tanh")),
            "width": Choice((64, 32, 128)),
            "epochs": Fixed(20),
        }
    )
    assert type(space["momentum"].to_json()["low"]) is float


def test_ax_value_types_are_honoured() -> None:
    """value_type decides int versus float ranges and casts choice values; sort_values sorts."""
    space = SearchSpace.from_any(
        [
            {"name": "a", "type": "range", "bounds": [1.0, 8.0], "value_type": "int"},
            {"name": "b", "type": "range", "bounds": [1, 8], "value_type": "float"},
            {
                "name": "c",
                "type": "choice",
                "values": [3, 1, 2],
                "value_type": "float",
                "sort_values": True,
            },
            {"name": "d", "type": "range", "bounds": [1e-3, 1.0], "log_scale": True, "digits": 2},
        ]
    )
    assert space["a"] == RandInt(1, 8)
    assert type(space["b"]) is Uniform
    assert space["c"].to_json()["values"] == [1.0, 2.0, 3.0]
    assert type(space["d"]) is LogUniform


@pytest.mark.parametrize(
    ("params", "match"),
    [
        (
            [{"name": "a", "type": "range", "bounds": [0, 1], "scale": "log"}],
            r"Ax parameter 'a' \(range\): unknown key 'scale'",
        ),
        (
            [{"name": "a", "type": "ordinal", "values": [1]}],
            r"'a': type 'ordinal' must be one of: range, choice, fixed",
        ),
        ([{"type": "fixed", "value": 1}], r"parameter #0 needs a 'name'"),
        ([{"name": "a", "type": "fixed", "value": 1}] * 2, r"'a' is listed twice"),
        ([{"name": "a", "type": "range"}], r"'a' \(range\): missing key 'bounds'"),
        (
            [{"name": "a", "type": "range", "bounds": [0, 1, 2]}],
            r"'bounds' must be a list \[low, high\]",
        ),
        (
            [{"name": "a", "type": "range", "bounds": [0.5, 2], "value_type": "int"}],
            r"0.5 is not a valid int",
        ),
        (
            [{"name": "a", "type": "range", "bounds": [0, 1], "value_type": "double"}],
            r"value_type 'double'",
        ),
    ],
)
def test_bad_ax_lists_raise(params: list[dict[str, Any]], match: str) -> None:
    """Ax lists with unknown keys, types or values are refused with the parameter named."""
    with pytest.raises(SpecError, match=match):
        SearchSpace.from_any(params)


@pytest.mark.parametrize("obj", ["lr: 0.1", 3, None, [1, 2]])
def test_from_any_refuses_other_shapes(obj: Any) -> None:
    """Anything that is not a space, a mapping or an Ax list is an error listing the shapes."""
    with pytest.raises(SpecError, match="expected a SearchSpace, a mapping"):
        SearchSpace.from_any(obj)


def test_json_and_yaml_round_trip() -> None:
    """A space equals its own JSON and YAML round trips."""
    space = SearchSpace.from_any({**mixed_space(), "cfg": Fixed({"a": (1, 2)})})
    assert SearchSpace.from_json(json.loads(json.dumps(space.to_json()))) == space
    from_yaml = SearchSpace.from_json(yaml.safe_load(yaml.safe_dump(space.to_json())))
    assert from_yaml == space
    assert list(SearchSpace.from_json(space.to_json())) == list(space)
    assert SearchSpace.from_any(space) is space


def test_equality_is_by_content() -> None:
    """Spaces are equal when names and domains match, whatever their order (YAML sorts keys)."""
    a = SearchSpace({"x": uniform(0, 1), "y": choice([1, 2])})
    assert a == SearchSpace({"x": Uniform(0.0, 1.0), "y": Choice((1, 2))})
    assert a == SearchSpace({"y": choice([1, 2]), "x": uniform(0, 1)})
    assert a != SearchSpace({"x": loguniform(0.5, 1), "y": choice([1, 2])})
    assert a != SearchSpace({"x": uniform(0, 1)})


def test_diff_lists_changes_additions_and_removals() -> None:
    """diff() shows what changed between a stored space and a new one, one line each."""
    old = SearchSpace({"lr": loguniform(1e-4, 0.1), "act": choice(["relu"]), "n": randint(1, 2)})
    new = SearchSpace({"n": randint(1, 2), "lr": loguniform(1e-4, 1.0), "momentum": uniform(0, 1)})
    assert old.diff(new) == [
        "lr: loguniform(0.0001, 0.1) -> loguniform(0.0001, 1.0)",
        "- act",
        "+ momentum: uniform(0, 1)",
    ]
    assert old.diff(old) == []


def test_problems_explain_why_a_config_is_not_in_the_space() -> None:
    """problems() names missing and unknown keys and out-of-domain values."""
    space = SearchSpace({"x": uniform(0, 1), "act": choice(["relu"]), "k": Fixed(1)})
    assert space.problems({"x": 0.5, "act": "relu", "k": 1}) == []
    assert space.problems({"x": 2.0, "k": 1, "extra": 3}) == [
        "missing parameter 'act'",
        "unknown parameter 'extra'",
        "x: 2.0 is not in uniform(0, 1)",
    ]
    assert space.problems([1]) == ["a config maps parameter names to values, got list"]


def test_spaces_pickle() -> None:
    """A space survives pickling, as it must to cross a process boundary."""
    space = mixed_space()
    assert pickle.loads(pickle.dumps(space)) == space
    assert repr(pickle.loads(pickle.dumps(space))) == repr(space)


@pytest.mark.parametrize(
    ("space", "fragment"),
    [
        ({"x": uniform(-1e308, 1e308)}, "high - low overflows"),
        ({"n": randint(0, 10**20)}, r"within \+/-2\*\*53"),
        ({"n": {"type": "randint", "low": -(2**60), "high": 0}}, r"within \+/-2\*\*53"),
    ],
)
def test_bounds_that_overflow_are_refused(space: dict[str, Any], fragment: str) -> None:
    """Bounds whose width overflows a float, or integers past 2**53, are refused at start."""
    with pytest.raises(SpecError, match=fragment):
        SearchSpace.from_any(space)


def test_a_name_unicode_normalization_changes_is_refused() -> None:
    """'µ' (micro sign) reads as 'μ' in a constraint, so the name is refused, naming both."""
    with pytest.raises(SpecError, match=r"'µ' changes under Unicode normalization.*'μ'"):
        SearchSpace.from_any({"µ": uniform(0, 1)})
    assert list(SearchSpace.from_any({"μ": uniform(0, 1)})) == ["μ"]
