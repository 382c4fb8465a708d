"""The outcome of a sweep: every trial, the best one (or the Pareto front of several
metrics), and a DataFrame view."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from raysweep.objectives import Objectives, OptimizesObjectives
from raysweep.trial import Trial, TrialState

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Result", "pareto_ids", "trials_dataframe"]


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
        """The COMPLETED trial best on the primary metric, or ``None`` if none
        completed. With several metrics that is the first metric (or ``stop.metric``);
        :meth:`pareto_front` is the answer that weighs them all."""
        return self.objectives.best(self.trials)

    def pareto_front(self) -> list[Trial]:
        """The COMPLETED trials no other trial beats on every metric, by id (with one
        metric: the trials sharing the best value).

        Example:
            >>> # for t in result.pareto_front(): print(t.trial_id, t.metrics)
        """
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
        """One row per trial: id, state, ``config/<name>``, ``metrics/<name>``, times,
        node, and with several metrics ``pareto`` (on the Pareto front or not).

        Example:
            >>> # df = result.trials_dataframe(); df.sort_values("metrics/loss").head()
        """
        return trials_dataframe(self.trials, self.objectives)


def trials_dataframe(trials: Sequence[Trial], objectives: Objectives | None = None) -> pd.DataFrame:
    """The flat table of ``trials`` shared by :class:`Result` and ``raysweep export``;
    with several ``objectives`` a ``pareto`` column (True/False) marks the front."""
    import pandas as pd

    front = pareto_ids(trials, objectives)
    rows = []
    for t in trials:
        row: dict[str, object] = {
            "trial_id": t.trial_id,
            "state": t.state.value,
            "attempts": t.attempts,
            "last_step": t.last_step,
            "parent_id": t.parent_id,
            "node": t.node,
            "queued_at": t.queued_at,
            "started_at": t.started_at,
            "ended_at": t.ended_at,
            "duration_s": t.duration_s,
            "error": t.error.splitlines()[-1] if t.error else None,
        }
        if front is not None:
            row["pareto"] = t.trial_id in front
        row.update({f"config/{k}": v for k, v in t.config.items()})
        row.update({f"metrics/{k}": v for k, v in t.metrics.items()})
        rows.append(row)
    return pd.DataFrame(rows)


def pareto_ids(trials: Sequence[Trial], objectives: Objectives | None) -> set[int] | None:
    """Ids of the trials on the Pareto front of a multi-objective experiment;
    ``None`` with one metric (or none given), where "best" says it all."""
    if objectives is None or not objectives.multi:
        return None
    return {t.trial_id for t in objectives.pareto_front(trials)}
