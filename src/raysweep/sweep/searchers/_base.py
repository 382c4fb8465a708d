"""The searcher plugin interface: what to try next.

A searcher proposes configurations; it never runs them and never decides when to
stop (that is the runner's and the stop conditions' work). One method is
required, :meth:`Searcher.suggest`; every hook has a no-op default.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from raysweep.objectives import Objectives, OptimizesObjectives

if TYPE_CHECKING:
    from raysweep.sweep.space import SearchSpace
    from raysweep.sweep.space.constraints import ConstraintSet
    from raysweep.trial import Trial

__all__ = ["SearchContext", "Searcher"]


@dataclass(frozen=True, slots=True)
class SearchContext(OptimizesObjectives):
    """Read-only facts a searcher is set up with before its first suggestion.

    Attributes:
        space: the search space.
        constraints: the compiled constraints; a searcher may use them to propose
            only feasible points (the runner rejects infeasible ones anyway).
        objectives: what is optimized; ``metric`` and ``mode`` name its primary metric.
        seed: the experiment seed (``None`` = not reproducible).
        num_trials: the planned number of trials, when known.
        max_concurrent: trials in flight at most, when the user set it.
    """

    space: SearchSpace
    constraints: ConstraintSet
    objectives: Objectives
    seed: int | None
    num_trials: int | None = None
    max_concurrent: int | None = None


class Searcher(abc.ABC):
    """Base class of all searchers.

    Life cycle: ``setup(ctx)`` once; on resume ``load_state_dict(state)`` then
    ``restore(trials)``; then ``suggest`` / ``on_trial_complete`` /
    ``on_trial_error`` as trials are proposed and finish. ``state_dict()`` is
    stored with every new trial, in the same transaction, so a resumed searcher
    continues its sequence exactly where the crashed one stopped.
    """

    #: The name under which the CLI and YAML know this searcher.
    name: str = ""
    #: Whether it optimizes several metrics at once (a Pareto front); a searcher
    #: without it given two metrics is refused at start.
    multi_objective: ClassVar[bool] = False
    #: Whether it proposes configurations of conditional spaces (parameters with
    #: ``when``) correctly; a searcher without it is refused such a space at start.
    conditional: ClassVar[bool] = False

    def setup(self, ctx: SearchContext) -> None:
        """Receive the space, constraints and objective before the first suggestion."""
        self.ctx = ctx

    @abc.abstractmethod
    def suggest(self, trial_id: int) -> dict[str, Any] | None:
        """Propose the full configuration for ``trial_id``, or ``None`` when the
        searcher has nothing more to propose (an exhausted grid)."""

    def on_trial_start(self, trial: Trial) -> None:  # noqa: B027 - optional hook, no-op by default
        """``trial`` was dispatched and is now pending: a new suggestion, another
        attempt of a lost one, or (on resume) one that was running at the crash.

        Called for every dispatch, so it must be idempotent. Model-based searchers
        count pending trials here so that parallel suggestions differ.
        """

    def on_trial_complete(self, trial: Trial) -> None:  # noqa: B027 - optional hook, no-op by default
        """A trial COMPLETED; ``trial.metrics[ctx.metric]`` is a finite float."""

    def on_trial_error(self, trial: Trial) -> None:  # noqa: B027 - optional hook, no-op by default
        """A trial FAILED; its result is never told as a value."""

    def on_trial_result(self, trial: Trial, report: Mapping[str, Any]) -> None:  # noqa: B027 - optional hook, no-op by default
        """A running trial reported intermediate metrics (``report`` holds ``step``).

        Called only when a scheduler judges reports (any scheduler but ``fifo``):
        a searcher that learns from partial results (BOHB-style, Optuna's
        intermediate values) records them here.
        """

    def on_trial_pruned(self, trial: Trial) -> None:
        """A scheduler stopped ``trial`` early (PRUNED); ``trial.intermediate`` holds
        what it reported. The default treats it as failed (never a value);
        library searchers tell it the way their library expects."""
        self.on_trial_error(trial)

    def on_rejected(self, config: Mapping[str, Any]) -> None:  # noqa: B027 - optional hook, no-op by default
        """The runner rejected ``config`` because it violates a constraint."""

    def summary(self) -> str | None:
        """One line on a choice this searcher made at setup (``auto`` says which
        searcher it took and why), stored with the experiment and shown by
        ``raysweep status``; ``None`` when there is nothing to say."""
        return None

    def state_dict(self) -> dict[str, Any]:
        """JSON-serializable state needed to continue the sequence after a resume."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:  # noqa: B027 - optional hook, no-op by default
        """Restore what :meth:`state_dict` returned."""

    def restore(self, trials: Sequence[Trial]) -> None:
        """Replay stored trials after a resume, in id order.

        The default tells every trial through the ordinary hooks, so a
        model-based searcher rebuilds its model from the history: completed
        trials with their values, failed and pruned ones as failed, and those the
        resume runs again (running at the crash, abandoned, pending) as pending.
        """
        from raysweep.trial import TrialState

        for trial in trials:
            if trial.state is TrialState.COMPLETED:
                self.on_trial_complete(trial)
            elif trial.state is TrialState.PRUNED:
                self.on_trial_pruned(trial)
            elif trial.state is TrialState.FAILED:
                self.on_trial_error(trial)
            elif trial.state.needs_rerun():
                self.on_trial_start(trial)
