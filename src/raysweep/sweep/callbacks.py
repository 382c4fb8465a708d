"""Callbacks: observe an experiment without being able to steer it.

Every hook is a no-op by default, so a callback overrides only what it needs.
Hooks receive frozen records; a callback cannot change what the runner does
(that is the searcher's and the stop conditions' job). An exception raised in a
callback propagates: a broken progress display should be noticed, not hidden.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from raysweep.objectives import Objectives, OptimizesObjectives
from raysweep.trial import Trial, TrialState

if TYPE_CHECKING:
    from raysweep.sweep.result import Result

__all__ = ["Callback", "ExperimentInfo"]


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
    """

    name: str
    directory: str
    objectives: Objectives
    num_trials: int | None
    counts: Mapping[TrialState, int] = field(default_factory=dict)
    best: Trial | None = None
    resumed: bool = False
    max_concurrent: int = 1


class Callback:
    """Base class for experiment callbacks; override the hooks you need."""

    def on_note(self, text: str) -> None:
        """A line about what raysweep is doing or noticed (connecting to Ray, a
        cluster smaller than ``max_concurrent``); it may come before
        :meth:`on_experiment_start`."""

    def on_experiment_start(self, info: ExperimentInfo) -> None:
        """The experiment is set up; no new trial has started yet."""

    def on_trial_start(self, trial: Trial) -> None:
        """A trial was dispatched (state RUNNING, committed)."""

    def on_trial_report(self, trial: Trial, report: Mapping[str, Any]) -> None:
        """A running trial called :func:`raysweep.report`."""

    def on_trial_complete(self, trial: Trial) -> None:
        """A trial COMPLETED (committed)."""

    def on_trial_error(self, trial: Trial) -> None:
        """A trial FAILED (committed); ``trial.error`` says why."""

    def on_experiment_end(self, result: Result) -> None:
        """The experiment stopped: finished, a stop condition, or too many failures."""
