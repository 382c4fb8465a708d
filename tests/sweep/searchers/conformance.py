"""Behaviour every searcher shares, as a test class to subclass.

A searcher's test module subclasses :class:`SearcherConformance` and implements
``make``; pytest then runs every check below against it (the pattern of optuna's
sampler test suite), so a new searcher is held to the same contract.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest

from raysweep.errors import SpecError
from raysweep.objectives import Objectives
from raysweep.sweep.config import SweepConfig
from raysweep.sweep.searchers import SearchContext, Searcher, make_searcher
from raysweep.sweep.space import (
    Fixed,
    SearchSpace,
    choice,
    loguniform,
    quniform,
    randint,
    uniform,
)
from raysweep.sweep.space.constraints import ConstraintSet
from raysweep.trial import Trial, TrialState


def make_ctx(
    space: SearchSpace, constraints: Sequence[str] | None = None, seed: int | None = 0
) -> SearchContext:
    """A context for ``space`` minimizing ``loss``."""
    return SearchContext(space, ConstraintSet(constraints, space), Objectives.single("loss"), seed)


def mixed_space() -> SearchSpace:
    """A space any searcher can serve: 72 grid points plus one continuous parameter."""
    return SearchSpace(
        {
            "lr": loguniform(1e-4, 0.1),
            "layers": randint(1, 4),
            "act": choice(["relu", "tanh", "gelu"]),
            "dropout": quniform(0, 0.5, 0.1),
            "epochs": Fixed(10),
        }
    )


def conditional_space() -> SearchSpace:
    """Momentum only for SGD, and Nesterov only with a large momentum (nested)."""
    return SearchSpace(
        {
            "optimizer": choice(["sgd", "adam"]),
            "momentum": uniform(0, 0.99).when("optimizer == 'sgd'"),
            "nesterov": choice([True, False]).when("momentum > 0.5"),
            "lr": loguniform(1e-4, 0.1),
        }
    )


def _objective(config: dict[str, Any]) -> float:
    """An objective for configurations that are built but never run."""
    return float(config["lr"])


def draw(searcher: Searcher, n: int, start: int = 0) -> list[dict[str, Any] | None]:
    return [searcher.suggest(trial_id) for trial_id in range(start, start + n)]


def reports(losses: Sequence[float], metric: str = "loss") -> tuple[dict[str, Any], ...]:
    """Intermediate reports as the runner passes them: ``step``, ``time``, the
    metric and ``time_total_s``."""
    return tuple(
        {"step": step, "time": 1000.0 + step, metric: value, "time_total_s": float(step)}
        for step, value in enumerate(losses)
    )


def prune(
    searcher: Searcher, trial_id: int, config: dict[str, Any], losses: Sequence[float]
) -> Trial:
    """Start trial ``trial_id``, tell ``searcher`` each of its reports as the runner
    does (the trial holding the reports so far) and then that it was pruned; the
    pruned trial as stored, its last report as its metrics."""
    series = reports(losses)
    running = Trial(trial_id, TrialState.RUNNING, config, attempts=1)
    searcher.on_trial_start(running)
    for i, report in enumerate(series):
        searcher.on_trial_result(
            Trial(trial_id, TrialState.RUNNING, config, intermediate=series[: i + 1], attempts=1),
            report,
        )
    last = {"loss": losses[-1]} if losses else {}
    trial = Trial(
        trial_id, TrialState.PRUNED, config, metrics=last, intermediate=series, attempts=1
    )
    searcher.on_trial_pruned(trial)
    return trial


class SearcherConformance:
    """Checks every searcher must pass; subclasses define :meth:`make`."""

    def make(self, seed: int | None = None) -> Searcher:
        raise NotImplementedError

    def started(self, seed: int | None = None, ctx_seed: int | None = 0) -> Searcher:
        searcher = self.make(seed)
        searcher.setup(make_ctx(mixed_space(), seed=ctx_seed))
        return searcher

    def test_every_domain_kind_lies_in_the_space(self) -> None:
        """Suggestions over every domain kind (the encoding's mapping and back) lie
        in the space and survive JSON."""
        space = every_kind_space()
        searcher = self.make(0)
        searcher.setup(make_ctx(space))
        for trial_id in range(24):
            config = searcher.suggest(trial_id)
            assert config is not None
            assert space.problems(config) == []
            assert json.loads(json.dumps(config)) == config

    def test_name_maps_to_the_class(self) -> None:
        """make_searcher(name) builds this searcher class."""
        searcher = self.make()
        assert type(make_searcher(searcher.name)) is type(searcher)

    def test_suggestions_lie_in_the_space(self) -> None:
        """Every suggestion is a full config inside the space, with the constants included."""
        space = mixed_space()
        for config in draw(self.started(), 30):
            assert config is not None
            assert space.problems(config) == []
            assert config["epochs"] == 10

    def test_values_are_plain_python(self) -> None:
        """Suggested values are JSON-ready Python values, never numpy scalars."""
        for config in draw(self.started(), 10):
            assert config is not None
            assert json.loads(json.dumps(config)) == config
            assert all(type(v) in (int, float, str, bool) for v in config.values())

    def test_same_seed_same_sequence(self) -> None:
        """Two searchers with the same seed propose the same configurations."""
        assert draw(self.started(seed=5), 12) == draw(self.started(seed=5), 12)

    def test_other_seed_other_sequence(self) -> None:
        """A different seed gives a different sequence."""
        assert draw(self.started(seed=5), 12) != draw(self.started(seed=6), 12)

    def test_experiment_seed_is_used_without_own_seed(self) -> None:
        """Without its own seed the searcher follows ctx.seed; its own seed overrides it."""
        assert draw(self.started(seed=None, ctx_seed=3), 8) == draw(self.started(3, None), 8)
        assert draw(self.started(seed=3, ctx_seed=4), 8) == draw(self.started(3, 9), 8)

    def test_state_is_json(self) -> None:
        """state_dict() holds only JSON values and survives a JSON round trip unchanged."""
        searcher = self.started()
        draw(searcher, 3)
        state = searcher.state_dict()
        assert json.loads(json.dumps(state)) == state

    def test_restored_searcher_continues_the_sequence(self) -> None:
        """A new searcher loaded with the state after 7 draws proposes the original's next 5."""
        for seed in (0, None):
            original = self.started(seed=seed, ctx_seed=seed)
            draw(original, 7)
            state = json.loads(json.dumps(original.state_dict()))
            restored = self.make(seed)
            restored.setup(make_ctx(mixed_space(), seed=seed))
            restored.load_state_dict(state)
            assert draw(restored, 5, start=7) == draw(original, 5, start=7)

    def test_restore_survives_reordered_space(self) -> None:
        """A resumed searcher continues the same points when the space is reordered."""
        original = self.started(seed=1)
        draw(original, 7)
        state = json.loads(json.dumps(original.state_dict()))
        reordered = SearchSpace(dict(reversed(list(mixed_space().items()))))
        restored = self.make(1)
        restored.setup(make_ctx(reordered, seed=1))
        restored.load_state_dict(state)
        assert draw(restored, 5, start=7) == draw(original, 5, start=7)

    def test_intermediate_results_and_pruned_trials_are_taken(self) -> None:
        """Intermediate reports and pruned trials, with reports or without, are
        accepted, and the suggestions that follow still lie in the space."""
        searcher = self.started()
        first, second = draw(searcher, 2)
        assert first is not None
        assert second is not None
        prune(searcher, 0, first, [3.0, 2.5, 2.25])
        prune(searcher, 1, second, [])
        for config in draw(searcher, 3, start=2):
            assert config is not None
            assert mixed_space().problems(config) == []

    def test_suggestions_satisfy_the_constraints(self) -> None:
        """Configurations violating ctx.constraints are never proposed."""
        searcher = self.make(0)
        searcher.setup(make_ctx(mixed_space(), ["layers <= 2", "act != 'gelu'"]))
        configs = [c for c in draw(searcher, 20) if c is not None]
        assert configs
        assert all(c["layers"] <= 2 and c["act"] != "gelu" for c in configs)

    def test_conditional_space(self) -> None:
        """A conditional searcher proposes only valid configs, of both branches; any
        other searcher is refused a conditional space when the run is configured."""
        searcher = self.make(0)
        space = conditional_space()
        if not searcher.conditional:
            with pytest.raises(SpecError, match="conditional"):
                SweepConfig.build(
                    {
                        "objective": _objective,
                        "space": space,
                        "searcher": searcher,
                        "num_trials": 2,
                        "name": "c",
                    }
                )
            return
        searcher.setup(make_ctx(space))
        configs = draw(searcher, 30)
        for config in configs:
            assert config is not None
            assert space.problems(config) == []
        assert {"momentum" in c for c in configs if c is not None} == {True, False}


def every_kind_space() -> SearchSpace:
    """One parameter of every domain kind, choices of every JSON scalar included."""
    from raysweep.sweep.space import lograndint, uniform

    return SearchSpace(
        {
            "u": uniform(-3.5, -1.25),
            "lr": loguniform(1e-6, 1.0),
            "n": randint(-2, 3),
            "width": lograndint(1, 512),
            "p": quniform(0.1, 0.9, 0.2),
            "any": choice([None, 1.5, True, "a", 0]),
            "tag": Fixed({"k": [1, 2]}),
        }
    )
