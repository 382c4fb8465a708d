"""The parallel loop: N asks in flight, one tell per finished trial.

The runner joins a :class:`~raysweep.sweep.study.Study` (what to try), a
:class:`~raysweep.sweep.execution.Backend` (where it runs) and the stop conditions
(when to end). It sleeps only inside ``backend.wait``, which returns on the
first event or at the next deadline (a trial time-out, the time budget or the
next heartbeat).

A dispatched trial may wait in the backend's queue (a Ray task pending for a
free CPU when ``max_concurrent`` exceeds what the cluster runs at once). It is
RUNNING in the store from dispatch, with ``queued_at`` set and ``started_at``
NULL, until the backend's :class:`~raysweep.sweep.execution.TrialStarted` says it
runs; ``timeout_s`` counts from that start, so a trial never times out for time
spent in the queue. No separate QUEUED state: a queued trial is in flight like a
running one for everything but its time-out (the searcher counts it as pending,
a resume re-runs it, a stop abandons it), and ``started_at`` already tells the
two apart for ``raysweep status`` and the progress display.

A scheduler (``fifo`` is none at all) judges every intermediate report as it
arrives; its decision goes back to the trial through the backend
(:meth:`Backend.answer`), whose ``report()`` then raises ``TrialPruned`` or
``TrialPaused``. The trial's task ends normally (its worker is kept) and its
payload says it was interrupted: the study records PRUNED, or PAUSED, after which
the scheduler says how it goes on (population-based training: another trial's
checkpoint, a new configuration) and it is queued again. A trial that does not
end within the scheduler's ``stop_grace_s`` is cancelled and recorded as decided.

Each iteration costs O(events handled), not O(trials): time-outs sit in a heap
of deadlines and the study keeps its counts and best value as trials change
state, so a driver with a thousand trials in flight and tens of thousands
stored keeps pace with the cluster (``bench/driver_scale.py``).
"""

from __future__ import annotations

import dataclasses
import heapq
import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from raysweep.errors import TooManyFailuresError
from raysweep.store import HEARTBEAT_KEY, heartbeat
from raysweep.sweep.callbacks import Callback
from raysweep.sweep.execution import (
    NO_TRIAL_IO,
    Backend,
    Clock,
    TrialFinished,
    TrialIO,
    TrialLost,
    TrialReported,
    TrialStarted,
)
from raysweep.sweep.schedulers._base import Decision, Scheduler
from raysweep.sweep.stopping import Stop
from raysweep.sweep.study import Study
from raysweep.trial import Trial, TrialState

__all__ = ["HEARTBEAT_S", "Runner", "RunnerOptions"]

#: Seconds between two heartbeats of a live driver (meta key ``"heartbeat"``).
HEARTBEAT_S = 5.0


@dataclass(frozen=True, slots=True)
class RunnerOptions:
    """How the loop behaves; validated by :func:`raysweep.run`.

    ``heartbeat_s``: a live driver stores :func:`raysweep.store.heartbeat` (host,
    pid, time, interval) under the meta key ``"heartbeat"`` at start and again at
    least every ``heartbeat_s`` (plus the length of one loop iteration), so
    ``raysweep status`` can tell a driver that hangs or died from one that waits
    for long trials. A busy loop refreshes it with the commit it makes anyway once
    half the interval has passed; only an idle loop wakes up for it, at the full
    interval. ``timeout_s`` counts from the trial's start on its worker, not
    from dispatch: time waiting for resources is not the trial's.
    """

    max_concurrent: int
    timeout_s: float | None = None
    max_retries: int = 0
    max_failures: int | None = None
    stop: Stop = field(default_factory=Stop)
    heartbeat_s: float = HEARTBEAT_S


class Runner:
    """Drives one experiment to its end; see :meth:`run`."""

    def __init__(
        self,
        study: Study,
        backend: Backend,
        clock: Clock,
        options: RunnerOptions,
        callbacks: Sequence[Callback] = (),
        scheduler: Scheduler | None = None,
        io: TrialIO = NO_TRIAL_IO,
    ) -> None:
        self.study = study
        self.backend = backend
        self.clock = clock
        self.options = options
        self.callbacks = list(callbacks)
        self.scheduler = scheduler  # None: fifo, reports are not judged
        self.io = io
        self._stopping: dict[int, Decision] = {}  # told to stop or pause, not ended yet
        # trial id -> dispatch number; a deadline whose number differs is stale
        # (the trial ended, or this is an earlier attempt of a re-run trial).
        self._running: dict[int, int] = {}
        self._queued: set[int] = set()  # dispatched, not started yet: no deadline
        self._deadlines: list[tuple[float, int, int]] = []  # (deadline, dispatch, trial id)
        self._dispatches = 0
        self._requeue: deque[int] = deque(study.to_rerun())
        self._started = clock.now()
        self._last_beat = -math.inf

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
        began: list[Trial] = []
        finished: list[Trial] = []
        try:
            while True:
                for trial in finished:
                    self._tell_searcher(trial)
                self._check_failures()
                reason = self._stop_reason()
                started = [] if reason else self._stage_starts()
                self._beat()
                study.flush()
                self._dispatch(started)
                self._notify(began, finished)
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
                began, finished = self._handle(events)
                finished += self._expire()
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
                trial = self.study.restart(self._requeue.popleft(), now)
            elif self.study.can_ask():
                maybe = self.study.ask(now)
                if maybe is None:
                    break
                trial = maybe
            else:
                break
            # Before the next ask, so the searcher counts this one as pending.
            self.study.searcher.on_trial_start(trial)
            if self.scheduler is not None:
                self.scheduler.on_trial_add(trial)
            started.append(trial)
        return started

    def _dispatch(self, started: list[Trial]) -> None:
        for trial in started:
            self._dispatches += 1
            self._running[trial.trial_id] = self._dispatches
            self._queued.add(trial.trial_id)
            if self.scheduler is not None:
                bound = self.scheduler.next_decision_at(trial)
                if bound is not None:
                    self.backend.expect(trial.trial_id, (self.scheduler.time_attr, bound))
            self.backend.submit(trial.trial_id, trial.config)
        if len(self._deadlines) > 2 * len(self._running) + 64:
            # Trials mostly end long before their deadline; drop the stale entries
            # now and then, so the heap stays as small as what is in flight.
            self._deadlines = [d for d in self._deadlines if self._running.get(d[2]) == d[1]]
            heapq.heapify(self._deadlines)
        for trial in started:
            for cb in self.callbacks:
                cb.on_trial_start(trial)

    def _beat(self) -> None:
        """Stage the heartbeat once half its interval has passed; it rides on this
        iteration's commit, so a busy loop never makes an extra one for it."""
        now = self.clock.now()
        interval = self.options.heartbeat_s
        if now - self._last_beat >= interval / 2:
            self.study.stage_meta(HEARTBEAT_KEY, heartbeat(interval, now=now))
            self._last_beat = now

    def _wait_timeout(self) -> float:
        """Seconds until the earliest of: a trial's time-out, the time budget, the
        next heartbeat."""
        deadlines = self._deadlines
        while deadlines and self._running.get(deadlines[0][2]) != deadlines[0][1]:
            heapq.heappop(deadlines)  # that trial already ended
        nearest = self._last_beat + self.options.heartbeat_s
        if deadlines:
            nearest = min(nearest, deadlines[0][0])
        if self.options.stop.time_budget_s is not None:
            nearest = min(nearest, self._started + self.options.stop.time_budget_s)
        return max(0.0, nearest - self.clock.now())

    def _handle(self, events: Sequence[object]) -> tuple[list[Trial], list[Trial]]:
        """Stage what ``events`` say; return the trials that began to run and those
        that ended, for the callbacks after the commit."""
        now = self.clock.now()
        began: list[Trial] = []
        finished: list[Trial] = []
        judge: list[TrialReported] = []
        for event in events:
            if isinstance(event, TrialStarted):
                if event.trial_id in self._queued:
                    began.append(self._start(event.trial_id, event.time, event.node, now))
            elif isinstance(event, TrialReported):
                trial = self.study.report(event.trial_id, event.report)
                if self.scheduler is not None:
                    judge.append(event)
                if trial is not None:
                    for cb in self.callbacks:
                        cb.on_trial_report(trial, event.report)
            elif isinstance(event, TrialFinished) and event.trial_id in self._running:
                if event.trial_id in self._queued:
                    began += self._began_unheard(event.trial_id, event.payload)
                del self._running[event.trial_id]
                self._stopping.pop(event.trial_id, None)
                trial = self.study.finish(event.trial_id, event.payload, now)
                if trial.state is TrialState.PAUSED:
                    self._go_on(trial)
                else:
                    self._tell_scheduler(trial)
                finished.append(trial)
            elif isinstance(event, TrialLost) and event.trial_id in self._running:
                del self._running[event.trial_id]
                self._queued.discard(event.trial_id)
                self._stopping.pop(event.trial_id, None)
                trial = self.study.trials[event.trial_id]
                if trial.attempts <= self.options.max_retries:
                    self.study.store.add_event(
                        "retry", {"reason": event.reason, "attempt": trial.attempts}, event.trial_id
                    )
                    self._requeue.append(event.trial_id)
                else:
                    lost = self.study.end(
                        event.trial_id,
                        TrialState.FAILED,
                        f"lost {trial.attempts} time(s), "
                        f"max_retries={self.options.max_retries}: {event.reason}",
                        now,
                    )
                    self._tell_scheduler(lost)
                    finished.append(lost)
        # Judged after the batch's ends were told: a trial that just ended is no
        # longer a rung's competitor or a donor.
        for event in judge:
            trial = self.study.trials.get(event.trial_id)
            live = trial if trial is not None and trial.state is TrialState.RUNNING else None
            self._judge(event.trial_id, live, event.report, now)
        return began, finished

    def _judge(
        self, trial_id: int, trial: Trial | None, report: Mapping[str, Any], now: float
    ) -> None:
        """Ask the scheduler about one report and send its decision to the trial (each
        report is answered: on Ray the trial's ``report()`` waits for it)."""
        assert self.scheduler is not None
        decision = self._stopping.get(trial_id, Decision.CONTINUE)
        until: tuple[str, float] | None = None
        if trial is not None and trial_id in self._running and trial_id not in self._stopping:
            self.study.searcher.on_trial_result(trial, report)
            decision = self.scheduler.on_trial_result(trial, report)
            state = self.scheduler.state_dict()
            if state:
                self.study.stage_meta(
                    "scheduler_state", {"name": self.scheduler.name, "state": state}
                )
            if decision is not Decision.CONTINUE:
                self._stopping[trial_id] = decision
                grace = now + self.scheduler.stop_grace_s
                heapq.heappush(self._deadlines, (grace, self._running[trial_id], trial_id))
            else:
                bound = self.scheduler.next_decision_at(trial)
                until = None if bound is None else (self.scheduler.time_attr, bound)
        self.backend.answer(trial_id, decision.value, until)

    def _go_on(self, trial: Trial) -> None:
        """A paused trial: apply the scheduler's plan (a donor's checkpoint, a new
        configuration), then queue it again; it goes on from its checkpoint."""
        assert self.scheduler is not None
        plan = self.scheduler.on_trial_paused(trial)
        study = self.study
        if plan is not None and (
            study.space.problems(plan.config) or not study.constraints.is_feasible(plan.config)
        ):
            # A mutation wider than the space (or against a constraint): the trial
            # goes on as it was rather than with a configuration nobody asked for.
            study.store.add_event(
                "exploit_refused",
                {"donor": plan.donor, "config": dict(plan.config), "why": "outside the space"},
                trial.trial_id,
            )
            plan = None
        if plan is not None:
            copied: str | None = None
            if plan.donor is not None and plan.donor != trial.trial_id:
                mine, theirs = self.io.files(trial.trial_id), self.io.files(plan.donor)
                if mine is not None and theirs is not None:
                    path = mine.copy_latest_from(theirs)
                    copied = None if path is None else str(path)
            self.study.relaunch(trial.trial_id, plan.config, plan.donor)
            self.study.store.add_event(
                "exploit",
                {
                    "donor": plan.donor,
                    "step": trial.last_step,
                    "config": dict(plan.config),
                    "checkpoint": copied,
                },
                trial.trial_id,
            )
        self._requeue.append(trial.trial_id)

    def _start(self, trial_id: int, when: float, node: str | None, now: float) -> Trial:
        """Stage the start of a queued trial and set its deadline.

        The start comes from the worker's clock; it is kept between dispatch and
        now, so a worker whose clock is off can neither date a trial before it was
        dispatched nor time it out early (or never) by starting it in the future.
        """
        self._queued.discard(trial_id)
        queued_at = self.study.trials[trial_id].queued_at
        when = min(max(when, queued_at if queued_at is not None else when), now)
        timeout_s = self.options.timeout_s
        if timeout_s is not None:
            heapq.heappush(self._deadlines, (when + timeout_s, self._running[trial_id], trial_id))
        return self.study.start(trial_id, when, node)

    def _began_unheard(self, trial_id: int, payload: Mapping[str, Any]) -> list[Trial]:
        """The record, as it began, of a trial whose end came before (or without) word
        of its start, so callbacks still hear of the start first; none if the task
        never ran the trial (its body failed before).

        Nothing is staged for it: :meth:`Study.finish` stores the start and node the
        worker recorded, in the same update as the end (a trivial trial ends long
        before its start notice would be sent).
        """
        self._queued.discard(trial_id)
        started, node = payload.get("started_at"), payload.get("node")
        if not isinstance(started, int | float):
            return []
        trial = self.study.trials[trial_id]
        node = node if isinstance(node, str) else None
        return [dataclasses.replace(trial, started_at=float(started), node=node)]

    def _expire(self) -> list[Trial]:
        """End trials past ``timeout_s``: cancel the task, stage FAILED."""
        now = self.clock.now()
        deadlines = self._deadlines
        expired: list[Trial] = []
        while deadlines and deadlines[0][0] <= now:
            _, dispatch, trial_id = heapq.heappop(deadlines)
            if self._running.get(trial_id) != dispatch:
                continue  # it ended before its deadline
            self.backend.cancel(trial_id)
            del self._running[trial_id]
            self._queued.discard(trial_id)
            decided = self._stopping.pop(trial_id, None)
            if decided is not None:
                # Told to stop or pause and still running after the grace period.
                state = TrialState.PRUNED if decided is Decision.STOP else TrialState.PAUSED
                trial = self.study.end(trial_id, state, None, now)
                if state is TrialState.PAUSED:
                    self._go_on(trial)
            else:
                trial = self.study.end(
                    trial_id,
                    TrialState.FAILED,
                    f"timed out after {self.options.timeout_s:g} s",
                    now,
                )
            self._tell_scheduler(trial)
            expired.append(trial)
        return expired

    def _tell_scheduler(self, trial: Trial) -> None:
        """Tell the scheduler a trial ended, as soon as the runner knows."""
        if self.scheduler is None or trial.state is TrialState.PAUSED:
            return
        if trial.state is TrialState.COMPLETED:
            self.scheduler.on_trial_complete(trial)
        else:
            self.scheduler.on_trial_remove(trial)

    def _tell_searcher(self, trial: Trial) -> None:
        """Tell the searcher how a trial ended (a paused one has not: it goes on,
        still pending for the searcher)."""
        if trial.state is TrialState.PAUSED:
            return
        if trial.state is TrialState.COMPLETED:
            self.study.searcher.on_trial_complete(trial)
        elif trial.state is TrialState.PRUNED:
            self.study.searcher.on_trial_pruned(trial)
        else:
            self.study.searcher.on_trial_error(trial)

    def _notify(self, began: list[Trial], finished: list[Trial]) -> None:
        for trial in began:
            for cb in self.callbacks:
                cb.on_trial_running(trial)
        for trial in finished:
            if trial.state is TrialState.PAUSED:
                continue  # not ended: it goes on
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
            decided = self._stopping.get(trial_id)
            if decided is Decision.STOP:
                # Pruned already, only its task had not ended: not to be run again.
                self.study.end(trial_id, TrialState.PRUNED, None, now)
            elif decided is Decision.PAUSE:
                # Paused as decided, its plan applied: a resume runs it on from there.
                self._go_on(self.study.end(trial_id, TrialState.PAUSED, None, now))
            else:
                self.study.end(trial_id, TrialState.ABANDONED, why, now)
        self._running.clear()
        self._queued.clear()
        self._stopping.clear()
        self._deadlines.clear()
        self.study.flush()
