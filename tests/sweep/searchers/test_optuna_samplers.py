"""Tests of the Optuna-backed searchers (tpe, gp, cmaes, qmc, nsga2, nsga3)."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("optuna")

from raysweep.errors import SpecError
from raysweep.objectives import Direction, Metric, Objectives
from raysweep.sweep.searchers import SearchContext, Searcher, make_searcher
from raysweep.sweep.searchers.optuna_samplers import OptunaSearcher
from raysweep.sweep.space import SearchSpace, choice, uniform
from raysweep.sweep.space.constraints import ConstraintSet
from raysweep.trial import Trial, TrialState
from tests.sweep.searchers.conformance import SearcherConformance
from tests.sweep.searchers.model_based import ModelBasedConformance


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
        ("TPE", {"seed": -1}, "TPESearcher seed"),
        ("tpe", {"n_startup": 3}, "unknown option(s) 'n_startup' for searcher 'tpe'"),
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
