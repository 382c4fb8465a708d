"""Conditional search spaces: a parameter searched only when a condition on earlier
parameters holds is absent from configurations where it does not. No Ray is started."""

from __future__ import annotations

import json
import pickle
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import raysweep as rs
from raysweep.errors import ConstraintError, ExperimentMismatchError, SpecError
from raysweep.sweep.config import SweepConfig
from raysweep.sweep.execution import FakeClock, InProcessBackend
from raysweep.sweep.space import (
    Conditional,
    Domain,
    Fixed,
    SearchSpace,
    choice,
    grid,
    loguniform,
    randint,
    uniform,
)
from raysweep.sweep.space.constraints import ConstraintSet
from raysweep.sweep.sweepfile import load_sweep_file

SGD = "optimizer == 'sgd'"


def space() -> SearchSpace:
    """Momentum only for SGD; Nesterov only with a large momentum (a nested condition)."""
    return SearchSpace(
        {
            "optimizer": choice(["sgd", "adam"]),
            "momentum": uniform(0, 0.99).when(SGD),
            "nesterov": choice([True, False]).when("momentum > 0.5"),
            "lr": loguniform(1e-4, 0.1),
        }
    )


def test_when_wraps_a_domain_that_reads_as_written() -> None:
    """.when() gives a Conditional domain that prints as the Python that made it."""
    domain = uniform(0, 0.99).when(SGD)
    assert isinstance(domain, Conditional)
    assert domain.base == uniform(0, 0.99)
    assert str(domain) == "uniform(0, 0.99).when(\"optimizer == 'sgd'\")"
    assert domain == uniform(0, 0.99).when(SGD)
    assert domain != uniform(0, 0.99).when("optimizer == 'adam'")
    plain: Domain = uniform(0, 0.99)
    assert domain != plain


def test_a_space_is_conditional_only_with_a_when() -> None:
    """SearchSpace.conditional is true exactly when some parameter has a condition."""
    assert space().conditional
    assert not SearchSpace({"x": uniform(0, 1)}).conditional


def test_active_follows_the_condition_and_its_parents() -> None:
    """active() evaluates the condition on earlier values; an inactive parent makes its
    children inactive too."""
    s = space()
    assert s.active("optimizer", {})
    assert s.active("momentum", {"optimizer": "sgd"})
    assert not s.active("momentum", {"optimizer": "adam"})
    assert s.active("nesterov", {"optimizer": "sgd", "momentum": 0.9})
    assert not s.active("nesterov", {"optimizer": "sgd", "momentum": 0.1})
    assert not s.active("nesterov", {"optimizer": "adam"})
    assert s.active("lr", {"optimizer": "adam"})
    assert not s.active("unknown", {})


def test_active_without_the_deciding_value_is_an_error() -> None:
    """Asking about a parameter without the value that decides it names that value."""
    with pytest.raises(SpecError, match=r"no value for 'momentum'.*whether 'nesterov'"):
        space().active("nesterov", {"optimizer": "sgd"})


def test_from_unit_keeps_a_coordinate_per_parameter_and_drops_inactive_ones() -> None:
    """Every free parameter has a coordinate; only the active ones are in the config."""
    s = space()
    assert s.free_names == ("optimizer", "momentum", "nesterov", "lr")
    assert s.from_unit([0.9, 0.9, 0.1, 0.0]) == {"optimizer": "adam", "lr": 1e-4}
    assert s.from_unit([0.1, 0.2, 0.1, 0.0]) == {"optimizer": "sgd", "momentum": 0.198, "lr": 1e-4}
    assert s.from_unit([0.1, 0.9, 0.1, 0.0]) == {
        "optimizer": "sgd",
        "momentum": 0.891,
        "nesterov": True,
        "lr": 1e-4,
    }


def test_samples_cover_every_branch_and_are_valid() -> None:
    """sample() omits inactive parameters, and all three shapes of config occur."""
    s = space()
    rng = np.random.default_rng(0)
    configs = [s.sample(rng) for _ in range(200)]
    assert all(s.problems(c) == [] for c in configs)
    shapes = {tuple(c) for c in configs}
    assert shapes == {
        ("optimizer", "lr"),
        ("optimizer", "momentum", "lr"),
        ("optimizer", "momentum", "nesterov", "lr"),
    }


def test_problems_want_inactive_parameters_absent_and_active_ones_present() -> None:
    """problems() accepts an inactive parameter's absence and reports a present inactive
    one or a missing active one."""
    s = space()
    assert s.problems({"optimizer": "adam", "lr": 0.01}) == []
    assert s.problems({"optimizer": "sgd", "lr": 0.01}) == ["missing parameter 'momentum'"]
    assert s.problems({"optimizer": "adam", "momentum": 0.3, "lr": 0.01}) == [
        "parameter 'momentum' is inactive (when \"optimizer == 'sgd'\") and must be absent"
    ]
    assert s.problems({"optimizer": "sgd", "momentum": -0.5, "lr": 0.01}) == [
        "momentum: -0.5 is not in uniform(0, 0.99)"
    ]


def test_missing_parent_is_reported_once() -> None:
    """Without the parent's value, only the parent is missing; its child is not judged."""
    assert space().problems({"lr": 0.01, "momentum": 0.5}) == ["missing parameter 'optimizer'"]


def test_json_round_trip_keeps_the_condition() -> None:
    """to_json writes 'when' beside 'type', and from_json reads the same space back."""
    s = space()
    data = json.loads(json.dumps(s.to_json()))
    assert data["momentum"] == {"type": "uniform", "low": 0, "high": 0.99, "when": SGD}
    assert SearchSpace.from_json(data) == s


def test_diff_shows_a_changed_condition() -> None:
    """A resume diff names the parameter whose condition changed, old and new."""
    new = SearchSpace(
        {
            "optimizer": choice(["sgd", "adam"]),
            "momentum": uniform(0, 0.99).when("optimizer != 'adam'"),
        }
    )
    old = SearchSpace(
        {"optimizer": choice(["sgd", "adam"]), "momentum": uniform(0, 0.99).when(SGD)}
    )
    assert old.diff(new) == [
        "momentum: uniform(0, 0.99).when(\"optimizer == 'sgd'\") -> "
        "uniform(0, 0.99).when(\"optimizer != 'adam'\")"
    ]


def test_spaces_pickle_with_their_conditions() -> None:
    """A conditional space and its constraint set cross process boundaries intact."""
    s = space()
    copy = pickle.loads(pickle.dumps(s))
    assert copy == s
    assert not copy.active("momentum", {"optimizer": "adam"})
    constraints = pickle.loads(pickle.dumps(ConstraintSet(["momentum < 0.9"], s)))
    assert constraints.is_feasible({"optimizer": "adam", "lr": 0.01})


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"a": uniform(0, 1), "b": uniform(0, 1).when(3)},  # type: ignore[arg-type]
            "parameter 'b': 'when' must be a condition string such as "
            "\"optimizer == 'sgd'\", got 3",
        ),
        (
            {"a": uniform(0, 1), "b": uniform(0, 1).when("a >")},
            "parameter 'b': when 'a >': is not valid syntax",
        ),
        (
            {"a": uniform(0, 1), "b": uniform(0, 1).when("c > 1")},
            "parameter 'b': when 'c > 1': unknown name 'c'; the parameters are: a, b",
        ),
        (
            {"a": uniform(0, 1), "b": uniform(0, 1).when("b > 0.5")},
            "parameter 'b': when 'b > 0.5' names itself; a condition may name only "
            "parameters declared before it (a)",
        ),
        (
            {"b": uniform(0, 1).when("a > 0.5"), "a": uniform(0, 1)},
            "parameter 'b': when 'a > 0.5' names 'a', which is declared after it; a "
            "condition may name only parameters declared before it (none)",
        ),
        (
            {"a": uniform(0, 1), "b": Fixed(3).when("a > 0.5")},
            "parameter 'b': a fixed value cannot have a condition ('when'); for a constant "
            "present only when it holds, use a one-value choice, e.g. choice([3])",
        ),
        (
            {"a": uniform(0, 1), "b": uniform(0, 1).when("a > 0.5").when("a < 0.9")},
            "parameter 'b': has two conditions ('a > 0.5' and 'a < 0.9'); give one",
        ),
        (
            {"a": uniform(0, 1), "b": uniform(0, 1).when("a.real > 0")},
            "parameter 'b': when 'a.real > 0': attribute access is not allowed",
        ),
        (
            {"a": uniform(0, 1), "b": uniform(1, 0).when("a > 0")},
            "parameter 'b': uniform needs low < high",
        ),
    ],
)
def test_bad_conditions_fail_at_once_naming_the_parameter(
    params: dict[str, Any], message: str
) -> None:
    """Each malformed condition is one line naming the parameter (and what it names)."""
    with pytest.raises(SpecError) as info:
        SearchSpace(params)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_yaml_form_reads_when_and_refuses_a_misspelt_key() -> None:
    """A 'when' key beside 'type' makes a conditional parameter; 'wen' gets a did-you-mean."""
    parsed = SearchSpace.from_any(
        {
            "optimizer": {"type": "choice", "values": ["sgd", "adam"]},
            "momentum": {"type": "uniform", "low": 0, "high": 0.99, "when": SGD},
        }
    )
    assert parsed["momentum"] == uniform(0, 0.99).when(SGD)
    with pytest.raises(SpecError, match=r"unknown key 'wen' \(did you mean 'when'\?\)"):
        SearchSpace.from_any({"m": {"type": "uniform", "low": 0, "high": 1, "wen": "x > 1"}})
    with pytest.raises(SpecError, match="'when' must be a condition string"):
        SearchSpace.from_any({"m": {"type": "uniform", "low": 0, "high": 1, "when": ["x"]}})
    with pytest.raises(SpecError, match="a fixed value cannot have a condition"):
        SearchSpace.from_any({"a": 1, "m": {"type": "fixed", "value": 2, "when": "a > 0"}})


def test_a_constraint_on_an_inactive_parameter_holds_vacuously() -> None:
    """A constraint naming an inactive parameter does not apply to that config; on an
    active one it is enforced as usual."""
    s = space()
    cs = ConstraintSet(["momentum < 0.9", "lr < 0.05"], s)
    assert cs.is_feasible({"optimizer": "adam", "lr": 0.01})
    assert cs.violated({"optimizer": "adam", "lr": 0.07}) == ["lr < 0.05"]
    assert cs.violated({"optimizer": "sgd", "momentum": 0.95, "nesterov": True, "lr": 0.01}) == [
        "momentum < 0.9"
    ]


def test_a_constraint_still_needs_its_unconditional_parameters() -> None:
    """A config lacking a parameter without a condition is still an error, not vacuous."""
    cs = ConstraintSet(["lr < 0.05"], space())
    with pytest.raises(ConstraintError, match="the config has no parameter 'lr'"):
        cs.is_feasible({"optimizer": "adam"})


def _objective(config: Mapping[str, Any]) -> float:
    """SGD's loss depends on momentum, Adam's does not; absent keys are read with get."""
    momentum = config.get("momentum", 0.0)
    return float(config["lr"] + (1 - momentum if config["optimizer"] == "sgd" else 0.5))


def _build(searcher: str) -> SweepConfig:
    return SweepConfig.build(
        {"objective": _objective, "space": space(), "searcher": searcher, "num_trials": 2}
    )


def test_searchers_that_cannot_handle_conditions_are_refused_at_start() -> None:
    """Grid is refused a conditional space, naming the searchers that can; random
    and sobol are accepted."""
    with pytest.raises(SpecError, match=r"searcher: 'grid' cannot optimize a conditional") as info:
        SweepConfig.build(
            {
                "objective": _objective,
                "space": {"a": grid([1, 2]), "b": randint(1, 3).when("a == 2")},
                "searcher": "grid",
            }
        )
    assert "random" in str(info.value)
    assert "sobol" in str(info.value)
    assert _build("random").space.conditional
    assert _build("sobol").space.conditional


def test_run_passes_only_active_parameters_and_resume_sees_a_changed_condition(
    storage: Path,
) -> None:
    """A run gives trials configs without inactive keys, stores the conditions, and a
    resume with another condition is refused showing the change."""
    seen: list[dict[str, Any]] = []

    def objective(config: Mapping[str, Any]) -> float:
        seen.append(dict(config))
        return _objective(config)

    def run(space: SearchSpace, **kwargs: Any) -> rs.Result:
        clock = FakeClock()
        return rs.run(
            objective,
            space,
            num_trials=12,
            name="cond",
            seed=1,
            storage=storage,
            backend=InProcessBackend(concurrency=2, clock=clock),
            clock=clock,
            **kwargs,
        )

    run(space(), constraints=["momentum < 0.95"])
    assert {"momentum" in c for c in seen} == {True, False}
    assert all(space().problems(c) == [] and c.get("momentum", 0) < 0.95 for c in seen)
    changed = SearchSpace({**space(), "momentum": uniform(0, 0.99).when("optimizer != 'adam'")})
    with pytest.raises(ExperimentMismatchError, match=r"optimizer != 'adam'"):
        run(changed, constraints=["momentum < 0.95"], resume=True)


def test_sweep_file_space_with_when(tmp_path: Path) -> None:
    """A sweep file's parameter with a 'when' key becomes a conditional parameter."""
    (tmp_path / "cond_objective.py").write_text("def train(config):\n    return 0.0\n")
    path = tmp_path / "sweep.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            objective: cond_objective:train
            num_trials: 3
            space:
              optimizer: {type: choice, values: [sgd, adam]}
              momentum: {type: uniform, low: 0, high: 0.99, when: "optimizer == 'sgd'"}
            """
        )
    )
    sweep = load_sweep_file(path)
    assert sweep.space["momentum"] == uniform(0, 0.99).when(SGD)
