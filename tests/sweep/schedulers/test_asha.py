"""Tests of ASHA against hand-computed rungs, cutoffs and decisions."""

from __future__ import annotations

import pytest

from raysweep.errors import SpecError
from raysweep.sweep.schedulers import ASHA, Decision, Scheduler
from raysweep.sweep.schedulers.asha import quantile, rung_levels
from raysweep.trial import TrialState
from tests.sweep.schedulers.conformance import Feed, SchedulerConformance, make_ctx

C, S = Decision.CONTINUE, Decision.STOP


class TestASHAConformance(SchedulerConformance):
    """ASHA passes the shared checks."""

    registered = ("asha", {"max_t": 9, "reduction_factor": 2})

    def make(self) -> Scheduler:
        return ASHA(max_t=9, grace_period=1, reduction_factor=2)


def asha(mode: str = "min", **options: object) -> Feed:
    scheduler = ASHA(**{"max_t": 27, "grace_period": 1, "reduction_factor": 3, **options})  # type: ignore[arg-type]
    scheduler.setup(make_ctx(mode=mode))
    return Feed(scheduler)


@pytest.mark.parametrize(
    ("grace", "max_t", "rf", "rungs"),
    [
        (1, 27, 3, (1, 3, 9)),
        (1, 28, 3, (1, 3, 9, 27)),
        (1, 100, 3, (1, 3, 9, 27, 81)),
        (2, 16, 2, (2, 4, 8)),
        (5, 6, 4, (5,)),
        (0.1, 0.9, 3, (0.1, pytest.approx(0.3))),
    ],
)
def test_rungs_lie_below_max_t(grace: float, max_t: float, rf: float, rungs: tuple) -> None:
    """Rungs are grace_period * rf**k below max_t; max_t itself never is one."""
    assert ASHA(max_t=max_t, grace_period=grace, reduction_factor=rf).rungs == rungs


def test_bracket_s_starts_at_rung_s() -> None:
    """A later bracket's ladder is the same ladder without its lowest rungs."""
    assert rung_levels(1, 27, 3, first=1) == (3, 9)
    assert rung_levels(1, 27, 3, first=2) == (9,)


def test_cutoff_is_the_linear_quantile() -> None:
    """The cutoff interpolates linearly between ranks, as numpy's percentile does."""
    assert quantile([], 0.5) is None
    assert quantile([7.0], 1 / 3) == 7.0
    assert quantile([5.0, 3.0], 1 / 3) == pytest.approx(3 + 2 / 3)
    assert quantile([2.0, 4.0], 0.5) == 3.0
    assert quantile([1.0, 2.0, 3.0, 4.0, 5.0], 0.25) == 2.0


def test_scripted_asynchronous_run() -> None:
    """Decisions on a scripted run match the published rule worked by hand
    (rungs 1, 3, 9; a trial must be within the best third of those before it)."""
    feed = asha()
    expected = [
        (0, 1, 5.0, C),  # the first at rung 1 always continues
        (1, 1, 3.0, C),  # cutoff of [5] is 5
        (2, 1, 4.0, S),  # cutoff of [3, 5] at 1/3 is 3.667
        (3, 1, 3.5, C),  # cutoff of [3, 4, 5] is 3.667
        (0, 2, 9.0, C),  # rung 1 already recorded for trial 0
        (0, 3, 2.0, C),  # first at rung 3
        (1, 3, 2.5, S),  # cutoff of [2] is 2
        (3, 4, 1.0, C),  # judged at rung 3 (cutoff 2.167) when first past it
        (3, 9, 1.5, C),  # first at rung 9
        (0, 10, 1.4, C),  # cutoff of [1.5] is 1.5
        (0, 27, 9.9, C),  # at max_t: the trial ends by itself
    ]
    for trial_id, step, loss, decision in expected:
        assert feed(trial_id, step, loss) is decision, (trial_id, step, loss)
    scheduler = feed.scheduler
    assert isinstance(scheduler, ASHA)
    assert scheduler.recorded(0) == {0: 5.0, 1: 3.0, 2: 4.0, 3: 3.5}
    assert scheduler.recorded(1) == {0: 2.0, 1: 2.5, 3: 1.0}
    assert scheduler.recorded(2) == {3: 1.5, 0: 1.4}


def test_max_mode_keeps_the_highest() -> None:
    """With mode max the best values are the highest (Ray's _Bracket example)."""
    feed = asha(mode="max", max_t=10, reduction_factor=2)
    assert feed(0, 1, 2.0) is C
    assert feed(1, 1, 4.0) is C
    assert feed(2, 1, 1.0) is S  # below the median 3 of [2, 4]
    assert feed(3, 1, 3.5) is C  # cutoff of [1, 2, 4] is 2


def test_ties_with_the_cutoff_continue() -> None:
    """A loss equal to the cutoff is not worse than it."""
    feed = asha()
    assert [feed(t, 1, 1.0) for t in range(4)] == [C, C, C, C]


def test_a_stopped_trial_is_told_again() -> None:
    """A trial that reports after its stop (the stop was lost) is stopped again."""
    feed = asha()
    feed(0, 1, 1.0)
    assert feed(1, 1, 5.0) is S
    assert feed(1, 2, 0.1) is S
    assert feed(1, 3, 0.1) is S


def test_rerun_trial_is_not_recorded_twice() -> None:
    """A trial run again under its id keeps its first loss at a rung and is not re-judged."""
    feed = asha()
    feed(0, 1, 5.0)
    feed(1, 1, 1.0)
    feed.add(0)  # another attempt of trial 0
    assert feed(0, 1, 0.1) is C
    scheduler = feed.scheduler
    assert isinstance(scheduler, ASHA)
    assert scheduler.recorded(0) == {0: 5.0, 1: 1.0}


def test_reports_at_or_past_max_t_record_nothing() -> None:
    """A report at max_t or later continues and is not judged at the top rung."""
    feed = asha()
    feed(0, 9, 1.0)
    assert feed(1, 27, 50.0) is C
    assert feed(2, 40, 50.0) is C
    scheduler = feed.scheduler
    assert isinstance(scheduler, ASHA)
    assert scheduler.recorded(2) == {0: 1.0}


def test_a_skipped_rung_stays_empty() -> None:
    """A trial whose first report is past two rungs is judged at the higher only."""
    feed = asha()
    feed(0, 1, 1.0)
    assert feed(1, 5, 3.0) is C
    assert feed(1, 6, 3.0) is C
    scheduler = feed.scheduler
    assert isinstance(scheduler, ASHA)
    assert scheduler.recorded(0) == {0: 1.0}
    assert scheduler.recorded(1) == {1: 3.0}


def test_missing_metric_or_progress_is_not_recorded() -> None:
    """Reports without the metric or the time attribute leave the rungs as they are."""
    feed = asha(time_attr="epoch")
    assert feed(0, 1, 1.0) is C  # no "epoch" in the report
    assert feed(0, 1, None, epoch=1) is C  # no loss
    scheduler = feed.scheduler
    assert isinstance(scheduler, ASHA)
    assert scheduler.recorded(0) == {}
    feed(0, 1, 1.0, epoch=1)
    assert feed(1, 1, 2.0, epoch=1) is S


def test_time_total_s_measures_progress() -> None:
    """time_attr='time_total_s' places reports by the seconds the trial has run."""
    feed = asha(time_attr="time_total_s", max_t=270, grace_period=10)
    feed(0, 1, 1.0)  # the feed reports time_total_s = 10 * step
    assert feed(1, 1, 2.0) is S
    scheduler = feed.scheduler
    assert isinstance(scheduler, ASHA)
    assert scheduler.rungs == (10, 30, 90)


def test_replay_rebuilds_the_rungs_exactly() -> None:
    """restore() replays stored reports into the same rungs, and the resumed
    scheduler stops the same next trial."""
    live = asha()
    for trial_id, step, loss in [(0, 1, 5.0), (1, 1, 3.0), (2, 1, 4.0), (0, 3, 2.0), (1, 3, 3.0)]:
        live.play(trial_id, step, loss)
    live.end(0)
    resumed = live.resumed(ASHA(max_t=27, grace_period=1, reduction_factor=3), make_ctx())
    a, b = live.scheduler, resumed.scheduler
    assert isinstance(a, ASHA)
    assert isinstance(b, ASHA)
    assert [b.recorded(k) for k in range(3)] == [a.recorded(k) for k in range(3)]
    assert resumed.states[2] is TrialState.PRUNED
    assert resumed(3, 3, 2.5) is live(3, 3, 2.5) is S


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"grace_period": 0}, "grace_period must be a positive number, got 0"),
        ({"grace_period": "1"}, "grace_period must be a positive number, got '1' (str)"),
        ({"max_t": 1}, "max_t must be a number > grace_period=1, got 1"),
        ({"max_t": True}, "max_t must be a number"),
        ({"reduction_factor": 1.5}, "reduction_factor must be a number >= 2, got 1.5"),
        ({"time_attr": ""}, "time_attr must be"),
        ({"stop_grace_s": -1}, "stop_grace_s must be a number of seconds >= 0, got -1"),
    ],
)
def test_bad_options_fail_in_one_line(options: dict[str, object], fragment: str) -> None:
    """Each bad argument is a one-line SpecError naming it and what is expected."""
    with pytest.raises(SpecError) as info:
        ASHA(**options)  # type: ignore[arg-type]
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)
