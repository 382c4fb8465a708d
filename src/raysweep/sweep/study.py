"""Ask/tell over the experiment store: the state of one sweep, without Ray.

:class:`Study` owns the trial records, the searcher and the constraints. Every
change is *staged* and written by :meth:`Study.flush` in one transaction; the
runner flushes before it acts (dispatches a trial, tells the searcher, calls a
callback), so what the store says is always at least as new as what happened.

What the runner asks every iteration (counts per state, the best value, trials
since the last improvement) is kept up to date as trials change state, never
recomputed over all trials: the loop's cost must not grow with the experiment.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from raysweep.errors import InfeasibleSpaceError
from raysweep.objectives import Objectives
from raysweep.store import ExperimentStore, NewTrial, TrialUpdate
from raysweep.sweep.searchers import Searcher
from raysweep.sweep.space import SearchSpace
from raysweep.sweep.space.constraints import ConstraintSet
from raysweep.trial import Trial, TrialState

__all__ = ["MAX_REJECTIONS", "Study", "last_metrics"]

#: Keys of a report that are not metrics.
REPORT_KEYS = frozenset({"step", "time", "time_total_s"})


def _time(report: Mapping[str, Any]) -> float:
    value = report.get("time")
    return float(value) if isinstance(value, int | float) else 0.0


def last_metrics(reports: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """The metrics of the last report (what a pruned trial is remembered by)."""
    if not reports:
        return {}
    return {
        k: float(v)
        for k, v in reports[-1].items()
        if k not in REPORT_KEYS and isinstance(v, int | float) and not isinstance(v, bool)
    }


#: Suggestions the runner rejects for violating constraints before it gives up.
MAX_REJECTIONS = 10_000


class Study:
    """The trials of one experiment and the searcher proposing new ones.

    Args:
        store: where everything is committed.
        searcher: set up (and restored, on resume) already.
        space, constraints: every asked config is checked against both.
        objectives: what is optimized; decides which trial is better.
        num_trials: trials to create in all (``None``: until the searcher or a
            stop condition ends the experiment).
    """

    def __init__(
        self,
        store: ExperimentStore,
        searcher: Searcher,
        space: SearchSpace,
        constraints: ConstraintSet,
        objectives: Objectives,
        num_trials: int | None,
    ) -> None:
        self.store = store
        self.searcher = searcher
        self.space = space
        self.constraints = constraints
        self.objectives = objectives
        self.num_trials = num_trials
        self.trials: dict[int, Trial] = {t.trial_id: t for t in store.trials()}
        self._next_id = max(self.trials, default=-1) + 1
        self._exhausted = False
        self._new: list[NewTrial] = []
        self._updates: list[TrialUpdate] = []
        self._meta: dict[str, Any] = {}
        self._asked = False  # the searcher's state changed since the last flush
        self._counts: Counter[TrialState] = Counter(t.state for t in self.trials.values())
        # trial id -> the series its earlier attempts reported, kept across a re-run
        # (a trial going on from a checkpoint continues its series).
        self._kept: dict[int, tuple[Mapping[str, Any], ...]] = {}
        self._best = objectives.best(self.trials.values())
        self.best_value: float | None = None if self._best is None else objectives.value(self._best)
        self.since_improvement = 0

    # -- reading ------------------------------------------------------------------
    @property
    def best(self) -> Trial | None:
        """The best COMPLETED trial (the lowest id among equals), as
        :meth:`Objectives.best` would pick it from all trials."""
        return self._best

    def count(self, *states: TrialState) -> int:
        """Trials in any of ``states`` (staged changes included)."""
        return sum(self._counts[state] for state in states)

    def to_rerun(self) -> list[int]:
        """Ids of stored trials a resume runs again (RUNNING at the crash, ABANDONED
        by a stop, PENDING), oldest first."""
        return sorted(t.trial_id for t in self.trials.values() if t.state.needs_rerun())

    def can_ask(self) -> bool:
        return not self._exhausted and (self.num_trials is None or self._next_id < self.num_trials)

    # -- staging ------------------------------------------------------------------
    def ask(self, now: float) -> Trial | None:
        """Stage a new RUNNING trial with a feasible config, queued at ``now`` and not
        started yet, or ``None`` when the searcher is exhausted. Raises
        :class:`InfeasibleSpaceError` after :data:`MAX_REJECTIONS` infeasible
        suggestions in a row."""
        trial_id = self._next_id
        for _ in range(MAX_REJECTIONS):
            config = self.searcher.suggest(trial_id)
            if config is None:
                self._exhausted = True
                return None
            if not self.space.problems(config) and self.constraints.is_feasible(config):
                break
            self.searcher.on_rejected(config)
        else:
            raise InfeasibleSpaceError(
                f"the searcher proposed {MAX_REJECTIONS} configurations in a row that violate "
                f"the constraints {self.constraints.to_json()}; the feasible region is empty or "
                f"too small to sample: loosen the constraints or narrow the space"
            )
        self._next_id += 1
        trial = Trial(
            trial_id=trial_id,
            state=TrialState.RUNNING,
            config=dict(config),
            created_at=now,
            queued_at=now,
            attempts=1,
        )
        self.trials[trial_id] = trial
        self._counts[TrialState.RUNNING] += 1
        self._new.append(
            NewTrial(trial_id, trial.config, TrialState.RUNNING, now, attempts=1, queued_at=now)
        )
        self._asked = True
        return trial

    def restart(self, trial_id: int, now: float) -> Trial:
        """Stage another attempt of a stored trial with its config and id, queued at
        ``now``; where and when the last attempt ran is cleared.

        Its report series is kept: the new attempt may go on from a checkpoint.
        Reports of the new attempt replace the kept ones from their first step on
        (an attempt that starts over at step 0 replaces them all).
        """
        old = self.trials[trial_id]
        self._kept[trial_id] = old.intermediate
        return self._stage(
            trial_id,
            state=TrialState.RUNNING,
            metrics={},
            queued_at=now,
            attempts=old.attempts + 1,
            clear=("error", "ended_at", "started_at", "node"),
        )

    def relaunch(self, trial_id: int, config: Mapping[str, Any], parent_id: int | None) -> Trial:
        """Stage the configuration a paused trial goes on with, and the trial whose
        checkpoint it goes on from (population-based training's exploit)."""
        return self._stage(trial_id, config=dict(config), parent_id=parent_id)

    def _series(self, trial_id: int, reports: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """The kept series of earlier attempts joined with this attempt's ``reports``."""
        kept = self._kept.pop(trial_id, ())
        if not reports:
            return [dict(r) for r in kept]
        first = reports[0].get("step")
        if isinstance(first, int):
            kept = tuple(r for r in kept if isinstance(r.get("step"), int) and r["step"] < first)
        else:
            kept = ()
        return [*(dict(r) for r in kept), *(dict(r) for r in reports)]

    def start(self, trial_id: int, when: float, node: str | None) -> Trial:
        """Stage that a queued trial began to run at ``when`` on ``node``."""
        return self._stage(trial_id, started_at=when, node=node)

    def report(self, trial_id: int, report: Mapping[str, Any]) -> Trial | None:
        """Stage a live report; ignored unless the trial is still running.

        Live reports may arrive out of order (Ray does not order the calls of an
        async actor), and when the driver dies they are all that is stored of an
        attempt: one that arrives before a later one is put in its place by its
        ``time`` (the worker's clock), and the stored series is rewritten.
        """
        trial = self.trials.get(trial_id)
        if trial is None or trial.state is not TrialState.RUNNING:
            return None
        entry = dict(report)
        series = trial.intermediate
        if series and _time(entry) < _time(series[-1]):
            ordered = tuple(sorted((*series, entry), key=_time))
            trial = dataclasses.replace(trial, intermediate=ordered)
            self._updates.append(
                TrialUpdate(trial_id, reports=[dict(r) for r in ordered], replace_reports=True)
            )
        else:
            trial = dataclasses.replace(trial, intermediate=(*series, entry))
            self._updates.append(TrialUpdate(trial_id, reports=[entry]))
        self.trials[trial_id] = trial
        return trial

    def finish(self, trial_id: int, payload: Mapping[str, Any], now: float) -> Trial:
        """Stage the outcome of a trial's task: COMPLETED, FAILED, or, when the
        scheduler ended it through its reports (``payload["interrupt"]``), PRUNED
        or PAUSED with the metrics it returned or else its last reported ones.

        A start already staged (the one the time-out counted from) is kept; the
        payload's own start time fills in only where none was heard of.
        """
        ok = bool(payload.get("ok"))
        interrupt = payload.get("interrupt")
        started = self.trials[trial_id].started_at
        reports = self._series(trial_id, list(payload.get("reports") or []))
        metrics = dict(payload.get("metrics") or {})
        error = None if ok else str(payload.get("error") or "unknown error")
        state = TrialState.COMPLETED if ok else TrialState.FAILED
        if interrupt in ("stop", "pause") and payload.get("error") is None:
            state = TrialState.PRUNED if interrupt == "stop" else TrialState.PAUSED
            metrics = metrics or last_metrics(reports)
            error = None
        return self._stage(
            trial_id,
            state=state,
            metrics=metrics,
            error=error,
            started_at=payload.get("started_at") if started is None else None,
            ended_at=payload.get("ended_at") or now,
            node=payload.get("node"),
            reports=reports,
            replace_reports=True,
        )

    def end(self, trial_id: int, state: TrialState, error: str | None, now: float) -> Trial:
        """Stage a trial ended by the runner: FAILED (time-out, lost too often),
        ABANDONED (the experiment stopped while it ran), or PRUNED / PAUSED (its
        task was cancelled after the scheduler's grace period), the last two with
        their last reported metrics."""
        self._kept.pop(trial_id, None)
        if state in (TrialState.PRUNED, TrialState.PAUSED):
            metrics = last_metrics(self.trials[trial_id].intermediate)
            return self._stage(trial_id, state=state, metrics=metrics, error=error, ended_at=now)
        return self._stage(trial_id, state=state, error=error, ended_at=now)

    def _stage(
        self,
        trial_id: int,
        *,
        reports: Sequence[Mapping[str, Any]] | None = None,
        replace_reports: bool = False,
        clear: Sequence[str] = (),
        **fields: Any,
    ) -> Trial:
        """Apply ``fields`` (``None`` = unchanged) and ``clear`` (reset to ``None``)
        to the in-memory record and stage the same change for the store.

        ``fields`` are named as both :class:`Trial` and :class:`TrialUpdate` name
        them (``state``, ``metrics``, ``error``, ``queued_at``, ``started_at``,
        ``ended_at``, ``node``, ``attempts``).
        """
        given = {k: v for k, v in fields.items() if v is not None}
        self._updates.append(
            TrialUpdate(
                trial_id,
                reports=list(reports or ()),
                replace_reports=replace_reports,
                clear=frozenset(clear),
                **given,
            )
        )
        changes = {**given, **dict.fromkeys(clear)}
        if replace_reports:
            changes["intermediate"] = tuple(dict(r) for r in reports or ())
        old = self.trials[trial_id]
        new = dataclasses.replace(old, **changes)
        self.trials[trial_id] = new
        if new.state is not old.state:
            self._counts[old.state] -= 1
            self._counts[new.state] += 1
        if new.state is TrialState.COMPLETED:
            self._note_completion(new)
        return new

    def _note_completion(self, trial: Trial) -> None:
        value = self.objectives.value(trial)
        if value is not None and self.objectives.improves(value, self.best_value):
            self.best_value = value
            self.since_improvement = 0
            self._best = trial
        else:
            self.since_improvement += 1
            if (
                value is not None
                and value == self.best_value
                and self._best is not None
                and trial.trial_id < self._best.trial_id
            ):
                self._best = trial  # a tie: the lower id wins, as in Objectives.best

    def save_searcher_state(self) -> None:
        """Store the searcher's state with the next commit even if nothing was asked
        (a choice made at setup must outlive a crash before the first trial)."""
        self._asked = True

    def stage_meta(self, key: str, value: Any) -> None:
        self._meta[key] = value

    def flush(self) -> None:
        """Commit everything staged, in one transaction.

        The searcher's ``state_dict()`` is taken here, once per commit rather than
        once per ask: it is the state after the last ask, stored with the trials it
        proposed, which is what a resume needs to continue the sequence.
        """
        if self._asked:
            self._meta["searcher_state"] = {
                "name": self.searcher.name,
                "state": self.searcher.state_dict(),
            }
            self._asked = False
        if self._new or self._updates or self._meta:
            self.store.commit(self._new, self._updates, self._meta)
        self._new, self._updates, self._meta = [], [], {}
