"""One step of a gradient run: the reactive loop over simulator and objective calls.

The loop keeps ``{ref: what it is}`` for every call in flight, waits for any of
them, and after each completion dispatches every objective whose observables are
now fresh enough. "Fresh enough" is a generation number per simulator: each
launch of a simulator gets the next generation, and each objective records the
generation it needs of every simulator it reads. That one rule covers the first
dispatch, observables kept from earlier steps (objectives that reuse), and the
not-ready path (ask for a generation newer than the one that was rejected).

The engine holds nothing between steps but its configuration and the executor:
each step starts from the states and observable references it is given and
returns the new ones, so the optimizer's step is a function of its inputs.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from raysweep.errors import StepFailedError
from raysweep.gradient import _ray_exec as rx
from raysweep.gradient.trees import tree_leaves
from raysweep.gradient.units import NotReady, Objective, ObjectiveResult, Simulator, takes_state

__all__ = ["MAX_ATTEMPTS", "StepEngine", "StepResult"]

#: Computations of one objective per step; a NotReady on the last one fails the step.
MAX_ATTEMPTS = 2

#: ``on_event(kind, data)``: retries and not-ready answers, for the run's event log.
OnEvent = Callable[[str, Mapping[str, Any]], None]


class TaskKind(enum.Enum):
    """What a ref in flight belongs to."""

    SIMULATOR = "simulator"
    OBJECTIVE = "objective"


@dataclass(slots=True)
class _SimulatorSlot:
    """A simulator during one step."""

    simulator: Simulator
    retries: int
    state: Any = None
    refs: dict[str, Any] | None = None  # qualified observable name -> ref, last completed run
    done_gen: int = 0  # generation of ``refs``; 0 = none yet
    launched_gen: int = 0
    inflight: tuple[dict[str, Any], Any] | None = None
    failures: int = 0


@dataclass(slots=True)
class _ObjectiveSlot:
    objective: Objective
    retries: int
    sims: list[str]
    stateful: bool
    state: Any = None
    needs: dict[str, int] = field(default_factory=dict)
    attempts: int = 0
    failures: int = 0
    inflight: Any = None
    inflight_refs: dict[str, Any] = field(default_factory=dict)
    result: ObjectiveResult | None = None


@dataclass(slots=True)
class StepResult:
    """What one step produced, before the gradient update.

    ``states`` holds every unit's state after the step (``None`` for stateless
    objectives) and ``observables`` every simulator's latest observable refs.
    """

    results: dict[str, ObjectiveResult]
    states: dict[str, Any]
    observables: dict[str, Any]
    simulators_s: dict[str, float]
    objectives_s: dict[str, float]
    simulators_run: list[str]
    not_ready_retries: int
    wall_s: float


def _ignore(kind: str, data: Mapping[str, Any]) -> None:
    return None


class StepEngine:
    """Runs steps on an executor's hosts.

    Args:
        simulators: every simulator of the run.
        objectives: in the order of the aggregation.
        producer: qualified observable name -> simulator name.
        retries: name -> how often a unit that raised or lost its process is re-run.
        executor: runs the calls (the run's hosts).
        max_attempts: computations of one objective per step before a not-ready
            answer fails the step.
    """

    def __init__(
        self,
        simulators: Sequence[Simulator],
        objectives: Sequence[Objective],
        producer: Mapping[str, str],
        retries: Mapping[str, int],
        executor: rx.Executor,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        self.simulators = list(simulators)
        self.producer = dict(producer)
        self.objectives = list(objectives)
        self.retries = dict(retries)
        self.executor = executor
        self.max_attempts = max_attempts
        self.sims: dict[str, _SimulatorSlot] = {}
        self.stateful = {obj.name: takes_state(obj) for obj in self.objectives}
        # A simulator runs every step unless every objective reading it reuses observables.
        self.every_step = {
            self.producer[q]
            for obj in objectives
            if not obj.reuse_observables
            for q in obj.required_observables
        }

    # -- one step -----------------------------------------------------------------------
    def run_step(
        self,
        step: int,
        params: Any,
        states: Mapping[str, Any],
        observables: Mapping[str, Any],
        on_event: OnEvent = _ignore,
    ) -> StepResult:
        """Run simulators and objectives until every objective has a gradient.

        Args:
            step: the step's index (for messages and events).
            params: the parameters, with NumPy leaves.
            states: unit name -> state at the start of the step (missing: ``None``).
            observables: qualified name -> ref kept from earlier steps; a
                simulator with all of its observables here counts as having run.
            on_event: receives ``(kind, data)`` for retries and not-ready answers.

        Raises:
            StepFailedError: a unit failed past its retries, or an objective was
                still not ready after ``max_attempts`` computations.
        """
        start = time.perf_counter()
        self._step = step
        self._on_event = on_event
        nbytes = sum(int(getattr(leaf, "nbytes", 8)) for leaf in tree_leaves(params))
        self._params = rx.share(params, nbytes)
        self._pending: dict[Any, tuple[TaskKind, str]] = {}
        self._sim_s: dict[str, float] = {}
        self._obj_s: dict[str, float] = {}
        self._ran: list[str] = []
        self._retries_nr = 0
        self.sims = {}
        for sim in self.simulators:
            kept = sim.observables()
            refs = (
                {q: observables[q] for q in kept} if all(q in observables for q in kept) else None
            )
            gen = 0 if refs is None else 1
            self.sims[sim.name] = _SimulatorSlot(
                simulator=sim,
                retries=self.retries[sim.name],
                state=states.get(sim.name),
                refs=refs,
                done_gen=gen,
                launched_gen=gen,
            )
        slots = [
            _ObjectiveSlot(
                objective=obj,
                retries=self.retries[obj.name],
                sims=list(dict.fromkeys(self.producer[q] for q in obj.required_observables)),
                stateful=self.stateful[obj.name],
                state=states.get(obj.name) if self.stateful[obj.name] else None,
            )
            for obj in self.objectives
        ]
        self._objs = {slot.objective.name: slot for slot in slots}
        for slot in slots:
            for name in slot.sims:
                kept_refs = self.sims[name].refs
                fresh = name in self.every_step or kept_refs is None
                slot.needs[name] = self._launch(name) if fresh else self.sims[name].done_gen
        self._dispatch_ready()
        while any(slot.result is None for slot in slots):
            for ref, outcome in self.executor.collect(rx.wait_any(list(self._pending))):
                kind, name = self._pending.pop(ref)
                if kind is TaskKind.SIMULATOR:
                    self._simulator_done(name, outcome)
                else:
                    self._objective_done(name, outcome)
            self._dispatch_ready()
        new_states: dict[str, Any] = {name: sim.state for name, sim in self.sims.items()}
        new_states.update({slot.objective.name: slot.state for slot in slots})
        return StepResult(
            results={s.objective.name: s.result for s in slots if s.result is not None},
            states=new_states,
            observables={
                q: ref
                for sim in self.sims.values()
                if sim.refs is not None
                for q, ref in sim.refs.items()
            },
            simulators_s=self._sim_s,
            objectives_s=self._obj_s,
            simulators_run=self._ran,
            not_ready_retries=self._retries_nr,
            wall_s=time.perf_counter() - start,
        )

    def _launch(self, name: str) -> int:
        """Start a fresh run of a simulator (or join the one in flight); its generation."""
        sim = self.sims[name]
        if sim.inflight is None:
            sim.launched_gen += 1
            self._submit_simulator(sim)
        return sim.launched_gen

    def _submit_simulator(self, sim: _SimulatorSlot) -> None:
        obs_refs, done_ref = self.executor.simulate(sim.simulator.name, self._params, sim.state)
        sim.inflight = (obs_refs, done_ref)
        self._pending[done_ref] = (TaskKind.SIMULATOR, sim.simulator.name)

    def _simulator_done(self, name: str, outcome: Any) -> None:
        sim = self.sims[name]
        assert sim.inflight is not None  # internal invariant: a pending sim ref is in flight
        if isinstance(outcome, rx.TaskFailed):
            sim.inflight = None
            if outcome.counts:
                sim.failures = self._retry_or_fail(
                    "simulator", name, outcome, sim.failures, sim.retries
                )
            self._submit_simulator(sim)
            return
        obs_refs, _ = sim.inflight
        sim.inflight = None
        sim.state = outcome.state
        sim.refs = {sim.simulator.observable(obs): r for obs, r in obs_refs.items()}
        sim.done_gen = sim.launched_gen
        self._sim_s[name] = self._sim_s.get(name, 0.0) + outcome.elapsed_s
        self._ran.append(name)

    def _retry_or_fail(
        self, kind: str, name: str, outcome: rx.TaskFailed, failures: int, limit: int
    ) -> int:
        """The failure count after recording a retry of a failed unit, or
        :class:`StepFailedError` when it may not be retried (any more)."""
        if not (outcome.retryable and failures < limit):
            raise StepFailedError(
                f"step {self._step}: {kind} {name!r} failed after {failures + 1} "
                f"attempt(s): {outcome.message}"
            )
        failures += 1
        self._on_event(
            "retry",
            {"step": self._step, "unit": name, "error": outcome.message, "attempt": failures},
        )
        return failures

    def _dispatch_ready(self) -> None:
        for slot in self._objs.values():
            if slot.result is not None or slot.inflight is not None:
                continue
            if all(self.sims[n].done_gen >= gen for n, gen in slot.needs.items()):
                slot.attempts += 1
                refs: dict[str, Any] = {}
                for q in slot.objective.required_observables:
                    sim_refs = self.sims[self.producer[q]].refs
                    assert sim_refs is not None  # internal invariant: done_gen >= 1
                    refs[q] = sim_refs[q]
                self._submit_objective(slot, refs)

    def _submit_objective(self, slot: _ObjectiveSlot, refs: dict[str, Any]) -> None:
        slot.inflight_refs = refs
        slot.inflight = self.executor.compute(slot.objective.name, self._params, refs, slot.state)
        self._pending[slot.inflight] = (TaskKind.OBJECTIVE, slot.objective.name)

    def _objective_done(self, name: str, outcome: Any) -> None:
        slot = self._objs[name]
        slot.inflight = None
        if isinstance(outcome, rx.TaskFailed):
            if outcome.counts:
                slot.failures = self._retry_or_fail(
                    "objective", name, outcome, slot.failures, slot.retries
                )
            self._submit_objective(slot, slot.inflight_refs)
            return
        self._obj_s[name] = self._obj_s.get(name, 0.0) + outcome.elapsed_s
        result = outcome.result
        if slot.stateful:
            slot.state = result.state
        if isinstance(result, NotReady):
            self._not_ready(slot, result)
            return
        slot.result = result

    def _not_ready(self, slot: _ObjectiveSlot, answer: NotReady) -> None:
        """Re-run what the objective asked for (all its simulators when it named none)."""
        name = slot.objective.name
        reason = answer.reason or "no reason given"
        if slot.attempts >= self.max_attempts:
            raise StepFailedError(
                f"step {self._step} could not be resolved after {slot.attempts} attempts: "
                f"objective {name!r} is still not ready: {reason}"
            )
        unread = [q for q in answer.needs_update if q not in slot.objective.required_observables]
        if unread:
            raise StepFailedError(
                f"step {self._step}: objective {name!r} answered NotReady with needs_update "
                f"{unread}, which it does not read; name observables from its "
                f"required_observables {list(slot.objective.required_observables)}"
            )
        rerun = (
            list(dict.fromkeys(self.producer[q] for q in answer.needs_update))
            if answer.needs_update
            else slot.sims
        )
        self._retries_nr += 1
        self._on_event(
            "not_ready",
            {"step": self._step, "objective": name, "reason": reason, "rerun": rerun},
        )
        # Newer than what was rejected: join a run in flight or start a fresh one.
        for sim_name in rerun:
            slot.needs[sim_name] = self._launch(sim_name)
