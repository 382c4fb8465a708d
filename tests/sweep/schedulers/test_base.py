"""Tests of the scheduler interface: reading reports, and the replay a resume runs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from raysweep.errors import SpecError
from raysweep.sweep.schedulers import FIFO, Decision, Scheduler
from raysweep.trial import Trial, TrialState
from tests.sweep.schedulers.conformance import make_ctx


class Recorder(Scheduler):
    """A scheduler that writes down every call it gets."""

    name = "recorder"

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, int, Any]] = []

    def on_trial_result(self, trial: Trial, report: Mapping[str, Any]) -> Decision:
        self.calls.append(("result", trial.trial_id, report["step"]))
        return Decision.CONTINUE

    def on_trial_complete(self, trial: Trial) -> None:
        self.calls.append(("complete", trial.trial_id, None))

    def on_trial_remove(self, trial: Trial) -> None:
        self.calls.append(("remove", trial.trial_id, None))


def stored(
    trial_id: int, times: list[float | None], state: TrialState, ended: float | None = None
) -> Trial:
    reports = tuple(
        {"step": i, "loss": 1.0} | ({} if t is None else {"time": t}) for i, t in enumerate(times)
    )
    return Trial(trial_id, state, {}, intermediate=reports, ended_at=ended)


def test_restore_replays_reports_in_the_order_they_were_made() -> None:
    """Reports of all trials are replayed by time, and a finished trial is told so
    when it ended, between the reports of the others."""
    recorder = Recorder()
    recorder.setup(make_ctx())
    recorder.restore(
        [
            stored(0, [1.0, 4.0], TrialState.COMPLETED, ended=4.5),
            stored(1, [2.0, 3.0, 6.0], TrialState.RUNNING),
            stored(2, [5.0], TrialState.PRUNED),
            stored(3, [], TrialState.PENDING),
        ]
    )
    assert recorder.calls == [
        ("result", 0, 0),
        ("result", 1, 0),
        ("result", 1, 1),
        ("result", 0, 1),
        ("complete", 0, None),
        ("result", 2, 0),
        ("remove", 2, None),
        ("result", 1, 2),
    ]


def test_restore_keeps_each_trials_own_order() -> None:
    """A report without a time stays after the one before it, and ties go to the
    lower trial id."""
    recorder = Recorder()
    recorder.setup(make_ctx())
    recorder.restore(
        [
            stored(0, [2.0, None, 3.0], TrialState.RUNNING),
            stored(1, [2.0, 2.5], TrialState.RUNNING),
        ]
    )
    assert recorder.calls == [
        ("result", 0, 0),
        ("result", 0, 1),
        ("result", 1, 0),
        ("result", 1, 1),
        ("result", 0, 2),
    ]


@pytest.mark.parametrize(
    ("mode", "report", "value"),
    [
        ("min", {"loss": 2.0}, 2.0),
        ("max", {"loss": 2.0}, -2.0),
        ("min", {"loss": float("nan")}, None),
        ("min", {"loss": True}, None),
        ("min", {}, None),
    ],
)
def test_value_is_a_loss(mode: str, report: dict[str, Any], value: float | None) -> None:
    """The primary metric is read as a loss; a missing or non-finite one is None."""
    recorder = Recorder()
    recorder.setup(make_ctx(mode=mode))
    assert recorder.value(report) == value


def test_bad_stop_grace_is_one_line() -> None:
    """A negative stop grace is refused, naming the scheduler."""
    with pytest.raises(SpecError, match="scheduler 'fifo': stop_grace_s must be a number"):
        FIFO(stop_grace_s=-1.0)
