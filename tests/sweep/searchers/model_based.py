"""Checks every searcher that learns from results must pass, beyond
:class:`~tests.sweep.searchers.conformance.SearcherConformance`.

A test module subclasses :class:`ModelBasedConformance`, sets ``warmup`` (told
trials after which the library's model is in use) and implements ``make`` and
``library_trials`` (how many trials the library holds, by kind), so the
bookkeeping of pending, failed and rejected trials is checked against the
library itself, not against the adapter's word.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable
from typing import Any

from raysweep.sweep.searchers import Searcher
from raysweep.sweep.space import SearchSpace, uniform
from raysweep.trial import Trial, TrialState
from tests.sweep.searchers.conformance import make_ctx, prune

BRANIN_SPACE = SearchSpace({"x": uniform(-5, 10), "y": uniform(0, 15)})


def branin(config: dict[str, Any]) -> float:
    x, y = config["x"], config["y"]
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return float((y - b * x**2 + c * x - 6) ** 2 + 10 * (1 - t) * math.cos(x) + 10)


def random_search_median(budget: int, seeds: int = 9) -> float:
    """The median over ``seeds`` random-search runs of the best Branin value in
    ``budget`` evaluations: the bar a model-based searcher's short run must pass."""
    from raysweep.sweep.searchers import RandomSearcher
    from tests.sweep.searchers.conformance import draw

    best = []
    for seed in range(seeds):
        searcher = RandomSearcher(seed=seed)
        searcher.setup(make_ctx(BRANIN_SPACE))
        best.append(min(branin(c) for c in draw(searcher, budget) if c is not None))
    return statistics.median(best)


def assert_ran_every_trial_once(result: Any, budget: int) -> None:
    """``budget`` trials completed, no configuration tried twice."""
    assert result.count(TrialState.COMPLETED) == budget
    assert len({json.dumps(t.config, sort_keys=True) for t in result.trials}) == budget


def run_against_the_edge(searcher: Searcher, n: int) -> None:
    """Run ``n`` trials where the best point lies just outside a narrow feasible
    region (``x * n <= 0.5``, ``abs(x) >= 0.1``, best at x = 1.5): every suggestion
    must be feasible, however often the model proposes outside."""
    from raysweep.sweep.space import randint

    space = SearchSpace({"x": uniform(-2, 2), "n": randint(1, 3)})
    searcher.setup(make_ctx(space, ["x * n <= 0.5", "abs(x) >= 0.1"]))
    for trial_id in range(n):
        config = searcher.suggest(trial_id)
        assert config is not None
        assert config["x"] * config["n"] <= 0.5
        assert abs(config["x"]) >= 0.1
        loss = (config["x"] - 1.5) ** 2
        searcher.on_trial_complete(completed(trial_id, config, loss))


def completed(trial_id: int, config: dict[str, Any], loss: float) -> Trial:
    return Trial(trial_id, TrialState.COMPLETED, config, metrics={"loss": loss}, attempts=1)


class ModelBasedConformance:
    """Subclasses define :meth:`make`, :meth:`library_trials` and ``warmup``."""

    #: Completed trials after which suggestions come from the model.
    warmup: int = 10
    space: SearchSpace = BRANIN_SPACE
    objective: Callable[[dict[str, Any]], float] = staticmethod(branin)

    def make(self, seed: int | None = None) -> Searcher:
        raise NotImplementedError

    def library_trials(self, searcher: Searcher) -> dict[str, int]:
        """``{"complete": n, "failed": n, "pending": n}`` as the library counts them."""
        raise NotImplementedError

    def fresh(self, seed: int = 0) -> Searcher:
        searcher = self.make(seed)
        searcher.setup(make_ctx(self.space, seed=seed))
        return searcher

    def run_sequential(self, searcher: Searcher, n: int, start: int = 0) -> list[Trial]:
        """Suggest, start and tell ``n`` trials one at a time (max_concurrent=1)."""
        trials = []
        for trial_id in range(start, start + n):
            config = searcher.suggest(trial_id)
            assert config is not None
            trial = completed(trial_id, config, self.objective(config))
            searcher.on_trial_start(Trial(trial_id, TrialState.RUNNING, config, attempts=1))
            searcher.on_trial_complete(trial)
            trials.append(trial)
        return trials

    def test_seeded_runs_repeat(self) -> None:
        """With one trial in flight, the same seed gives the same trials, past the warm-up."""
        n = self.warmup + 3
        first = [t.config for t in self.run_sequential(self.fresh(3), n)]
        second = [t.config for t in self.run_sequential(self.fresh(3), n)]
        assert first == second

    def test_pending_suggestions_differ(self) -> None:
        """k suggestions in a row with nothing told are k different points, past the warm-up."""
        searcher = self.fresh()
        self.run_sequential(searcher, self.warmup)
        pending = []
        for trial_id in range(self.warmup, self.warmup + 4):
            config = searcher.suggest(trial_id)
            assert config is not None
            assert self.space.problems(config) == []
            searcher.on_trial_start(Trial(trial_id, TrialState.RUNNING, config, attempts=1))
            pending.append(json.dumps(config, sort_keys=True))
        assert len(set(pending)) == 4
        assert self.library_trials(searcher)["pending"] == 4

    def test_failed_trials_are_not_values(self) -> None:
        """A failed trial is told as failed: the library counts it apart from the values."""
        searcher = self.fresh()
        self.run_sequential(searcher, 3)
        config = searcher.suggest(3)
        assert config is not None
        searcher.on_trial_start(Trial(3, TrialState.RUNNING, config, attempts=1))
        searcher.on_trial_error(Trial(3, TrialState.FAILED, config, error="boom", attempts=1))
        counts = self.library_trials(searcher)
        assert counts["complete"] == 3
        assert counts["pending"] == 0
        assert self.run_sequential(searcher, 2, start=4)  # and it goes on

    def test_rejected_suggestions_leave_nothing_dangling(self) -> None:
        """A suggestion the runner rejects is closed in the library; the next one comes."""
        searcher = self.fresh()
        self.run_sequential(searcher, 2)
        config = searcher.suggest(2)
        assert config is not None
        searcher.on_rejected(config)
        assert self.library_trials(searcher)["pending"] == 0
        again = searcher.suggest(2)
        assert again is not None
        assert self.library_trials(searcher)["pending"] <= 1

    def test_resume_counts_nothing_twice(self) -> None:
        """A searcher rebuilt from the stored trials and its state holds each trial once
        (completed, failed, pending) and proposes what the original would have."""
        original = self.fresh(seed=4)
        trials = self.run_sequential(original, self.warmup + 2)
        failed_config = original.suggest(len(trials))
        assert failed_config is not None
        original.on_trial_start(Trial(len(trials), TrialState.RUNNING, failed_config, attempts=1))
        failed = Trial(len(trials), TrialState.FAILED, failed_config, error="x", attempts=1)
        original.on_trial_error(failed)
        running_config = original.suggest(len(trials) + 1)
        assert running_config is not None
        running = Trial(len(trials) + 1, TrialState.RUNNING, running_config, attempts=1)
        original.on_trial_start(running)
        state = json.loads(json.dumps(original.state_dict()))

        restored = self.make(4)
        restored.setup(make_ctx(self.space, seed=4))
        restored.load_state_dict(state)
        restored.restore([*trials, failed, running])
        restored.on_trial_start(running)  # the runner dispatches it again: idempotent
        assert self.library_trials(restored) == self.library_trials(original)
        assert self.library_trials(restored) == {
            "complete": len(trials),
            "failed": 1,
            "pending": 1,
        }
        start = len(trials) + 2
        assert [restored.suggest(i) for i in range(start, start + 2)] == [
            original.suggest(i) for i in range(start, start + 2)
        ]

    def test_pruned_trials_close_and_resume(self) -> None:
        """A pruned trial (its reports told first) leaves nothing pending in the
        library, and a searcher restored with it holds what the original holds and
        proposes what the original would have."""
        original = self.fresh(seed=5)
        trials = self.run_sequential(original, self.warmup)
        config = original.suggest(len(trials))
        assert config is not None
        pruned = prune(original, len(trials), config, [400.0, 300.0])
        assert self.library_trials(original)["pending"] == 0
        state = json.loads(json.dumps(original.state_dict()))

        restored = self.make(5)
        restored.setup(make_ctx(self.space, seed=5))
        restored.load_state_dict(state)
        restored.restore([*trials, pruned])
        assert self.library_trials(restored) == self.library_trials(original)
        start = len(trials) + 1
        assert [restored.suggest(i) for i in range(start, start + 2)] == [
            original.suggest(i) for i in range(start, start + 2)
        ]
