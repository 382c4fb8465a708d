"""Scripted reports for scheduler tests, and the behaviour every scheduler shares.

:class:`Feed` plays the runner's part without Ray or a clock: it keeps each
trial's reports, hands the scheduler the trial record holding the new report (as
the runner does), and can turn what it fed into stored trials for
:meth:`Scheduler.restore`. A scheduler's test module subclasses
:class:`SchedulerConformance` and implements ``make``; pytest then runs the
shared checks against it.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Mapping
from typing import Any

from raysweep.objectives import Objectives
from raysweep.sweep.schedulers import Decision, Scheduler, SchedulerContext, make_scheduler
from raysweep.sweep.space import SearchSpace, choice, loguniform, randint
from raysweep.trial import Trial, TrialState

SPACE = SearchSpace(
    {"lr": loguniform(1e-4, 0.1), "layers": randint(1, 6), "act": choice(["relu", "tanh"])}
)


def make_ctx(
    space: SearchSpace = SPACE, mode: str = "min", seed: int | None = 0
) -> SchedulerContext:
    """A context judging ``loss`` in ``mode`` over ``space``."""
    return SchedulerContext(objectives=Objectives.single("loss", mode), space=space, seed=seed)


def config_of(trial_id: int) -> dict[str, Any]:
    """A configuration of :data:`SPACE` that differs by trial."""
    return {"lr": 10.0 ** -(1 + trial_id % 4), "layers": 1 + trial_id % 6, "act": "relu"}


class Feed:
    """Reports fed to a scheduler as the runner feeds them, remembered for a replay."""

    def __init__(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler
        self.reports: dict[int, list[dict[str, Any]]] = {}
        self.configs: dict[int, Mapping[str, Any]] = {}
        self.states: dict[int, TrialState] = {}
        self.clock = 1000.0

    def trial(self, trial_id: int) -> Trial:
        """The record of ``trial_id`` as stored now."""
        return Trial(
            trial_id=trial_id,
            state=self.states.get(trial_id, TrialState.RUNNING),
            config=self.configs.setdefault(trial_id, config_of(trial_id)),
            intermediate=tuple(self.reports.get(trial_id, ())),
        )

    def add(self, trial_id: int, config: Mapping[str, Any] | None = None) -> None:
        """Dispatch ``trial_id`` (``on_trial_add``), with ``config`` if given."""
        if config is not None:
            self.configs[trial_id] = config
        self.states[trial_id] = TrialState.RUNNING
        self.scheduler.on_trial_add(self.trial(trial_id))

    def __call__(self, trial_id: int, step: float, loss: float | None, **extra: Any) -> Decision:
        """One report of ``trial_id`` at ``step`` (``loss=None`` leaves the metric out)."""
        if trial_id not in self.states:
            self.add(trial_id)
        self.clock += 1.0
        report: dict[str, Any] = {"step": step, "time": self.clock, "time_total_s": step * 10.0}
        if loss is not None:
            report["loss"] = loss
        report.update(extra)
        self.reports.setdefault(trial_id, []).append(report)
        return self.scheduler.on_trial_result(self.trial(trial_id), report)

    def end(self, trial_id: int, state: TrialState = TrialState.COMPLETED) -> None:
        """``trial_id`` ended in ``state``; the scheduler is told as the runner tells it."""
        self.states[trial_id] = state
        if state is TrialState.COMPLETED:
            self.scheduler.on_trial_complete(self.trial(trial_id))
        elif state is not TrialState.PAUSED:
            self.scheduler.on_trial_remove(self.trial(trial_id))

    def stored(self) -> list[Trial]:
        """Every trial fed so far, as a resume reads them from the store (id order)."""
        return [self.trial(t) for t in sorted(self.states)]

    def play(self, trial_id: int, step: float, loss: float) -> tuple[Decision, Any] | None:
        """One report handled as the runner handles it: nothing for a trial that
        ended; a STOP ends it PRUNED; a PAUSE asks ``on_trial_paused`` for the plan,
        applies its config and dispatches the trial again. Returns the decision and
        the plan."""
        if self.states.get(trial_id) is TrialState.PRUNED:
            return None
        decision = self(trial_id, step, loss)
        plan = None
        if decision is Decision.STOP:
            self.end(trial_id, TrialState.PRUNED)
        elif decision is Decision.PAUSE:
            self.states[trial_id] = TrialState.PAUSED
            plan = self.scheduler.on_trial_paused(self.trial(trial_id))
            self.add(trial_id, None if plan is None else plan.config)
        return decision, plan

    def resumed(self, fresh: Scheduler, ctx: SchedulerContext) -> Feed:
        """A feed for ``fresh``, set up and rebuilt from this feed's trials and state as
        a resume does; it continues where this one stands."""
        fresh.setup(ctx)
        fresh.load_state_dict(json.loads(json.dumps(self.scheduler.state_dict())))
        fresh.restore(self.stored())
        other = Feed(fresh)
        other.reports = {t: list(r) for t, r in self.reports.items()}
        other.configs = dict(self.configs)
        other.states = dict(self.states)
        other.clock = self.clock
        return other


#: Seven trials reporting out of step, as parallel trials do: (trial, step, loss).
#: Trial 6 starts late and does badly, so it is judged after each replay's cut.
SCRIPT: list[tuple[int, int, float]] = [
    (t, step, 1.0 + ((t * 7 + step * 3) % 11) / (step + 1) + (9.0 if t == 6 else 0.0))
    for step in range(1, 13)
    for t in (range(7) if step % 2 else reversed(range(7)))
    if not (t == 6 and step < 7)
]


class SchedulerConformance:
    """Checks every scheduler must pass; subclasses define :meth:`make`."""

    #: The name :func:`make_scheduler` knows it by, and options it needs.
    registered: tuple[str, Mapping[str, Any]] = ("fifo", {})

    def make(self) -> Scheduler:
        raise NotImplementedError

    def started(self, mode: str = "min") -> Scheduler:
        scheduler = self.make()
        scheduler.setup(make_ctx(mode=mode))
        return scheduler

    def test_reports_without_metric_or_progress_continue(self) -> None:
        """A report lacking the metric or the time attribute is never judged."""
        feed = Feed(self.started())
        for t, step, loss in SCRIPT:
            assert feed(t, step, None, other=loss) is Decision.CONTINUE
        for t, _, loss in SCRIPT:
            report = {"loss": loss, "time": 0.0}  # no step, no time_total_s
            assert feed.scheduler.on_trial_result(feed.trial(t), report) is Decision.CONTINUE

    def test_decisions_are_decisions(self) -> None:
        """Every answer is a Decision, and PAUSE only from a scheduler that pauses."""
        feed = Feed(self.started())
        for t, step, loss in SCRIPT:
            decision = feed(t, step, loss)
            assert isinstance(decision, Decision)
            assert decision is not Decision.PAUSE or feed.scheduler.pauses

    def test_a_replay_makes_the_same_next_decisions(self) -> None:
        """A scheduler rebuilt from the stored trials decides every later report (and
        plans every later pause) as the uninterrupted one does."""
        for cut in (len(SCRIPT) // 3, len(SCRIPT) // 2, 2 * len(SCRIPT) // 3):
            live = Feed(self.started())
            for event in SCRIPT[:cut]:
                live.play(*event)
            replayed = live.resumed(self.make(), make_ctx())
            for event in SCRIPT[cut:]:
                assert replayed.play(*event) == live.play(*event), (cut, event)

    def test_state_is_json(self) -> None:
        """What state_dict returns survives the store's JSON."""
        feed = Feed(self.started())
        for t, step, loss in SCRIPT:
            feed(t, step, loss)
        state = feed.scheduler.state_dict()
        assert json.loads(json.dumps(state)) == state

    def test_pickles(self) -> None:
        """A scheduler pickles, fresh and after reports, and decides the same after."""
        feed = Feed(self.started())
        for t, step, loss in SCRIPT[:20]:
            feed(t, step, loss)
        copy = pickle.loads(pickle.dumps(feed.scheduler))
        t, step, loss = SCRIPT[20]
        trial = feed.trial(t)
        report = {"step": step, "time": 0.0, "time_total_s": 1.0, "loss": loss}
        assert copy.on_trial_result(trial, report) is feed.scheduler.on_trial_result(trial, report)
        assert type(pickle.loads(pickle.dumps(self.make()))) is type(copy)

    def test_made_by_name(self) -> None:
        """make_scheduler builds it from its registered name and options."""
        name, options = self.registered
        made = make_scheduler(name, options)
        assert type(made) is type(self.make())
        assert made.name == name
