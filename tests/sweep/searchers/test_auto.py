"""Tests of ``auto``: the documented rule, the stored choice, and what status shows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import raysweep as rs
from raysweep.objectives import Direction, Metric, Objectives
from raysweep.store import open_experiment
from raysweep.sweep.execution.local import InProcessBackend
from raysweep.sweep.searchers import SearchContext, Searcher
from raysweep.sweep.searchers.auto import AutoSearcher, choose
from raysweep.sweep.space import SearchSpace, choice, lograndint, loguniform, randint, uniform
from raysweep.sweep.space.constraints import ConstraintSet
from tests.sweep.searchers.conformance import SearcherConformance

pytest.importorskip("optuna")

NUMERIC = SearchSpace({"x": uniform(0, 1), "n": randint(1, 8)})
MIXED = SearchSpace({"x": uniform(0, 1), "act": choice(["relu", "tanh"])})
#: A model-tuning space: log-scaled integers (model sizes) beside log-scaled floats.
TUNING = SearchSpace(
    {"lr": loguniform(1e-3, 1), "leaves": lograndint(2, 64), "depth": randint(1, 8)}
)
#: Log-scaled floats alone, as a simulator fit has them: no sign of model tuning.
LOG_FLOATS = SearchSpace({"rate": loguniform(1e-6, 1e-2), "x": uniform(0, 1)})
TWO = Objectives((Metric("loss"), Metric("acc", Direction.MAX)))


def ctx(
    space: SearchSpace, trials: int | None, objectives: Objectives | None = None
) -> SearchContext:
    objectives = objectives or Objectives.single("loss")
    return SearchContext(space, ConstraintSet(None, space), objectives, 0, trials)


class TestAutoConformance(SearcherConformance):
    """auto passes the shared checks (on the conformance space it takes TPE)."""

    def make(self, seed: int | None = None) -> Searcher:
        return AutoSearcher(seed=seed)


@pytest.mark.parametrize(
    ("context", "concurrency", "expected", "fragment"),
    [
        (ctx(SearchSpace.from_any({"c": 1}), 50), None, "random", "no free parameter"),
        (ctx(NUMERIC, 10), None, "sobol", "too few for a model"),
        (ctx(NUMERIC, 40), 16, "sobol", "fewer than 4 rounds of 16"),
        (ctx(NUMERIC, 60), 4, "gp", "Gaussian-process"),
        (ctx(NUMERIC, None), None, "gp", "open trials"),
        (ctx(NUMERIC, 2000), None, "tpe", "too many dimensions or trials"),
        (ctx(MIXED, 60), None, "tpe", "choices"),
        (ctx(NUMERIC, 60, TWO), None, "gp", "EHVI"),
        (ctx(NUMERIC, 500, TWO), None, "tpe", "multi-objective TPE"),
        (ctx(NUMERIC, 5000, TWO), None, "nsga2", "NSGA-II"),
        (ctx(TUNING, 60), 4, "tpe", "log-scaled integers (leaves) mark model tuning"),
        (ctx(TUNING, 60, TWO), None, "tpe", "log-scaled integers (leaves)"),
        (ctx(TUNING, 5000, TWO), None, "nsga2", "NSGA-II"),
        (ctx(TUNING, 10), None, "sobol", "too few for a model"),
        (ctx(LOG_FLOATS, 60), 4, "gp", "Gaussian-process"),
    ],
)
def test_the_rule(
    context: SearchContext, concurrency: int | None, expected: str, fragment: str
) -> None:
    pytest.importorskip("torch")
    name, reason = choose(context, concurrency)
    assert (name, fragment in reason) == (expected, True), reason


def test_conditional_spaces_take_tpe() -> None:
    space = SearchSpace(
        {"opt": choice(["sgd", "adam"]), "momentum": uniform(0, 0.9).when("opt == 'sgd'")}
    )
    assert choose(ctx(space, 60))[0] == "tpe"


def test_constrained_numeric_spaces_take_the_gp() -> None:
    """The GP learns the feasible region from the proposals the constraints refuse."""
    pytest.importorskip("torch")
    constraints = ConstraintSet(["x * n <= 2"], NUMERIC)
    context = SearchContext(NUMERIC, constraints, Objectives.single("loss"), 0, 60)
    assert choose(context)[0] == "gp"


def test_without_torch_gp_becomes_tpe_and_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    import raysweep.sweep.searchers.auto as auto

    monkeypatch.setattr(auto, "_installed", lambda module: module != "torch")
    name, reason = choose(ctx(NUMERIC, 60))
    assert name == "tpe"
    assert 'pip install "raysweep[gp]"' in reason


def test_without_optuna_sobol_and_the_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import raysweep.sweep.searchers.auto as auto

    monkeypatch.setattr(auto, "_installed", lambda module: False)
    name, reason = choose(ctx(NUMERIC, 60))
    assert name == "sobol"
    assert 'pip install "raysweep[optuna]"' in reason


def test_a_restored_auto_keeps_its_stored_choice() -> None:
    """The choice is the state's, not today's rule's: a resume never switches searcher."""
    first = AutoSearcher(seed=1)
    first.setup(ctx(MIXED, 60))
    assert first.choice == "tpe"
    state = json.loads(json.dumps(first.state_dict()))
    state["choice"], state["reason"] = "sobol", "chosen by an older rule"
    state["state"] = {"seed": 5, "drawn": 3}
    again = AutoSearcher(seed=1)
    again.setup(ctx(MIXED, 60))
    again.load_state_dict(state)
    assert again.choice == "sobol"
    assert again.summary() == "auto chose sobol: chosen by an older rule"


def objective(config: dict[str, Any]) -> float:
    return float((config["x"] - 0.3) ** 2 + config["n"])


def test_the_default_is_auto_stored_and_shown_by_status(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from raysweep.cli.main import cli

    result = rs.run(
        objective, NUMERIC, num_trials=20, storage=tmp_path, name="auto", seed=0,
        backend=InProcessBackend(), verbose=0,
    )  # fmt: skip
    assert len(result.trials) == 20
    store = open_experiment(tmp_path / "auto")
    try:
        summary = store.get_meta("searcher_summary")
        state = store.get_meta("searcher_state")
    finally:
        store.close()
    assert summary.startswith("auto chose ")
    assert state["name"] == "auto"
    assert state["state"]["choice"] in summary
    shown = CliRunner().invoke(cli, ["status", str(tmp_path / "auto")])
    assert shown.exit_code == 0, shown.output
    assert summary in " ".join(shown.output.split())
