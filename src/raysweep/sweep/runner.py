"""The parallel loop: N asks in flight, one tell per finished trial.

The runner joins a :class:`~raysweep.sweep.study.Study` (what to try), a
:class:`~raysweep.sweep.execution.Backend` (where it runs) and the stop conditions
(when to end). It sleeps only inside ``backend.wait``, which returns on the
first event or at the next deadline (a trial time-out or the time budget).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from raysweep.errors import TooManyFailuresError
from raysweep.sweep.callbacks import Callback
from raysweep.sweep.execution import Backend, Clock, TrialFinished, TrialLost, TrialReported
from raysweep.sweep.stopping import Stop
from raysweep.sweep.study import Study
from raysweep.trial import Trial, TrialState

__all__ = ["Runner", "RunnerOptions"]


@dataclass(frozen=True, slots=True)
class RunnerOptions:
    """How the loop behaves; validated by :func:`raysweep.run`."""

    max_concurrent: int
    timeout_s: float | None = None
    max_retries: int = 0
    max_failures: int | None = None
    stop: Stop = field(default_factory=Stop)


class Runner:
    """Drives one experiment to its end; see :meth:`run`."""

    def __init__(
        self,
        study: Study,
        backend: Backend,
        clock: Clock,
        options: RunnerOptions,
        callbacks: Sequence[Callback] = (),
    ) -> None:
        self.study = study
        self.backend = backend
        self.clock = clock
        self.options = options
        self.callbacks = list(callbacks)
        self._running: dict[int, float] = {}  # trial id -> start time (for time-outs)
        self._requeue: list[int] = study.to_rerun()
        self._started = clock.now()

    def run(self) -> str:
        """Run until ``num_trials`` are done, the searcher is exhausted or a stop
        condition holds; return why it stopped.

        Each iteration makes ONE commit: the trials that just finished and the
        trials about to start. Only then are new tasks submitted and callbacks
        told, so nothing is ever acted on that the store does not yet hold.

        Raises:
            TooManyFailuresError: more trials failed than ``max_failures``.
        """
        study = self.study
        finished: list[Trial] = []
        try:
            while True:
                for trial in finished:
                    self._tell_searcher(trial)
                self._check_failures()
                reason = self._stop_reason()
                started = [] if reason else self._stage_starts()
                study.flush()
                self._dispatch(started)
                self._notify(finished)
                if reason is not None:
                    self._abandon_running(f"experiment stopped: {reason}")
                    return reason
                if not self._running:
                    return (
                        "num_trials reached"
                        if study.num_trials is not None and len(study.trials) >= study.num_trials
                        else "searcher exhausted"
                    )
                events = self.backend.wait(self._wait_timeout())
                finished = self._handle(events) + self._expire()
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt | TooManyFailuresError):
                self._abandon_running(f"experiment stopped: {type(exc).__name__}")
            raise

    # -- one loop iteration -----------------------------------------------------
    def _stage_starts(self) -> list[Trial]:
        """Stage trials until ``max_concurrent`` are in flight: stored ones that need
        another run first (resume, lost workers), then new ones from the searcher."""
        now = self.clock.now()
        started: list[Trial] = []
        while len(self._running) + len(started) < self.options.max_concurrent:
            if self._requeue:
                started.append(self.study.restart(self._requeue.pop(0), now))
            elif self.study.can_ask():
                trial = self.study.ask(now)
                if trial is None:
                    break
                started.append(trial)
            else:
                break
        return started

    def _dispatch(self, started: list[Trial]) -> None:
        for trial in started:
            self._running[trial.trial_id] = trial.started_at or self.clock.now()
            self.backend.submit(trial.trial_id, trial.config)
        for trial in started:
            for cb in self.callbacks:
                cb.on_trial_start(trial)

    def _wait_timeout(self) -> float | None:
        deadlines = []
        if self.options.timeout_s is not None and self._running:
            deadlines.append(min(self._running.values()) + self.options.timeout_s)
        if self.options.stop.time_budget_s is not None:
            deadlines.append(self._started + self.options.stop.time_budget_s)
        if not deadlines:
            return None
        return max(0.0, min(deadlines) - self.clock.now())

    def _handle(self, events: Sequence[object]) -> list[Trial]:
        now = self.clock.now()
        finished: list[Trial] = []
        for event in events:
            if isinstance(event, TrialReported):
                trial = self.study.report(event.trial_id, event.report)
                if trial is not None:
                    for cb in self.callbacks:
                        cb.on_trial_report(trial, event.report)
            elif isinstance(event, TrialFinished) and event.trial_id in self._running:
                del self._running[event.trial_id]
                finished.append(self.study.finish(event.trial_id, event.payload, now))
            elif isinstance(event, TrialLost) and event.trial_id in self._running:
                del self._running[event.trial_id]
                trial = self.study.trials[event.trial_id]
                if trial.attempts <= self.options.max_retries:
                    self.study.store.add_event(
                        "retry", {"reason": event.reason, "attempt": trial.attempts}, event.trial_id
                    )
                    self._requeue.append(event.trial_id)
                else:
                    finished.append(
                        self.study.end(
                            event.trial_id,
                            TrialState.FAILED,
                            f"lost {trial.attempts} time(s), "
                            f"max_retries={self.options.max_retries}: {event.reason}",
                            now,
                        )
                    )
        return finished

    def _expire(self) -> list[Trial]:
        """End trials past ``timeout_s``: cancel the task, stage FAILED."""
        if self.options.timeout_s is None:
            return []
        now = self.clock.now()
        expired: list[Trial] = []
        for trial_id, started in list(self._running.items()):
            if now - started >= self.options.timeout_s:
                self.backend.cancel(trial_id)
                del self._running[trial_id]
                trial = self.study.end(
                    trial_id,
                    TrialState.FAILED,
                    f"timed out after {self.options.timeout_s:g} s",
                    now,
                )
                expired.append(trial)
        return expired

    def _tell_searcher(self, trial: Trial) -> None:
        if trial.state is TrialState.COMPLETED:
            self.study.searcher.on_trial_complete(trial)
        else:
            self.study.searcher.on_trial_error(trial)

    def _notify(self, finished: list[Trial]) -> None:
        for trial in finished:
            for cb in self.callbacks:
                if trial.state is TrialState.COMPLETED:
                    cb.on_trial_complete(trial)
                else:
                    cb.on_trial_error(trial)

    def _check_failures(self) -> None:
        limit = self.options.max_failures
        if limit is None:
            return
        failed = self.study.count(TrialState.FAILED)
        if failed > limit:
            last = max(
                (t for t in self.study.trials.values() if t.state is TrialState.FAILED),
                key=lambda t: t.ended_at or 0.0,
            )
            reason = (last.error or "").strip().splitlines()[-1:] or [""]
            raise TooManyFailuresError(
                f"{failed} trials failed, more than max_failures={limit}; last failure "
                f"(trial {last.trial_id}): {reason[0]}"
            )

    def _stop_reason(self) -> str | None:
        return self.options.stop.reason(
            elapsed_s=self.clock.now() - self._started,
            best=self.study.best_value,
            objectives=self.study.objectives,
            since_improvement=self.study.since_improvement,
        )

    def _abandon_running(self, why: str) -> None:
        now = self.clock.now()
        for trial_id in list(self._running):
            self.backend.cancel(trial_id)
            self.study.end(trial_id, TrialState.ABANDONED, why, now)
        self._running.clear()
        self.study.flush()
