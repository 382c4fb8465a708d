"""Asynchronous successive halving (ASHA), the variant that stops trials.

The algorithm of Li et al., "A System for Massively Parallel Hyperparameter
Tuning" (MLSys 2020, arXiv:1810.05934), as Ray Tune's ``ASHAScheduler`` (one
bracket) and syne-tune's stopping ASHA run it: trials are judged at *rungs*,
levels of progress spaced by ``reduction_factor``, and one that is not among
the best ``1/reduction_factor`` of the trials judged at a rung before it is
stopped. Nobody waits for a rung to fill, so early trials are judged against
few others: that is the asynchronous trade.

The exact rules, which the tests check on scripted reports:

* **Rungs** are ``grace_period * reduction_factor**k`` for ``k = 0, 1, ...``
  while below ``max_t``. ``max_t`` itself is not a rung: it is the budget of a
  full trial, the top of the ladder, where trials are expected to end by
  themselves. (Ray lists ``max_t`` as a rung but never judges there.)
* **Judging.** A report at progress ``t`` with loss ``L`` is judged at ``r``,
  the highest rung ``<= t``, if the trial has no loss recorded at ``r`` yet;
  ``L`` is recorded there, and the trial is stopped if ``L > cutoff``, where
  ``cutoff`` is the ``1/reduction_factor`` quantile, linearly interpolated
  (numpy's default method: position ``(n - 1) / reduction_factor`` in the
  ascending losses), of the ``n >= 1`` losses recorded at ``r`` before it. This
  is Ray's ``_Bracket.cutoff`` (the ``1 - 1/rf`` percentile of rewards) in
  losses. The first trial at a rung always continues.
* A rung a trial jumped over is left empty for it (Ray fills it in later with a
  longer-trained loss, which flatters the trial).
* Reports at or past ``max_t``, and reports without the metric or ``time_attr``,
  continue and record nothing. (Ray stops a trial at ``max_t``; here a trial
  is expected to end there by itself.)
* A trial once told STOP is told STOP on every later report, so a stop the
  runner lost (a crash before it acted) is repeated when the trial runs again.

State: none beyond the trials. :meth:`Scheduler.restore` replays the stored
reports; a trial records at most one loss per rung (the first), so the replay
rebuilds the rungs exactly and a trial re-run with the same id is never
recorded twice.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from raysweep._checks import is_number
from raysweep.sweep.schedulers._base import Decision, Scheduler, check_option, reached

if TYPE_CHECKING:
    from raysweep.trial import Trial

__all__ = ["ASHA"]


def quantile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile of ``values``, linearly interpolated between the two
    nearest ranks (numpy's default); ``None`` for no values.

    Example:
        >>> quantile([3.0, 5.0, 4.0], 1 / 3)
        3.6666666666666665
    """
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


class Bracket:
    """The rungs of one bracket and the loss each trial recorded at each rung."""

    __slots__ = ("recorded", "rungs")

    def __init__(self, rungs: tuple[float, ...]) -> None:
        self.rungs = rungs
        self.recorded: tuple[dict[int, float], ...] = tuple({} for _ in rungs)

    def highest(self, progress: float) -> int:
        """Index of the highest rung ``progress`` has reached, ``-1`` for none."""
        for index in range(len(self.rungs) - 1, -1, -1):
            if reached(progress, self.rungs[index]):
                return index
        return -1


def rung_levels(
    grace_period: float, max_t: float, reduction_factor: float, first: int = 0
) -> tuple[float, ...]:
    """``grace_period * reduction_factor**k`` for ``k = first, first + 1, ...`` below
    ``max_t`` (``max_t`` itself excluded, within float rounding).

    Example:
        >>> rung_levels(1, 27, 3)
        (1, 3, 9)
    """
    levels: list[float] = []
    k = first
    while not reached(level := grace_period * reduction_factor**k, max_t):
        levels.append(level)
        k += 1
    return tuple(levels)


class ASHA(Scheduler):
    """Asynchronous successive halving: stop trials that fall behind at a rung.

    Args:
        time_attr: what measures progress (see :class:`Scheduler`).
        max_t: the progress of a full trial; the rungs lie below it.
        grace_period: the first rung: no trial is stopped before this progress.
        reduction_factor: rungs are this factor apart, and a trial must be in
            the best ``1/reduction_factor`` at a rung to go on.
        stop_grace_s: see :class:`Scheduler`.

    Raises:
        SpecError: ``max_t > grace_period > 0`` or ``reduction_factor >= 2`` fails.

    Example:
        >>> ASHA(max_t=27, grace_period=1, reduction_factor=3).rungs
        (1, 3, 9)
    """

    name = "asha"

    def __init__(
        self,
        *,
        time_attr: str = "step",
        max_t: float = 100,
        grace_period: float = 1,
        reduction_factor: float = 3,
        stop_grace_s: float = 30.0,
    ) -> None:
        super().__init__(time_attr=time_attr, stop_grace_s=stop_grace_s)
        _check_ladder(self.name, max_t, grace_period, reduction_factor)
        self.max_t = max_t
        self.grace_period = grace_period
        self.reduction_factor = reduction_factor
        self._brackets: tuple[Bracket, ...] = (
            Bracket(rung_levels(grace_period, max_t, reduction_factor)),
        )
        self._stopped: set[int] = set()

    @property
    def rungs(self) -> tuple[float, ...]:
        """The rung levels (of the first bracket), ascending."""
        return self._brackets[0].rungs

    def recorded(self, rung: int, bracket: int = 0) -> dict[int, float]:
        """A copy of the losses recorded at rung index ``rung``: trial id -> loss."""
        return dict(self._brackets[bracket].recorded[rung])

    def bracket_of(self, trial_id: int) -> int:
        """The bracket that judges trial ``trial_id`` (always 0: ASHA has one)."""
        return 0

    def on_trial_result(self, trial: Trial, report: Mapping[str, Any]) -> Decision:
        """Record the trial's loss at a rung it has newly reached and stop it if
        it is not in the top ``1/reduction_factor`` there (module docstring)."""
        progress, loss = self.progress(report), self.value(report)
        if progress is None or loss is None:
            return Decision.CONTINUE
        if trial.trial_id in self._stopped:
            return Decision.STOP
        if reached(progress, self.max_t):
            return Decision.CONTINUE
        bracket = self._brackets[self.bracket_of(trial.trial_id)]
        index = bracket.highest(progress)
        if index < 0 or trial.trial_id in bracket.recorded[index]:
            return Decision.CONTINUE
        recorded = bracket.recorded[index]
        cutoff = quantile(list(recorded.values()), 1 / self.reduction_factor)
        recorded[trial.trial_id] = loss
        if cutoff is not None and loss > cutoff:
            self._stopped.add(trial.trial_id)
            return Decision.STOP
        return Decision.CONTINUE

    def next_decision_at(self, trial: Trial) -> float | None:
        """The lowest rung above every rung the trial is recorded at (a report below
        it records nothing and continues); 0 once stopped; ``inf`` past the top."""
        if trial.trial_id in self._stopped:
            return 0.0
        bracket = self._brackets[self.bracket_of(trial.trial_id)]
        done = [i for i, rung in enumerate(bracket.recorded) if trial.trial_id in rung]
        following = bracket.rungs[max(done) + 1 :] if done else bracket.rungs
        return float(following[0]) if following else math.inf


def _check_ladder(name: str, max_t: Any, grace_period: Any, reduction_factor: Any) -> None:
    """The checks ASHA and HyperBand share, each failing in one line."""
    check_option(
        name,
        "grace_period",
        is_number(grace_period) and grace_period > 0,
        "a positive number",
        grace_period,
    )
    check_option(
        name,
        "max_t",
        is_number(max_t) and not reached(grace_period, max_t),
        f"a number > grace_period={grace_period!r}",
        max_t,
    )
    check_option(
        name,
        "reduction_factor",
        is_number(reduction_factor) and reduction_factor >= 2,
        "a number >= 2",
        reduction_factor,
    )
