"""Tests of asynchronous Hyperband: bracket ladders, assignment and separate judging."""

from __future__ import annotations

from collections import Counter

import pytest

from raysweep.errors import SpecError
from raysweep.sweep.schedulers import Decision, HyperBand, Scheduler
from tests.sweep.schedulers.conformance import Feed, SchedulerConformance, make_ctx

C, S = Decision.CONTINUE, Decision.STOP


class TestHyperBandConformance(SchedulerConformance):
    """HyperBand passes the shared checks."""

    registered = ("hyperband", {"max_t": 9, "reduction_factor": 2, "brackets": 2})

    def make(self) -> Scheduler:
        return HyperBand(max_t=9, grace_period=1, reduction_factor=2, brackets=2)


def hyperband() -> HyperBand:
    scheduler = HyperBand(max_t=27, grace_period=1, reduction_factor=3, brackets=3)
    scheduler.setup(make_ctx())
    return scheduler


def test_each_bracket_starts_one_rung_later() -> None:
    """Bracket s has its first rung at grace_period * rf**s."""
    assert hyperband().bracket_rungs == ((1, 3, 9), (3, 9), (9,))


def test_shares_follow_hyperband_allocation() -> None:
    """Bracket shares are rf**c / (c + 1) for c rungs, normalized: 27/4 : 9/3 : 3/2."""
    assert hyperband().bracket_shares == pytest.approx((0.6, 4 / 15, 2 / 15))


def test_assignment_is_deterministic_and_proportional() -> None:
    """A trial's bracket depends on its id only, and the long-run counts match the shares."""
    scheduler = hyperband()
    assert [scheduler.bracket_of(i) for i in range(10)] == [0, 1, 0, 1, 0, 0, 1, 0, 2, 0]
    assert [hyperband().bracket_of(i) for i in range(10)] == [
        scheduler.bracket_of(i) for i in range(10)
    ]
    counts = Counter(scheduler.bracket_of(i) for i in range(3000))
    assert counts[0] == pytest.approx(1800, abs=5)
    assert counts[1] == pytest.approx(800, abs=5)
    assert counts[2] == pytest.approx(400, abs=5)


def test_every_bracket_gets_trials_early() -> None:
    """The first ten trials already reach every bracket."""
    scheduler = hyperband()
    assert {scheduler.bracket_of(i) for i in range(10)} == {0, 1, 2}


def test_brackets_judge_separately() -> None:
    """A trial is compared only with trials of its own bracket, at that bracket's rungs."""
    scheduler = hyperband()
    feed = Feed(scheduler)
    # Trials 0 and 2 are in bracket 0, 1 and 3 in bracket 1, 8 in bracket 2.
    assert feed(0, 3, 1.0) is C  # bracket 0, first at rung 3
    assert feed(1, 1, 50.0) is C  # bracket 1 has no rung at 1
    assert feed(1, 3, 10.0) is C  # bracket 1, first at rung 3: trial 0 does not count
    assert feed(3, 3, 20.0) is S  # bracket 1: worse than trial 1's 10
    assert feed(2, 3, 5.0) is S  # bracket 0: worse than trial 0's 1
    assert feed(8, 3, 99.0) is C  # bracket 2 judges first at 9
    assert feed(8, 9, 99.0) is C  # and is first there
    assert scheduler.recorded(1, bracket=0) == {0: 1.0, 2: 5.0}
    assert scheduler.recorded(0, bracket=1) == {1: 10.0, 3: 20.0}
    assert scheduler.recorded(0, bracket=2) == {8: 99.0}


def test_one_bracket_is_asha() -> None:
    """With one bracket every trial is judged on ASHA's ladder."""
    scheduler = HyperBand(max_t=27, grace_period=1, reduction_factor=3, brackets=1)
    assert scheduler.bracket_rungs == ((1, 3, 9),)
    assert {scheduler.bracket_of(i) for i in range(50)} == {0}


@pytest.mark.parametrize(
    ("brackets", "fragment"),
    [
        (0, "brackets must be an integer >= 1, got 0"),
        (2.0, "brackets must be an integer >= 1, got 2.0"),
        (4, "brackets must be at most 3 (one per rung below max_t=27"),
    ],
)
def test_bad_brackets_fail_in_one_line(brackets: object, fragment: str) -> None:
    """Too few or too many brackets is a one-line SpecError."""
    with pytest.raises(SpecError) as info:
        HyperBand(max_t=27, grace_period=1, reduction_factor=3, brackets=brackets)  # type: ignore[arg-type]
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)
