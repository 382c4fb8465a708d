"""FIFO: the scheduler that never intervenes.

Every trial runs until it returns (or the experiment stops). It is the default,
and the baseline the early-stopping schedulers are measured against.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from raysweep.sweep.schedulers._base import Decision, Scheduler

if TYPE_CHECKING:
    from raysweep.trial import Trial

__all__ = ["FIFO"]


class FIFO(Scheduler):
    """Let every trial run to its end.

    Example:
        >>> FIFO().name
        'fifo'
    """

    name = "fifo"

    def __init__(self, *, time_attr: str = "step", stop_grace_s: float = 30.0) -> None:
        super().__init__(time_attr=time_attr, stop_grace_s=stop_grace_s)

    def next_decision_at(self, trial: Trial) -> float | None:
        """Never: every report continues."""
        return math.inf

    def on_trial_result(self, trial: Trial, report: Mapping[str, Any]) -> Decision:
        """Always :attr:`Decision.CONTINUE`."""
        return Decision.CONTINUE
