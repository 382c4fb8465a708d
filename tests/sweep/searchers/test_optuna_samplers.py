"""Tests of the Optuna-backed searchers (tpe, gp, cmaes, qmc, nsga2, nsga3)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import raysweep as rs

pytest.importorskip("optuna")

from raysweep.errors import SpecError
from raysweep.objectives import Direction, Metric, Objectives
from raysweep.sweep.searchers import SearchContext, Searcher, make_searcher
from raysweep.sweep.searchers._optuna import OptunaSearcher
from raysweep.sweep.space import SearchSpace, choice, uniform
from raysweep.sweep.space.constraints import ConstraintSet
from raysweep.trial import Trial, TrialState
from tests.sweep.searchers.conformance import SearcherConformance, make_ctx
from tests.sweep.searchers.model_based import (
    BRANIN_SPACE,
    ModelBasedConformance,
    assert_ran_every_trial_once,
    branin,
    random_search_median,
    run_against_the_edge,
)


def optuna_counts(searcher: Searcher) -> dict[str, int]:
    import optuna

    assert isinstance(searcher, OptunaSearcher)
    states = [t.state for t in searcher.optuna_study.get_trials(deepcopy=False)]
    return {
        "complete": states.count(optuna.trial.TrialState.COMPLETE),
        "failed": states.count(optuna.trial.TrialState.FAIL),
        "pending": states.count(optuna.trial.TrialState.RUNNING),
    }


class _Optuna(SearcherConformance, ModelBasedConformance):
    searcher_name = ""
    options: dict[str, Any] = {}  # noqa: RUF012 - read-only per class

    def make(self, seed: int | None = None) -> Searcher:
        return make_searcher(self.searcher_name, {"seed": seed, **self.options})

    def library_trials(self, searcher: Searcher) -> dict[str, int]:
        return optuna_counts(searcher)


class TestTPE(_Optuna):
    searcher_name = "tpe"


class TestGP(_Optuna):
    searcher_name = "gp"
    warmup = 6
    options = {"n_startup_trials": 5}  # noqa: RUF012


class TestCmaEs(_Optuna):
    searcher_name = "cmaes"


class TestQMC(_Optuna):
    searcher_name = "qmc"

    def test_restored_searcher_continues_the_sequence(self) -> None:
        """Optuna's QMC sampler learns its search space from the study's trials, so
        the state alone (no restore of the pending trials) cannot continue it; the
        resume with trials is checked by test_resume_counts_nothing_twice."""

    def test_restore_survives_reordered_space(self) -> None:
        """As above: QMC needs the trials to continue."""


class TestNSGA2(_Optuna):
    searcher_name = "nsga2"
    options = {"population_size": 6}  # noqa: RUF012


class TestNSGA3(_Optuna):
    searcher_name = "nsga3"
    options = {"population_size": 6}  # noqa: RUF012


@pytest.mark.parametrize(
    ("name", "options", "fragment"),
    [
        ("tpe", {"n_startup_trials": 0}, "n_startup_trials must be an integer >= 1"),
        ("gp", {"deterministic_objective": "yes"}, "deterministic_objective must be true"),
        ("qmc", {"qmc_type": "lhs"}, "qmc_type must be 'sobol' or 'halton'"),
        ("nsga2", {"population_size": 1}, "population_size must be an integer >= 2"),
        ("gp", {"threads": 0}, "threads must be a positive integer"),
        ("TPE", {"seed": -1}, "TPESearcher seed"),
        ("tpe", {"n_startup": 3}, "for searcher 'tpe' (did you mean 'n_startup_trials'?)"),
    ],
)
def test_bad_options_are_one_line_errors(name: str, options: dict[str, Any], fragment: str) -> None:
    with pytest.raises(SpecError) as info:
        make_searcher(name, options)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_names_are_case_insensitive_with_aliases() -> None:
    assert make_searcher("TPE").name == "tpe"
    assert make_searcher("Optuna").name == "tpe"
    assert make_searcher("NSGA-II").name == "nsga2"


def test_two_objectives_reach_the_library() -> None:
    """With two metrics the Optuna study optimizes both, in their directions."""
    import optuna

    searcher = make_searcher("tpe", {"seed": 0})
    space = SearchSpace({"x": uniform(0, 1), "act": choice(["a", "b"])})
    objectives = Objectives((Metric("loss"), Metric("acc", Direction.MAX)))
    searcher.setup(SearchContext(space, ConstraintSet(None, space), objectives, 0))
    assert isinstance(searcher, OptunaSearcher)
    assert searcher.optuna_study.directions == [
        optuna.study.StudyDirection.MINIMIZE,
        optuna.study.StudyDirection.MAXIMIZE,
    ]
    for trial_id in range(12):
        config = searcher.suggest(trial_id)
        assert config is not None
        metrics = {"loss": config["x"], "acc": 1 - config["x"] ** 2}
        searcher.on_trial_complete(
            Trial(trial_id, TrialState.COMPLETED, config, metrics=metrics, attempts=1)
        )
    assert len(searcher.optuna_study.best_trials) >= 1


@pytest.mark.ray
@pytest.mark.usefixtures("ray_session")
@pytest.mark.parametrize("name", ["tpe", "gp"])
def test_beats_random_search_on_branin_through_ray(name: str, storage: Path) -> None:
    """A short seeded sweep on Ray finds a Branin value below random search's median
    with the same budget (over 9 seeds), and its configurations never repeat. One
    trial in flight keeps the run reproducible, so the check cannot hang on which
    trial finishes first (pending trials are checked above, against Optuna)."""
    budget = 30

    def objective(config: dict[str, Any]) -> float:
        return branin(config)

    result = rs.run(
        objective,
        {"x": rs.uniform(-5, 10), "y": rs.uniform(0, 15)},
        searcher={"name": name, "n_startup_trials": 8},
        num_trials=budget,
        max_concurrent=1,
        seed=0,
        name=f"{name}-branin",
        storage=storage,
        verbose=0,
    )
    assert_ran_every_trial_once(result, budget)
    assert result.best is not None
    assert result.best.metrics["loss"] < random_search_median(budget)


class _StopAfter(rs.Callback):
    """Interrupts the driver (as Ctrl-C would) once ``n`` trials completed."""

    def __init__(self, n: int) -> None:
        self.n, self.done = n, 0

    def on_trial_complete(self, trial: Trial) -> None:
        self.done += 1
        if self.done == self.n:
            raise KeyboardInterrupt


def test_an_interrupted_tpe_sweep_resumes_without_double_counting(storage: Path) -> None:
    """Killed midway and resumed: the resumed searcher's Optuna study holds each stored
    trial once, the run reaches num_trials, and no configuration is tried twice."""
    from raysweep.sweep.execution.local import InProcessBackend

    def objective(config: dict[str, Any]) -> float:
        return branin(config)

    space = {"x": rs.uniform(-5, 10), "y": rs.uniform(0, 15)}
    options: dict[str, Any] = {
        "searcher": "tpe", "num_trials": 24, "seed": 3, "name": "resume", "storage": storage,
        "verbose": 0,
    }  # fmt: skip
    with pytest.raises(KeyboardInterrupt):
        rs.run(objective, space, backend=InProcessBackend(), callbacks=[_StopAfter(14)], **options)
    searcher = make_searcher("tpe")
    assert isinstance(searcher, OptunaSearcher)
    result = rs.run(
        objective, space, backend=InProcessBackend(), resume=True,
        **{**options, "searcher": searcher},
    )  # fmt: skip
    assert result.count(TrialState.COMPLETED) == 24
    assert len({json.dumps(t.config, sort_keys=True) for t in result.trials}) == 24
    counts = optuna_counts(searcher)
    assert counts == {"complete": 24, "failed": 0, "pending": 0}


def test_gp_fits_on_its_own_torch_threads_and_restores_the_users() -> None:
    """The GP asks with torch on `threads` threads and puts the user's setting back."""
    torch = pytest.importorskip("torch")
    searcher = make_searcher("gp", {"seed": 0, "n_startup_trials": 2, "threads": 1})
    searcher.setup(make_ctx(BRANIN_SPACE))
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    seen: list[int] = []
    original = torch.set_num_threads

    def record(n: int) -> None:
        seen.append(n)
        original(n)

    try:
        torch.set_num_threads = record
        for trial_id in range(4):
            config = searcher.suggest(trial_id)
            assert config is not None
            searcher.on_trial_complete(
                Trial(trial_id, TrialState.COMPLETED, config, {"loss": branin(config)}, attempts=1)
            )
        assert torch.get_num_threads() == 2
        assert seen[:2] == [1, 2]
    finally:
        torch.set_num_threads = original
        original(before)


@pytest.mark.parametrize("name", ["tpe", "gp", "cmaes"])
def test_a_model_stuck_on_an_infeasible_point_still_finds_feasible_ones(name: str) -> None:
    """A narrow feasible region with the best point just outside it: every suggestion
    is feasible and the run never gives up (refused proposals are taught to models
    that learn feasibility, and drawn at random after MODEL_TRIES)."""
    import optuna

    searcher = make_searcher(name, {"seed": 0})
    run_against_the_edge(searcher, 25)
    assert isinstance(searcher, OptunaSearcher)
    study = searcher.optuna_study
    complete = study.get_trials(states=[optuna.trial.TrialState.COMPLETE])
    feasible = [t for t in complete if all(v <= 0 for v in t.constraints.values())]
    assert len(feasible) == 25  # the trials that ran; refused proposals are apart
    if searcher.models_feasibility:  # refused proposals were taught as infeasible
        assert len(complete) > len(feasible)
    else:  # refused proposals failed: nothing but real results is complete
        assert len(complete) == len(feasible)


def _zdt1(config: dict[str, Any]) -> dict[str, float]:
    xs = [config[f"x{i}"] for i in range(3)]
    g = 1 + 9 * sum(xs[1:]) / 2
    return {"f1": xs[0], "f2": g * (1 - (xs[0] / g) ** 0.5)}


@pytest.mark.parametrize("name", ["tpe", "gp", "qmc", "nsga2", "nsga3", "auto"])
def test_two_objective_sweeps_end_to_end(name: str, storage: Path) -> None:
    """Each multi-objective searcher runs a two-metric sweep to its end; the front it
    reports is non-dominated and the study it kept holds both values of every trial."""
    from raysweep.sweep.execution.local import InProcessBackend

    options: dict[str, Any] = {"population_size": 4} if name.startswith("nsga") else {}
    if name == "gp":
        options["n_startup_trials"] = 4
    result = rs.run(
        _zdt1, {f"x{i}": rs.uniform(0, 1) for i in range(3)},
        metric=["f1", "f2"], mode="min", searcher={"name": name, **options},
        num_trials=12, seed=1, name=name, storage=storage, backend=InProcessBackend(),
        verbose=0,
    )  # fmt: skip
    front = result.pareto_front()
    assert result.count(TrialState.COMPLETED) == 12
    assert front
    objectives = result.objectives
    for trial in front:
        mine = [trial.metrics["f1"], trial.metrics["f2"]]
        for other in result.trials:
            theirs = [other.metrics["f1"], other.metrics["f2"]]
            assert not objectives.dominates(theirs, mine)


def test_seeded_runs_with_one_in_flight_repeat_end_to_end(storage: Path) -> None:
    """Two runs with the same seed and max_concurrent=1 try the same configurations."""
    from raysweep.sweep.execution.local import InProcessBackend

    def configs(name: str) -> list[dict[str, Any]]:
        result = rs.run(
            branin, {"x": rs.uniform(-5, 10), "y": rs.uniform(0, 15)}, searcher="tpe",
            num_trials=16, max_concurrent=1, seed=11, name=name, storage=storage,
            backend=InProcessBackend(), verbose=0,
        )  # fmt: skip
        return [dict(t.config) for t in result.trials]

    assert configs("a") == configs("b")
