"""Tests of the median stopping rule on scripted series worked by hand."""

from __future__ import annotations

import pytest

from raysweep.errors import SpecError
from raysweep.sweep.schedulers import Decision, MedianStopping, Scheduler
from tests.sweep.schedulers.conformance import Feed, SchedulerConformance, make_ctx

C, S, P = Decision.CONTINUE, Decision.STOP, Decision.PAUSE


class TestMedianConformance(SchedulerConformance):
    """MedianStopping passes the shared checks."""

    registered = ("median", {"grace_period": 2, "min_samples_required": 2})

    def make(self) -> Scheduler:
        return MedianStopping(grace_period=2, min_samples_required=2)


class TestMedianSoftConformance(SchedulerConformance):
    """MedianStopping that pauses instead of stopping passes the shared checks."""

    registered = ("median", {"hard_stop": False, "min_samples_required": 2})

    def make(self) -> Scheduler:
        return MedianStopping(hard_stop=False, min_samples_required=2)


def median(mode: str = "min", **options: object) -> Feed:
    scheduler = MedianStopping(**{"grace_period": 1, "min_samples_required": 2, **options})  # type: ignore[arg-type]
    scheduler.setup(make_ctx(mode=mode))
    return Feed(scheduler)


def two_others(feed: Feed, mode: str = "min") -> None:
    """Trial 0 reports 4, 2, 0 and trial 1 reports 2, 2, 2 at steps 1..3 (negated for max)."""
    sign = 1.0 if mode == "min" else -1.0
    for step, (a, b) in enumerate([(4.0, 2.0), (2.0, 2.0), (0.0, 2.0)], start=1):
        feed(0, step, sign * a)
        feed(1, step, sign * b)


def test_best_so_far_against_the_median_of_running_averages() -> None:
    """At step 2 the others average 3 and 2 (median 2.5): best 2.4 goes on; at step 3
    they average 2 and 2: the same best 2.4 is worse, and the trial stops."""
    feed = median()
    two_others(feed)
    assert feed(2, 2, 2.4) is C
    assert feed(2, 3, 2.6) is S


@pytest.mark.parametrize("mode", ["min", "max"])
def test_strictly_worse_only(mode: str) -> None:
    """A best value equal to the median continues; in max mode the best is the highest."""
    feed = median(mode=mode)
    two_others(feed, mode)
    sign = 1.0 if mode == "min" else -1.0
    assert feed(2, 3, sign * 2.0) is C
    assert feed(3, 3, sign * 2.01) is S


def test_min_samples_required() -> None:
    """Fewer other trials at the step than required: no judgement."""
    feed = median(min_samples_required=3)
    two_others(feed)
    assert feed(2, 3, 100.0) is C
    feed(3, 3, 2.0)
    assert feed(4, 3, 100.0) is S


def test_only_trials_that_reached_the_step_count() -> None:
    """A trial whose furthest report is before the step is not a sample."""
    feed = median()
    feed(0, 1, 1.0)
    feed(0, 2, 1.0)
    feed(1, 1, 1.0)  # trial 1 stops reporting at step 1
    assert feed(2, 2, 50.0) is C  # only trial 0 reached step 2
    assert feed(3, 1, 50.0) is S  # trials 0 and 1 (trial 2 has no report up to step 1)


def test_grace_period() -> None:
    """No trial is judged before the grace period, and earlier reports do not count
    in the others' running averages."""
    feed = median(grace_period=2)
    for step, loss in [(1, 100.0), (2, 1.0), (3, 1.0)]:
        feed(0, step, loss)
        feed(1, step, 3.0 if step > 1 else 100.0)
    assert feed(2, 1, 99.0) is C  # before the grace period
    # Averages over [2, 2]: trial 0 1.0 and trial 1 3.0 (not 50.5 and 51.5): median 2.
    assert feed(3, 2, 2.1) is S
    assert feed(4, 2, 1.9) is C  # median of 1.0, 3.0 and trial 3's 2.1


def test_rerun_replaces_a_report_at_the_same_progress() -> None:
    """A trial run again keeps one loss per step, so its average is not skewed by
    counting the step twice."""
    feed = median()
    two_others(feed)
    feed.add(0)  # another attempt of trial 0
    feed(0, 1, 4.0)
    # Trial 0's average to step 2 stays (4 + 2) / 2 = 3, not (4 + 2 + 4) / 3.
    assert feed(2, 2, 2.4) is C


def test_a_stopped_trial_is_told_again() -> None:
    """With hard_stop a trial stopped once is stopped on every later report."""
    feed = median()
    two_others(feed)
    assert feed(2, 3, 9.0) is S
    assert feed(2, 4, 0.0) is S


def test_soft_stop_pauses_once() -> None:
    """hard_stop=False pauses a losing trial, which then runs on unjudged."""
    feed = median(hard_stop=False)
    assert feed.scheduler.pauses
    two_others(feed)
    assert feed(2, 3, 9.0) is P
    assert feed.scheduler.on_trial_paused(feed.trial(2)) is None
    assert feed(2, 4, 9.0) is C


def test_missing_metric_counts_for_nothing() -> None:
    """A report without the metric neither is judged nor becomes a sample."""
    feed = median(min_samples_required=1)
    feed(0, 1, None, other=1.0)
    assert feed(1, 1, 50.0) is C  # trial 0 has no sample


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"grace_period": -1}, "grace_period must be a number >= 0, got -1"),
        ({"min_samples_required": 0}, "min_samples_required must be an integer >= 1, got 0"),
        ({"min_samples_required": 2.5}, "min_samples_required must be an integer >= 1"),
        ({"hard_stop": "yes"}, "hard_stop must be true or false, got 'yes' (str)"),
    ],
)
def test_bad_options_fail_in_one_line(options: dict[str, object], fragment: str) -> None:
    """Each bad argument is a one-line SpecError naming it and what is expected."""
    with pytest.raises(SpecError) as info:
        MedianStopping(**options)  # type: ignore[arg-type]
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)
