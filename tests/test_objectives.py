"""Which trial is better: directions, best trial with ties, targets and Pareto fronts."""

from __future__ import annotations

import pytest

from raysweep.errors import SpecError
from raysweep.objectives import Direction, Metric, Objectives
from raysweep.trial import Trial, TrialState


def done(trial_id: int, **metrics: float) -> Trial:
    return Trial(trial_id, TrialState.COMPLETED, {}, metrics=metrics)


def test_min_and_max_decide_better_and_reached() -> None:
    """MIN prefers lower values, MAX higher; a target is reached when met or beaten."""
    assert Direction.MIN.better(1.0, 2.0)
    assert not Direction.MIN.better(2.0, 2.0)
    assert Direction.MAX.better(2.0, 1.0)
    assert Direction.MIN.reached(0.1, 0.1)
    assert not Direction.MIN.reached(0.2, 0.1)
    assert Direction.MAX.reached(0.9, 0.8)


def test_best_skips_unfinished_and_missing_and_lowest_id_wins_ties() -> None:
    """Only COMPLETED trials with the metric count; equal values keep the earlier trial."""
    trials = [
        Trial(0, TrialState.FAILED, {}, metrics={"loss": -10.0}),
        done(3, loss=1.0),
        done(1, loss=1.0),
        done(2, other=0.0),
        Trial(4, TrialState.RUNNING, {}),
    ]
    best = Objectives.parse("loss", "min").best(trials)
    assert best is not None
    assert best.trial_id == 1
    assert Objectives.parse("loss", "max").ranked(trials)[0].trial_id == 1


def test_improves_and_value() -> None:
    """Nothing yet is always improved on; a non-finite metric has no value."""
    objectives = Objectives.parse("acc", "max")
    assert objectives.improves(0.5, None)
    assert not objectives.improves(0.5, 0.5)
    assert objectives.value(done(0, acc=float("nan"))) is None


@pytest.mark.parametrize(
    ("metric", "mode", "fragment"),
    [
        ("", "min", "metric: expected a non-empty string"),
        (["a", "b"], "min", "one metric name is supported"),
        ("loss", "minimize", "mode: expected 'min' or 'max'"),
    ],
)
def test_bad_objectives_name_the_option(metric: object, mode: object, fragment: str) -> None:
    """A bad metric or mode is a SpecError naming which one."""
    with pytest.raises(SpecError, match=fragment):
        Objectives.parse(metric, mode)


def test_pareto_front_of_two_metrics() -> None:
    """Trials no other trial beats on every metric form the front."""
    objectives = Objectives((Metric("loss"), Metric("latency")))
    trials = [done(0, loss=1, latency=5), done(1, loss=2, latency=2), done(2, loss=3, latency=3)]
    assert [t.trial_id for t in objectives.pareto_front(trials)] == [0, 1]
    assert objectives.describe() == "minimize loss, minimize latency"
    assert Objectives.single("acc", "max").describe(ongoing=True) == "maximizing acc"
