"""Tests of the bayesopt searcher (the ``bayesian-optimization`` package): the shared
checks, the library's own count of observations and pending points, constraints,
repeats, directions, options, and a real run on Ray.

Counts stay small: each suggestion past the warm-up fits a Gaussian process.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("bayes_opt")

import raysweep as rs
from raysweep.errors import MissingExtraError, SpecError
from raysweep.objectives import Objectives
from raysweep.sweep.searchers import SearchContext, Searcher, make_searcher
from raysweep.sweep.searchers.bayesopt import BayesOptSearcher
from raysweep.sweep.space import SearchSpace, randint, uniform
from raysweep.sweep.space.constraints import ConstraintSet
from raysweep.trial import Trial, TrialState
from tests.sweep.searchers.conformance import SearcherConformance, make_ctx
from tests.sweep.searchers.model_based import (
    BRANIN_SPACE,
    ModelBasedConformance,
    assert_ran_every_trial_once,
    branin,
    completed,
    random_search_median,
)

#: Branin's global minimum.
BRANIN_MIN = 0.397887


def running(trial_id: int, config: dict[str, Any]) -> Trial:
    return Trial(trial_id, TrialState.RUNNING, config, attempts=1)


def library_counts(searcher: Searcher) -> dict[str, int]:
    """Observations registered in the library's optimizer and its constant liar's
    pending points. bayes_opt has no failed trials: a failed one is never registered."""
    assert isinstance(searcher, BayesOptSearcher)
    optimizer = searcher.optimizer()
    return {
        "complete": len(optimizer.space),
        "failed": 0,
        "pending": len(optimizer.acquisition_function.dummies),
    }


def fresh(
    seed: int = 0,
    space: SearchSpace = BRANIN_SPACE,
    constraints: list[str] | None = None,
    **kw: Any,
) -> BayesOptSearcher:
    searcher = BayesOptSearcher(seed=seed, **kw)
    searcher.setup(make_ctx(space, constraints, seed=seed))
    return searcher


def tell_sequential(searcher: Searcher, n: int, start: int = 0) -> list[Trial]:
    """Suggest, start and complete ``n`` Branin trials one at a time."""
    trials = []
    for trial_id in range(start, start + n):
        config = searcher.suggest(trial_id)
        assert config is not None
        searcher.on_trial_start(running(trial_id, config))
        trial = completed(trial_id, config, branin(config))
        searcher.on_trial_complete(trial)
        trials.append(trial)
    return trials


class TestBayesOpt(SearcherConformance, ModelBasedConformance):
    """BayesOptSearcher passes the shared checks and the model-based ones."""

    warmup = 6

    def make(self, seed: int | None = None) -> Searcher:
        return BayesOptSearcher(seed=seed, n_initial=5)

    def library_trials(self, searcher: Searcher) -> dict[str, int]:
        return library_counts(searcher)

    def test_resume_counts_nothing_twice(self) -> None:
        """bayes_opt keeps no failed trials (a failed one is simply never registered),
        so the shared check's count of failed trials cannot be read from it: here the
        resumed library holds each completed trial once and the pending one once, the
        failed one nowhere, and proposes what the original would have."""
        original = fresh(seed=4, n_initial=5)
        trials = tell_sequential(original, self.warmup + 2)
        failed_config = original.suggest(len(trials))
        assert failed_config is not None
        original.on_trial_start(running(len(trials), failed_config))
        failed = Trial(len(trials), TrialState.FAILED, failed_config, error="x", attempts=1)
        original.on_trial_error(failed)
        running_config = original.suggest(len(trials) + 1)
        assert running_config is not None
        pending = running(len(trials) + 1, running_config)
        original.on_trial_start(pending)
        state = json.loads(json.dumps(original.state_dict()))

        restored = BayesOptSearcher(seed=4, n_initial=5)
        restored.setup(make_ctx(BRANIN_SPACE, seed=4))
        restored.load_state_dict(state)
        restored.restore([*trials, failed, pending])
        restored.on_trial_start(pending)  # the runner dispatches it again: idempotent
        expected = {"complete": len(trials), "failed": 0, "pending": 1}
        assert library_counts(restored) == library_counts(original) == expected
        points = restored.optimizer().space.params.tolist()
        assert len({json.dumps(p) for p in points}) == len(trials)
        start = len(trials) + 2
        assert [restored.suggest(i) for i in range(start, start + 2)] == [
            original.suggest(i) for i in range(start, start + 2)
        ]


def test_state_is_the_seed_and_a_count() -> None:
    """The state holds the seed and the number of suggestions, nothing the trials give back."""
    searcher = fresh(seed=2)
    tell_sequential(searcher, 3)
    assert searcher.state_dict() == {"seed": 2, "suggestions": 3}
    with pytest.raises(SpecError, match="BayesOptSearcher cannot restore from state"):
        searcher.load_state_dict({"seed": 2})


def test_targets_follow_the_direction() -> None:
    """bayes_opt maximizes: a minimized metric is registered negated, a maximized one as is."""
    space = SearchSpace({"x": uniform(0, 1)})
    for mode, sign in (("min", -1.0), ("max", 1.0)):
        searcher = BayesOptSearcher(seed=0)
        ctx = SearchContext(space, ConstraintSet(None, space), Objectives.single("m", mode), 0)
        searcher.setup(ctx)
        config = searcher.suggest(0)
        assert config is not None
        searcher.on_trial_complete(
            Trial(0, TrialState.COMPLETED, config, metrics={"m": 3.0}, attempts=1)
        )
        assert searcher.optimizer().space.target.tolist() == [sign * 3.0]


def test_rejected_suggestion_is_not_proposed_again() -> None:
    """After the runner rejects a model suggestion the next one for that id differs,
    and nothing about the rejected one is registered."""
    searcher = fresh(n_initial=3)
    tell_sequential(searcher, 3)
    rejected = searcher.suggest(3)
    searcher.on_rejected(rejected)
    again = searcher.suggest(3)
    assert again != rejected
    assert library_counts(searcher) == {"complete": 3, "failed": 0, "pending": 1}


def test_model_suggestions_satisfy_constraints() -> None:
    """Past the warm-up, suggestions stay in a small feasible corner, all different."""
    searcher = fresh(n_initial=3, constraints=["x <= -2 and y >= 10"])
    trials = tell_sequential(searcher, 8)
    assert all(t.config["x"] <= -2 and t.config["y"] >= 10 for t in trials)
    assert len({json.dumps(t.config, sort_keys=True) for t in trials}) == 8


def test_small_discrete_space_is_covered_before_repeats() -> None:
    """In a three-value space the model tries each value once before repeating one."""
    space = SearchSpace({"n": randint(1, 3)})
    searcher = fresh(space=space, n_initial=1)
    seen = []
    for trial_id in range(4):
        config = searcher.suggest(trial_id)
        assert config is not None
        seen.append(config["n"])
        searcher.on_trial_complete(completed(trial_id, config, float(config["n"])))
    assert sorted(seen[:3]) == [1, 2, 3]
    assert seen[3] in (1, 2, 3)


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"n_initial": 0}, "n_initial must be an integer >= 1, got 0"),
        ({"acquisition": "lcb"}, "acquisition must be one of 'ucb', 'ei', 'poi', got 'lcb'"),
        ({"exploration": -1}, "exploration must be a finite number >= 0 or null, got -1"),
        ({"exploration": math.nan}, "exploration must be a finite number >= 0"),
        ({"seed": -1}, "BayesOptSearcher seed"),
        ({"kappa": 2}, "unknown option(s) 'kappa' for searcher 'bayesopt'"),
    ],
)
def test_bad_options_are_one_line_errors(options: dict[str, Any], fragment: str) -> None:
    """Bad options fail at once, in one line naming the option."""
    with pytest.raises(SpecError) as info:
        make_searcher("bayesopt", options)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_names_and_options_reach_the_searcher() -> None:
    """The name, its alias and the options build the searcher as asked."""
    searcher = make_searcher("BayesianOptimization", {"acquisition": "ucb", "exploration": 1.0})
    assert isinstance(searcher, BayesOptSearcher)
    assert (searcher.acquisition, searcher.exploration) == ("ucb", 1.0)
    searcher.setup(make_ctx(BRANIN_SPACE))
    tell_sequential(searcher, 6)  # the UCB model runs too


def test_missing_package_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without bayes_opt importable the constructor names the extra to install."""
    monkeypatch.setitem(sys.modules, "bayes_opt", None)
    with pytest.raises(
        MissingExtraError,
        match=r"searcher 'bayesopt' needs .*'bayesian-optimization'.*raysweep\[bayesopt\]",
    ):
        BayesOptSearcher()


@pytest.mark.ray
@pytest.mark.usefixtures("ray_session")
def test_bayesopt_beats_random_search_on_branin_through_ray(storage: Path) -> None:
    """A short seeded bayesopt sweep on Ray finds a Branin value under half of random
    search's median over seeds with the same budget. One trial in flight keeps the run
    reproducible, so the margin does not hang on which trial finishes first (pending
    trials are checked above, against the library)."""
    budget = 20

    def objective(config: dict[str, Any]) -> float:
        return branin(config)

    result = rs.run(
        objective,
        {"x": rs.uniform(-5, 10), "y": rs.uniform(0, 15)},
        searcher="bayesopt",
        num_trials=budget,
        max_concurrent=1,
        seed=0,
        name="bayesopt-branin",
        storage=storage,
        verbose=0,
    )
    assert_ran_every_trial_once(result, budget)
    best = result.best
    assert best is not None
    assert BRANIN_MIN <= best.metrics["loss"] < random_search_median(budget) / 2
