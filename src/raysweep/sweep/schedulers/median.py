"""The median stopping rule: stop a trial that does worse than the typical trial did.

The rule of Golovin et al., "Google Vizier" (KDD 2017), as Ray Tune's
``MedianStoppingRule`` applies it to running trials. It needs no budget and no
rungs, only that trials report comparable values at comparable progress.

The exact rule, at a report of trial ``T`` at progress ``t >= grace_period``:

* the *others* are the trials other than ``T`` (running, completed or stopped)
  whose furthest report has reached ``t`` and that reported at least once in
  ``[grace_period, t]``;
* each other's *running average* is the mean of its losses reported at progress
  in ``[grace_period, t]``;
* with at least ``min_samples_required`` others, ``T`` is stopped when its best
  loss so far (over all its reports) is strictly worse than the median of the
  others' running averages (:func:`statistics.median`: the mean of the middle two
  for an even count). Fewer others, or ``t < grace_period``: it continues.

Losses are the metric as a quantity to minimize (negated for ``max``). Reports
without the metric or ``time_attr`` continue and count for nothing. A trial keeps
one loss per progress value (the latest), so a trial re-run with the same id, or
the replay of :meth:`Scheduler.restore`, never counts a report twice; the state
is rebuilt from the stored reports.

With ``hard_stop=False`` a losing trial is paused instead (its checkpoint is kept
and the runner decides when it goes on, from it, unchanged) and is not judged
again, as in Ray. A trial once told to stop is told so on every later report.
"""

from __future__ import annotations

import bisect
import math
import statistics
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from raysweep._checks import is_int, is_number
from raysweep.sweep.schedulers._base import REL_TOL, Decision, Scheduler, check_option, reached

if TYPE_CHECKING:
    from raysweep.trial import Trial

__all__ = ["MedianStopping"]


class MedianStopping(Scheduler):
    """Stop trials whose best result is worse than the median of the others' averages.

    Args:
        time_attr: what measures progress (see :class:`Scheduler`).
        grace_period: no trial is judged before this progress, and reports before
            it do not count in running averages.
        min_samples_required: how many other trials must have reached a trial's
            progress before it is judged.
        hard_stop: stop losing trials (``True``), or pause them (``False``).
        stop_grace_s: see :class:`Scheduler`.

    Raises:
        SpecError: a negative ``grace_period``, ``min_samples_required < 1``, or a
            ``hard_stop`` that is not a bool.

    Example:
        >>> MedianStopping(grace_period=5, min_samples_required=3).pauses
        False
    """

    name = "median"

    def __init__(
        self,
        *,
        time_attr: str = "step",
        grace_period: float = 1,
        min_samples_required: int = 3,
        hard_stop: bool = True,
        stop_grace_s: float = 30.0,
    ) -> None:
        super().__init__(time_attr=time_attr, stop_grace_s=stop_grace_s)
        check_option(
            self.name,
            "grace_period",
            is_number(grace_period) and grace_period >= 0,
            "a number >= 0",
            grace_period,
        )
        check_option(
            self.name,
            "min_samples_required",
            is_int(min_samples_required) and min_samples_required >= 1,
            "an integer >= 1",
            min_samples_required,
        )
        check_option(
            self.name, "hard_stop", isinstance(hard_stop, bool), "true or false", hard_stop
        )
        self.grace_period = grace_period
        self.min_samples_required = min_samples_required
        self.hard_stop = hard_stop
        self.pauses = not hard_stop
        self._series: dict[int, _Series] = {}
        self._decided: set[int] = set()

    def on_trial_result(self, trial: Trial, report: Mapping[str, Any]) -> Decision:
        """Record the report and apply the rule of the module docstring."""
        progress, loss = self.progress(report), self.value(report)
        if progress is None or loss is None:
            return Decision.CONTINUE
        if trial.trial_id in self._decided:
            return Decision.STOP if self.hard_stop else Decision.CONTINUE
        series = self._series.setdefault(trial.trial_id, _Series())
        series.add(progress, loss)
        if not reached(progress, self.grace_period):
            return Decision.CONTINUE
        averages = [
            average
            for other, reports in self._series.items()
            if other != trial.trial_id
            and reached(reports.furthest, progress)
            and (average := reports.mean(self.grace_period, progress)) is not None
        ]
        if len(averages) < self.min_samples_required:
            return Decision.CONTINUE
        if series.best > statistics.median(averages):
            self._decided.add(trial.trial_id)
            return Decision.STOP if self.hard_stop else Decision.PAUSE
        return Decision.CONTINUE

    def next_decision_at(self, trial: Trial) -> float | None:
        """``grace_period``: no trial is judged before it (0 once decided)."""
        return 0.0 if trial.trial_id in self._decided else float(self.grace_period)


class _Series:
    """One trial's losses by progress, kept sorted with prefix sums, so a running
    average over a range of progress costs two bisections, not a pass over the
    reports: each report is compared with every other trial."""

    __slots__ = ("best", "losses", "progress", "sums")

    def __init__(self) -> None:
        self.progress: list[float] = []
        self.losses: list[float] = []
        self.sums: list[float] = [0.0]
        self.best = math.inf

    @property
    def furthest(self) -> float:
        return self.progress[-1]

    def add(self, progress: float, loss: float) -> None:
        """Record ``loss`` at ``progress``, replacing an earlier one at the same progress."""
        i = bisect.bisect_left(self.progress, progress)
        if i < len(self.progress) and self.progress[i] == progress:
            self.losses[i] = loss
        else:
            self.progress.insert(i, progress)
            self.losses.insert(i, loss)
        del self.sums[i + 1 :]
        for value in self.losses[i:]:
            self.sums.append(self.sums[-1] + value)
        self.best = min(self.losses)

    def mean(self, low: float, high: float) -> float | None:
        """The mean loss at progress in ``[low, high]`` (within float rounding)."""
        a = bisect.bisect_left(self.progress, low - REL_TOL * abs(low))
        b = bisect.bisect_right(self.progress, high + REL_TOL * abs(high))
        return (self.sums[b] - self.sums[a]) / (b - a) if b > a else None
