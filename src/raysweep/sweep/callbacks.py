"""Callbacks: observe an experiment without being able to steer it.

Every hook is a no-op by default, so a callback overrides only what it needs.
Hooks receive frozen records; a callback cannot change what the runner does
(that is the searcher's and the stop conditions' job).

Callbacks observe, so they cannot wreck a run: an exception raised in one is
logged with its traceback (once per callback and hook; repeats are counted), the
run goes on, and the count is stored as a ``callback_errors`` event when the
run ends (:class:`CallbackGuard`). To end a run early use ``stop=`` or
``max_failures``; Ctrl-C (``KeyboardInterrupt``) still stops it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from raysweep.objectives import Objectives, OptimizesObjectives
from raysweep.trial import Trial, TrialState

if TYPE_CHECKING:
    from raysweep.sweep.result import Result

__all__ = ["Callback", "CallbackGuard", "ExperimentInfo"]

_log = logging.getLogger("raysweep.callbacks")


@dataclass(frozen=True, slots=True)
class ExperimentInfo(OptimizesObjectives):
    """What a callback learns when an experiment starts (or resumes).

    Attributes:
        name: experiment name.
        directory: folder holding ``experiment.db``.
        objectives: what is optimized (``metric`` and ``mode`` name its primary metric).
        num_trials: the planned total (``None`` if only a stop condition ends it).
        counts: trials already stored, per state (non-empty on resume).
        best: best completed trial so far (on resume), else ``None``.
        resumed: whether this run continues a stored experiment.
        max_concurrent: trials in flight at most.
        front: with several metrics, the Pareto front of the stored trials (on
            resume), by id; empty otherwise.
    """

    name: str
    directory: str
    objectives: Objectives
    num_trials: int | None
    counts: Mapping[TrialState, int] = field(default_factory=dict)
    best: Trial | None = None
    resumed: bool = False
    max_concurrent: int = 1
    front: tuple[Trial, ...] = ()


class Callback:
    """Base class for experiment callbacks; override the hooks you need."""

    def on_note(self, text: str) -> None:
        """A line about what raysweep is doing or noticed (connecting to Ray, a
        cluster smaller than ``max_concurrent``); it may come before
        :meth:`on_experiment_start`."""

    def on_experiment_start(self, info: ExperimentInfo) -> None:
        """The experiment is set up; no new trial has started yet."""

    def on_trial_start(self, trial: Trial) -> None:
        """A trial was dispatched (state RUNNING, committed). It may wait in the
        cluster's queue for resources before :meth:`on_trial_running`; until then
        its ``started_at`` is ``None``."""

    def on_trial_running(self, trial: Trial) -> None:
        """A dispatched trial got its worker and began to run (``started_at`` and
        ``node`` set, committed); it comes before the trial's end, except for a
        trial cancelled while it still waited (a time budget, a stop)."""

    def on_trial_report(self, trial: Trial, report: Mapping[str, Any]) -> None:
        """A running trial called :func:`raysweep.report`."""

    def on_trial_complete(self, trial: Trial) -> None:
        """A trial COMPLETED (committed)."""

    def on_trial_error(self, trial: Trial) -> None:
        """A trial FAILED (committed); ``trial.error`` says why."""

    def on_experiment_end(self, result: Result) -> None:
        """The experiment stopped: finished, a stop condition, or too many failures."""

    def on_experiment_closed(self, error: BaseException | None) -> None:
        """Always the last call, however the run ended: after
        :meth:`on_experiment_end` when it ended normally, or with the exception
        that ended it (Ctrl-C's ``KeyboardInterrupt``, a lost store, an infeasible
        space...), which goes on to the caller. Release what the callback holds
        here (files, threads, a tracking run)."""


class CallbackGuard(Callback):
    """All of an experiment's callbacks behind one, each call isolated.

    The runner talks to this one callback; an exception in a user's callback is
    logged (the first time for each callback and hook, with its traceback),
    counted in :attr:`errors`, and does not reach the runner, so nothing is left
    RUNNING because a progress bar or a tracking server failed.
    """

    def __init__(self, callbacks: Sequence[Callback]) -> None:
        self.callbacks = tuple(callbacks)
        #: ``"Class.hook" -> [count, first error line]`` for the hooks that raised.
        self.errors: dict[str, list[Any]] = {}

    def _call(self, hook: str, *args: Any) -> None:
        for cb in self.callbacks:
            try:
                getattr(cb, hook)(*args)
            except Exception as exc:
                where = f"{type(cb).__name__}.{hook}"
                first = f"{type(exc).__name__}: {exc}".splitlines()[0]
                seen = self.errors.setdefault(where, [0, first])
                seen[0] += 1
                if seen[0] == 1:
                    _log.error(
                        "callback %s raised %s; it is ignored and the run goes on",
                        where,
                        first,
                        exc_info=True,
                    )

    def on_note(self, text: str) -> None:
        self._call("on_note", text)

    def on_experiment_start(self, info: ExperimentInfo) -> None:
        self._call("on_experiment_start", info)

    def on_trial_start(self, trial: Trial) -> None:
        self._call("on_trial_start", trial)

    def on_trial_running(self, trial: Trial) -> None:
        self._call("on_trial_running", trial)

    def on_trial_report(self, trial: Trial, report: Mapping[str, Any]) -> None:
        self._call("on_trial_report", trial, report)

    def on_trial_complete(self, trial: Trial) -> None:
        self._call("on_trial_complete", trial)

    def on_trial_error(self, trial: Trial) -> None:
        self._call("on_trial_error", trial)

    def on_experiment_end(self, result: Result) -> None:
        self._call("on_experiment_end", result)

    def on_experiment_closed(self, error: BaseException | None) -> None:
        self._call("on_experiment_closed", error)

    def summary(self) -> dict[str, Any]:
        """The errors as stored in the ``callback_errors`` event."""
        return {where: {"count": n, "first": first} for where, (n, first) in self.errors.items()}
