"""The outcome of a sweep: every trial, the best one, and a DataFrame view."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from raysweep.objectives import Objectives, OptimizesObjectives
from raysweep.trial import Trial, TrialState

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Result", "trials_dataframe"]


@dataclass(frozen=True, slots=True)
class Result(OptimizesObjectives):
    """What :func:`raysweep.run` returns.

    Attributes:
        name: experiment name.
        directory: the folder holding ``experiment.db``.
        objectives: what was optimized (``metric`` and ``mode`` name its primary metric).
        trials: every trial, by id.
        stop_reason: why the run ended ("num_trials reached", a stop condition, ...).
    """

    name: str
    directory: Path
    objectives: Objectives
    trials: tuple[Trial, ...]
    stop_reason: str

    @property
    def best(self) -> Trial | None:
        """The best COMPLETED trial, or ``None`` if none completed."""
        return self.objectives.best(self.trials)

    def pareto_front(self) -> list[Trial]:
        """The COMPLETED trials no other trial beats on every metric (with one
        metric: the trials sharing the best value)."""
        return self.objectives.pareto_front(self.trials)

    def get_trial(self, trial_id: int) -> Trial:
        """The trial with ``trial_id``; ``KeyError`` if there is none."""
        for trial in self.trials:
            if trial.trial_id == trial_id:
                return trial
        raise KeyError(f"no trial with id {trial_id} (ids 0..{len(self.trials) - 1})")

    def count(self, state: TrialState) -> int:
        """How many trials are in ``state``."""
        return sum(1 for t in self.trials if t.state is state)

    def trials_dataframe(self) -> pd.DataFrame:
        """One row per trial: id, state, ``config/<name>``, ``metrics/<name>``, times, node.

        Example:
            >>> # df = result.trials_dataframe(); df.sort_values("metrics/loss").head()
        """
        return trials_dataframe(self.trials)


def trials_dataframe(trials: Sequence[Trial]) -> pd.DataFrame:
    """The flat table of ``trials`` shared by :class:`Result` and ``raysweep export``."""
    import pandas as pd

    rows = []
    for t in trials:
        row: dict[str, object] = {
            "trial_id": t.trial_id,
            "state": t.state.value,
            "attempts": t.attempts,
            "node": t.node,
            "queued_at": t.queued_at,
            "started_at": t.started_at,
            "ended_at": t.ended_at,
            "duration_s": t.duration_s,
            "error": t.error.splitlines()[-1] if t.error else None,
        }
        row.update({f"config/{k}": v for k, v in t.config.items()})
        row.update({f"metrics/{k}": v for k, v in t.metrics.items()})
        rows.append(row)
    return pd.DataFrame(rows)
