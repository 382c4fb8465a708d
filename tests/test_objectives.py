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
        ([], "min", r"^metric: expected a metric name or a non-empty list of names, got \[\]$"),
        (["a", "a"], "min", "^metric: metric names must be distinct, 'a' is given twice$"),
        (["a", 3], "min", r"^metric: expected non-empty strings as metric names, got 3 in"),
        ("loss", "minimize", "mode: expected 'min' or 'max'"),
        (["a", "b"], ["min"], r"^mode: 1 direction\(s\) given for 2 metric\(s\) \['a', 'b'\]"),
        (
            ["a", "b"],
            ["min", "maxx"],
            "^mode: expected 'min' or 'max' for each metric, got 'maxx' \\(str\\) for 'b'$",
        ),
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


def test_several_metrics_parse_with_one_mode_for_all_or_one_each() -> None:
    """A list of metrics takes one mode for all or a list of the same length."""
    both = Objectives.parse(["loss", "acc"], ["min", "max"])
    assert [(m.name, m.direction) for m in both] == [
        ("loss", Direction.MIN),
        ("acc", Direction.MAX),
    ]
    assert both.multi
    assert not Objectives.single("loss").multi
    assert Objectives.parse(("a", "b"), "max").to_json() == {
        "metric": ["a", "b"],
        "mode": ["max", "max"],
    }
    assert Objectives.parse(["loss"], ["min"]).to_json() == {"metric": "loss", "mode": "min"}


def test_primary_metric_is_the_first_or_the_one_named() -> None:
    """best, value and reached follow the primary metric, which with_primary moves."""
    objectives = Objectives.parse(["loss", "latency"], "min")
    trials = [done(0, loss=1, latency=5), done(1, loss=2, latency=2)]
    assert objectives.metric == "loss"
    assert objectives.best(trials) is trials[0]
    by_latency = objectives.with_primary("latency")
    assert by_latency.metric == "latency"
    assert by_latency.names == ("loss", "latency")
    assert by_latency.best(trials) is trials[1]
    assert [t.trial_id for t in objectives.ranked(trials, metric="latency")] == [1, 0]
    assert objectives.with_primary(None) is objectives
    with pytest.raises(
        SpecError, match=r"^'nope' is not an objective metric; expected one of: loss, latency$"
    ):
        objectives.with_primary("nope")


def test_front_grows_one_trial_at_a_time_like_the_whole_front() -> None:
    """add_to_front, fed trials one by one, ends with pareto_front of them all."""
    objectives = Objectives.parse(["loss", "acc"], ["min", "max"])
    trials = [
        done(0, loss=3, acc=0.5),
        done(1, loss=2, acc=0.6),  # dominates 0
        done(2, loss=1, acc=0.1),
        done(3, loss=2, acc=0.6),  # equal to 1: both stay
        done(4, loss=5, acc=0.0),  # dominated: changes nothing
        done(5, loss=1),  # a metric missing: never on the front
        Trial(6, TrialState.FAILED, {}, metrics={"loss": 0.0, "acc": 1.0}),
    ]
    front: list[Trial] = []
    for trial in trials:
        grown = objectives.add_to_front(front, trial)
        if trial.trial_id in (4, 5, 6):
            assert grown is None
        front = front if grown is None else grown
    assert [t.trial_id for t in front] == [1, 2, 3]
    assert front == objectives.pareto_front(trials)
    assert objectives.values(trials[5]) is None
