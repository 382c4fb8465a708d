"""The scheduler plugin interface: when to stop (or pause) a running trial.

A scheduler judges the intermediate results of running trials, one report at a
time, and answers with a :class:`Decision`. It never runs or cancels anything:
the runner acts on the decision (tells the trial through the backend, records
PRUNED or PAUSED) and a searcher decides what to try next. That keeps the
algorithms pure Python, testable on scripted report sequences without Ray or a
clock. One method is required, :meth:`Scheduler.on_trial_result`; every other
hook is a no-op.

The report a scheduler sees is a dict holding ``step`` (an int), ``time`` (Unix
seconds) and the metrics of one :func:`raysweep.report` call; the runner adds
``time_total_s`` (seconds since the trial's first start). ``time_attr`` names
which of them measures progress.
"""

from __future__ import annotations

import enum
import heapq
import math
import numbers
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from raysweep.objectives import Objectives, OptimizesObjectives

if TYPE_CHECKING:
    from raysweep.sweep.space import SearchSpace
    from raysweep.trial import Trial

__all__ = ["Decision", "Exploit", "Scheduler", "SchedulerContext"]


class Decision(enum.Enum):
    """What the runner does with a trial after one of its reports."""

    #: Let it run on.
    CONTINUE = "continue"
    #: Prune it: its next ``raysweep.report()`` raises ``raysweep.TrialPruned`` and it
    #: ends PRUNED with its last reported metrics.
    STOP = "stop"
    #: Pause it: its next ``raysweep.report()`` raises ``raysweep.TrialPaused``, its task
    #: ends (it should have saved a checkpoint), and the scheduler says through
    #: :meth:`Scheduler.on_trial_paused` how it goes on.
    PAUSE = "pause"


@dataclass(frozen=True, slots=True)
class Exploit:
    """How a paused trial goes on: from ``donor``'s latest checkpoint (``None``: its
    own), with ``config`` (the full configuration it runs with from now on)."""

    config: Mapping[str, Any]
    donor: int | None = None


@dataclass(frozen=True, slots=True)
class SchedulerContext(OptimizesObjectives):
    """Read-only facts a scheduler is set up with.

    Attributes:
        objectives: what is optimized; schedulers judge the primary metric
            (``metric``, ``mode``).
        space: the search space (PBT resamples from it).
        seed: the experiment seed (``None`` = not reproducible).
        num_trials: the planned number of trials, when known.
        max_concurrent: trials in flight at most.
    """

    objectives: Objectives
    space: SearchSpace
    seed: int | None = None
    num_trials: int | None = None
    max_concurrent: int | None = None


class Scheduler:
    """Base class of all schedulers; see the module docstring.

    Args:
        time_attr: what measures a trial's progress: ``"step"`` (the ``step`` of
            each report, the default), ``"time_total_s"`` (seconds since the
            trial first started) or the name of any reported metric (``"epoch"``).
        stop_grace_s: how long a trial told to stop or pause may take to end by
            itself (its next ``report()`` raises) before its task is cancelled.
    """

    #: The name under which the CLI and YAML know this scheduler.
    name: str = ""
    #: Whether it may answer PAUSE (the runner then keeps paused trials to resume).
    pauses: bool = False

    def __init__(self, *, time_attr: str = "step", stop_grace_s: float = 30.0) -> None:
        if not isinstance(time_attr, str) or not time_attr:
            from raysweep.errors import SpecError

            raise SpecError(
                f"{self.name or type(self).__name__}: time_attr must be 'step', "
                f"'time_total_s' or a reported metric name, got {time_attr!r}"
            )
        grace = _number(stop_grace_s)
        check_option(
            self.name or type(self).__name__,
            "stop_grace_s",
            grace is not None and grace >= 0,
            "a number of seconds >= 0",
            stop_grace_s,
        )
        self.time_attr = time_attr
        self.stop_grace_s = float(stop_grace_s)

    def setup(self, ctx: SchedulerContext) -> None:
        """Receive the objectives, space and seed before the first report."""
        self.ctx = ctx

    # -- reading a report ---------------------------------------------------------------
    def progress(self, report: Mapping[str, Any]) -> float | None:
        """The report's ``time_attr`` as a float, or ``None`` when it lacks it."""
        return _number(report.get(self.time_attr))

    def value(self, report: Mapping[str, Any]) -> float | None:
        """The report's primary metric turned into a loss (negated for ``max``), or
        ``None`` when it lacks it: schedulers compare losses only."""
        value = _number(report.get(self.ctx.metric))
        if value is None:
            return None
        return value if self.ctx.mode == "min" else -value

    # -- hooks --------------------------------------------------------------------------
    def on_trial_add(self, trial: Trial) -> None:
        """``trial`` was dispatched (a new one, another attempt, or a resumed one)."""

    def on_trial_result(self, trial: Trial, report: Mapping[str, Any]) -> Decision:
        """Judge one report of a running trial; ``trial.intermediate`` already holds it."""
        raise NotImplementedError

    def on_trial_complete(self, trial: Trial) -> None:
        """``trial`` ended by itself: COMPLETED with its final metrics."""

    def on_trial_remove(self, trial: Trial) -> None:
        """``trial`` ended otherwise: PRUNED, FAILED, or ABANDONED by a stop."""

    def next_decision_at(self, trial: Trial) -> float | None:
        """A bound on the trial's progress below which every report is answered
        CONTINUE, as this scheduler's state stands; ``None``: none (every report
        may be judged otherwise).

        The runner sends it with each answer, so the trial's reports below it do
        not wait for the driver (on Ray a waited-for report costs a few
        milliseconds of the trial's time). It must never be too high: a report
        at or above it is judged and waited for as usual. The default gives no
        bound.
        """
        return None

    def on_trial_paused(self, trial: Trial) -> Exploit | None:
        """``trial`` paused as this scheduler asked: how it goes on, or ``None`` to
        resume it from its own checkpoint with its config unchanged."""
        return None

    def restore(self, trials: Sequence[Trial]) -> None:
        """Rebuild the scheduler's view after a resume from the stored trials.

        The default replays every stored report (decisions ignored) in the order
        the reports were made, by their ``time``, and tells each finished trial as
        complete or removed right after its last report. Replaying in time order,
        not trial by trial, lets a scheduler that compares trials (a rung cutoff, a
        population ranking) see at each report what it saw when the report first
        came. A trial's own reports always keep their stored order; a report
        without a ``time`` keeps its place after the one before it; ties go to the
        lower trial id.
        """
        from raysweep.trial import TrialState

        events = heapq.merge(*(_events(trial) for trial in trials), key=lambda e: e[0])
        for _, trial, report in events:
            if report is not None:
                self.on_trial_result(trial, report)
            elif trial.state is TrialState.COMPLETED:
                self.on_trial_complete(trial)
            else:
                self.on_trial_remove(trial)

    def state_dict(self) -> dict[str, Any]:
        """JSON-serializable state a resume cannot rebuild from the trials."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (before :meth:`restore`)."""


def check_option(scheduler: str, option: str, ok: bool, expected: str, value: Any) -> None:
    """Raise the one-line :class:`SpecError` of a bad constructor argument unless ``ok``:
    ``scheduler 'asha': grace_period must be a positive number, got 0``."""
    if not ok:
        from raysweep._checks import describe
        from raysweep.errors import SpecError

        raise SpecError(
            f"scheduler {scheduler!r}: {option} must be {expected}, got {describe(value)}"
        )


#: Relative slack when comparing progress with a rung: ``0.1 * 3`` is a rung at
#: 0.30000000000000004 that a report of 0.3 must reach.
REL_TOL = 1e-9


def reached(progress: float, level: float) -> bool:
    """Whether ``progress`` has reached ``level``, forgiving float rounding."""
    return progress >= level - REL_TOL * abs(level)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _events(trial: Trial) -> Iterator[tuple[float, Trial, Mapping[str, Any] | None]]:
    """``trial``'s stored reports as ``(time, trial, report)``, then ``(time, trial,
    None)`` if it is finished: the replay order of :meth:`Scheduler.restore`."""
    last = -math.inf
    for report in trial.intermediate:
        at = _number(report.get("time"))
        last = at if at is not None else last
        yield last, trial, report
    if trial.state.is_finished():
        ended = _number(trial.ended_at)
        yield (ended if ended is not None and ended >= last else last), trial, None
