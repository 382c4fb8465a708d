"""Trial states and the read-only trial record handed to plugins and users."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Trial", "TrialState"]


class TrialState(enum.Enum):
    """Life cycle of one trial.

    PENDING -> RUNNING -> COMPLETED | FAILED | PRUNED. A trial that was running
    when the experiment stopped early is ABANDONED; a trial that was RUNNING when
    the driver crashed stays RUNNING in the store. Both are run again, with the
    same configuration and id, when the experiment is resumed. A scheduler that
    pauses (population-based training) moves a trial RUNNING -> PAUSED -> RUNNING:
    its task ended after a checkpoint, and it goes on from a checkpoint later,
    perhaps with a new configuration; a trial PAUSED at a crash goes on at resume.
    """

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    PRUNED = "PRUNED"
    ABANDONED = "ABANDONED"
    PAUSED = "PAUSED"

    def is_finished(self) -> bool:
        """True for states that a resume keeps as they are."""
        return self in (TrialState.COMPLETED, TrialState.FAILED, TrialState.PRUNED)

    def needs_rerun(self) -> bool:
        """True for trials a resume runs again with their stored configuration."""
        return self in (
            TrialState.PENDING,
            TrialState.RUNNING,
            TrialState.ABANDONED,
            TrialState.PAUSED,
        )


@dataclass(frozen=True, slots=True)
class Trial:
    """One trial as stored: what was tried, what happened, and where.

    Attributes:
        trial_id: 0-based, in the order the searcher proposed it.
        state: see :class:`TrialState`.
        config: the full configuration, fixed values included.
        metrics: final metrics (empty unless COMPLETED, or PRUNED with a last report).
        intermediate: the series reported with :func:`raysweep.report`, each a dict
            holding ``step`` and the metrics of that report.
        error: why the trial FAILED (message and traceback) or was ABANDONED.
        created_at, started_at, ended_at: Unix times (``None`` until they happen).
        queued_at: Unix time the trial was handed to the backend (``None`` until
            then; a store written before raysweep recorded it gives ``started_at``).
        node: the IP address of the node that ran the last attempt.
        attempts: how many times it was started (worker deaths, resumes and pauses
            add one).
        parent_id: the trial whose checkpoint this one last went on from
            (population-based training's exploit), else ``None``.
    """

    trial_id: int
    state: TrialState
    config: Mapping[str, Any]
    metrics: Mapping[str, float] = field(default_factory=dict)
    intermediate: tuple[Mapping[str, Any], ...] = ()
    error: str | None = None
    created_at: float | None = None
    started_at: float | None = None
    ended_at: float | None = None
    node: str | None = None
    attempts: int = 0
    queued_at: float | None = None
    parent_id: int | None = None

    @property
    def last_step(self) -> int | None:
        """The ``step`` of the latest intermediate report, or ``None`` before one."""
        if not self.intermediate:
            return None
        step = self.intermediate[-1].get("step")
        return step if isinstance(step, int) else None

    @property
    def duration_s(self) -> float | None:
        """Seconds from start to end of the last attempt, when both are known."""
        if self.started_at is None or self.ended_at is None:
            return None
        return self.ended_at - self.started_at

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the shape ``raysweep export --format json`` prints)."""
        return {
            "trial_id": self.trial_id,
            "state": self.state.value,
            "config": dict(self.config),
            "metrics": dict(self.metrics),
            "intermediate": [dict(r) for r in self.intermediate],
            "error": self.error,
            "created_at": self.created_at,
            "queued_at": self.queued_at,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "node": self.node,
            "attempts": self.attempts,
            "last_step": self.last_step,
            "parent_id": self.parent_id,
        }
