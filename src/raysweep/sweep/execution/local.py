"""An in-process backend: trials run one at a time in the driver, no Ray.

For unit tests of the runner and for debugging an objective with a debugger.
Submitted trials run lazily, one per :meth:`InProcessBackend.wait`, so the runner
sees the same submit/wait rhythm as on Ray: the others wait in a queue, and each
says when it starts (:class:`TrialStarted`). An optional ``duration`` function
advances a fake clock per trial, so time-outs and time budgets are tested
faster than real time.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from raysweep.resources import Resources
from raysweep.sweep.execution._base import (
    NO_TRIAL_IO,
    Backend,
    Clock,
    Event,
    TrialFinished,
    TrialIO,
    TrialReported,
    TrialStarted,
)
from raysweep.sweep.execution._worker import MetricNames, execute_trial

__all__ = ["FakeClock", "InProcessBackend"]


class FakeClock(Clock):
    """A clock that only moves when told to."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.time = start

    def now(self) -> float:
        return self.time

    def advance(self, seconds: float) -> None:
        self.time += seconds


class InProcessBackend(Backend):
    """Runs each submitted trial synchronously inside :meth:`wait`.

    Args:
        concurrency: what :meth:`default_concurrency` answers.
        clock: a :class:`FakeClock` to advance by ``duration(config)`` per trial.
        duration: simulated seconds a trial takes (only with a fake clock).
    """

    def __init__(
        self,
        concurrency: int = 1,
        clock: FakeClock | None = None,
        duration: Callable[[Mapping[str, Any]], float] | None = None,
    ) -> None:
        self._queue: deque[tuple[int, Mapping[str, Any]]] = deque()
        self._objective: Callable[[dict[str, Any]], Any] | None = None
        self._metric: MetricNames = "loss"
        self._concurrency = concurrency
        self._clock = clock
        self._duration = duration
        self._progress = 0.0  # simulated seconds the first queued trial has run so far
        self._begun: int | None = None  # the first queued trial, once its start was told
        self.cancelled: list[int] = []
        self.submitted: list[int] = []
        self._io = TrialIO()

    def prepare(
        self,
        objective: Callable[[dict[str, Any]], Any],
        *,
        metric: MetricNames,
        hints: Resources,
        io: TrialIO = NO_TRIAL_IO,
    ) -> None:
        """A trial runs whole inside :meth:`wait`, so a scheduler's decisions
        (:meth:`Backend.answer`) come after it ended and cannot stop it early here;
        checkpoints and trial folders work as on Ray."""
        self._objective = objective
        self._metric = metric
        self._io = io

    def submit(self, trial_id: int, config: Mapping[str, Any]) -> None:
        self.submitted.append(trial_id)
        self._queue.append((trial_id, config))

    def wait(self, timeout: float | None) -> Sequence[Event]:
        if not self._queue:
            if self._clock is not None and timeout is not None:
                self._clock.advance(timeout)
            return []
        trial_id, config = self._queue[0]
        events: list[Event] = []
        if self._begun != trial_id:
            self._begun = trial_id
            now = self._clock.now() if self._clock is not None else time.time()
            events.append(TrialStarted(trial_id, now))
            if self._clock is not None and self._duration is not None:
                return events  # its time passes from here: the runner learns of it first
        if self._clock is not None and self._duration is not None:
            # A wait shorter than the trial (the next deadline or heartbeat comes
            # first) runs part of it; the next wait goes on from there.
            needed = self._duration(config) - self._progress
            if timeout is not None and needed > timeout:
                self._clock.advance(timeout)
                self._progress += timeout
                return []
            self._clock.advance(max(0.0, needed))
        self._progress = 0.0
        self._begun = None
        self._queue.popleft()
        if self._objective is None:
            raise RuntimeError("InProcessBackend.prepare() was not called")
        payload = execute_trial(
            self._objective,
            trial_id,
            config,
            self._metric,
            sink=lambda tid, rep: events.append(TrialReported(tid, rep)),
            files=self._io.files(trial_id),
            log_output=self._io.log_output,
        )
        return [*events, TrialFinished(trial_id, payload)]

    def cancel(self, trial_id: int) -> None:
        self.cancelled.append(trial_id)
        if self._queue and self._queue[0][0] == trial_id:
            self._progress = 0.0
            self._begun = None
        self._queue = deque(item for item in self._queue if item[0] != trial_id)

    def default_concurrency(self, hints: Resources) -> int:
        return self._concurrency
