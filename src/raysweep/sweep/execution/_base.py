"""The backend interface: *where* trials run, separate from what to try and when to stop.

A backend starts trials and reports what happened to them as events; the runner
decides everything else (retries, time-outs, stopping). That keeps the runner's
logic testable in-process with a fake clock, and keeps Ray in one module.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from raysweep.resources import Resources
from raysweep.sweep.trial_files import DEFAULT_KEEP

if TYPE_CHECKING:
    from raysweep.sweep.execution._worker import MetricNames
    from raysweep.sweep.trial_files import TrialFiles

__all__ = [
    "NO_TRIAL_IO",
    "QUEUED_AFTER_S",
    "Backend",
    "Clock",
    "Event",
    "TrialFinished",
    "TrialIO",
    "TrialLost",
    "TrialReported",
    "TrialStarted",
    "WallClock",
    "capacity_note",
]


#: How long a dispatched trial may go without word of its start before a display
#: calls it queued. Word comes a moment after the start (on Ray once the trial has
#: run 0.1 s, for the throughput of short trials), and a trial dispatched a moment
#: ago is more likely starting than waiting; until then it is shown as running.
QUEUED_AFTER_S = 1.0


@dataclass(frozen=True, slots=True)
class TrialIO:
    """What a trial's worker needs besides the objective: where the trial's folder
    lives and whether the driver answers its reports.

    Attributes:
        trials_root: the experiment's ``trials`` folder, reachable from every
            worker (a shared file system on a cluster); ``None``: no trial files,
            so ``save_checkpoint`` says why.
        keep_checkpoints: checkpoints kept per trial.
        log_output: capture each trial's stdout/stderr in its folder.
        answered: a scheduler judges every report, so each ``report()`` waits for
            the driver's decision (and raises ``TrialPruned`` on STOP); without
            one reports are fire and forget.
    """

    trials_root: str | None = None
    keep_checkpoints: int = DEFAULT_KEEP
    log_output: bool = False
    answered: bool = False

    def files(self, trial_id: int) -> TrialFiles | None:
        """The trial's folder, or ``None`` without a ``trials_root``."""
        if self.trials_root is None:
            return None
        from raysweep.sweep.trial_files import TrialFiles

        return TrialFiles(self.trials_root, trial_id, self.keep_checkpoints)


#: No trial folder, fire-and-forget reports: what a backend assumes until told.
NO_TRIAL_IO = TrialIO()


@dataclass(frozen=True, slots=True)
class TrialStarted:
    """A submitted trial got its worker and began to run.

    Until then it waits in the backend's queue (a Ray task pending for free
    CPUs): dispatched, but not running, and its ``timeout_s`` does not run yet.
    ``time`` is when it began, on the worker's clock (the backend's own clock
    for a simulated cluster); ``node`` is where it runs, if known.
    """

    trial_id: int
    time: float
    node: str | None = None


@dataclass(frozen=True, slots=True)
class TrialFinished:
    """The trial's task returned; ``payload`` is :func:`execute_trial`'s dict."""

    trial_id: int
    payload: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class TrialLost:
    """The trial's worker or node died (not the trial's own fault): retryable."""

    trial_id: int
    reason: str


@dataclass(frozen=True, slots=True)
class TrialReported:
    """A running trial called :func:`raysweep.report`."""

    trial_id: int
    report: Mapping[str, Any]


Event = TrialStarted | TrialFinished | TrialLost | TrialReported


class Clock:
    """Source of time for the runner; tests inject a fake one."""

    def now(self) -> float:
        raise NotImplementedError


class WallClock(Clock):
    """``time.time()``."""

    def now(self) -> float:
        return time.time()


class Backend(abc.ABC):
    """Runs trials. ``submit`` and ``wait`` are required; the rest are no-ops."""

    def start(self, notify: Callable[[str], None]) -> None:  # noqa: B027 - optional hook
        """Acquire where trials run (connect to or start a cluster), before
        :meth:`prepare`; say what is happening through ``notify`` (one short line
        each, e.g. "starting Ray (2 CPUs) ..."), which reaches the display."""

    def prepare(  # noqa: B027 - optional hook, a no-op by default
        self,
        objective: Callable[[dict[str, Any]], Any],
        *,
        metric: MetricNames,
        hints: Resources,
        io: TrialIO = NO_TRIAL_IO,
    ) -> None:
        """Receive what every trial of the experiment shares, before the first submit:
        the objective, the objective metric name(s) every trial must return
        (``metric``: one name, or several in order), the resources of a trial, and
        its folder and report channel (``io``)."""

    @abc.abstractmethod
    def submit(self, trial_id: int, config: Mapping[str, Any]) -> None:
        """Hand one trial over to run (returns at once); it may wait for resources.

        Once it runs, :meth:`wait` returns a :class:`TrialStarted` for it, before
        the trial's other events, or together with them at the latest: the runner
        counts ``timeout_s`` from that start.
        """

    @abc.abstractmethod
    def wait(self, timeout: float | None) -> Sequence[Event]:
        """Block until at least one event or ``timeout`` seconds; return all events
        available now (an empty list on time-out)."""

    def cancel(self, trial_id: int) -> None:  # noqa: B027 - optional hook
        """Stop a running trial; no event for it follows."""

    def expect(self, trial_id: int, until: tuple[str, float]) -> None:  # noqa: B027
        """Before :meth:`submit`, when ``io.answered``: the trial's first reports
        below ``until = (time_attr, bound)`` will be answered "continue" (see
        :meth:`answer`), so they need not wait for the driver either."""

    def answer(  # noqa: B027 - optional hook
        self, trial_id: int, decision: str, until: tuple[str, float] | None = None
    ) -> None:
        """The driver's decision on the trial's latest report ("continue", "stop" or
        "pause"), when ``io.answered``: the trial's ``report()`` returns, or raises
        ``TrialPruned`` / ``TrialPaused``; its task then ends with an ``interrupt``
        in its payload. Called once per :class:`TrialReported`, in order.

        ``until`` is ``(time_attr, bound)``: the trial's reports whose ``time_attr``
        is below ``bound`` will be answered "continue", so a backend may let them
        go without waiting for the driver."""

    def clock(self) -> Clock | None:
        """The backend's own time source, or ``None`` for the wall clock.

        A backend that keeps its own time, such as the simulator's virtual clock,
        returns it here, and the runner must read that clock: time-outs, the time
        budget and stored times are then measured in the backend's time.
        """
        return None

    def default_concurrency(self, hints: Resources) -> int:
        """How many trials with ``hints`` run at once (the default ``max_concurrent``)."""
        return 1

    def shutdown(self) -> None:  # noqa: B027 - optional hook
        """Release what :meth:`prepare` acquired."""


def capacity_note(max_concurrent: int, capacity: int) -> str | None:
    """The line that says ``max_concurrent`` trials cannot all run at once, or ``None``.

    A note, not an error: the extra trials wait in the backend's queue (their
    ``timeout_s`` starts only when they run), and an autoscaling cluster may grow
    to run them.

    Example:
        >>> capacity_note(4, 2).split(":")[0]
        'max_concurrent=4 but 2 trials fit at once on the cluster now'
        >>> capacity_note(2, 2) is None
        True
    """
    if max_concurrent <= capacity:
        return None
    fit = f"{capacity} trial fits" if capacity == 1 else f"{capacity} trials fit"
    extra = max_concurrent - capacity
    return (
        f"max_concurrent={max_concurrent} but {fit} at once on the cluster now: the other "
        f"{extra} wait in its queue until resources free up or the cluster grows"
    )
