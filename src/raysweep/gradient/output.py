"""What the optimizer hands back: a step's output and state, the run's output.

:class:`OptimizerState` and :class:`StepOutput` are the functional interface
(``out = opt.step(params, state)``, optax-style: state in, new state out);
:class:`OptimizerOutput` is what ``run`` hands to its callback and returns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Callback", "LazyObservables", "OptimizerOutput", "OptimizerState", "StepOutput"]


class LazyObservables(Mapping[str, Any]):
    """A simulator's observables, fetched from Ray only when read (then kept)."""

    __slots__ = ("_cache", "_refs")

    def __init__(self, refs: Mapping[str, Any]) -> None:
        self._refs = dict(refs)
        self._cache: dict[str, Any] = {}

    def __getitem__(self, key: str) -> Any:
        if key not in self._cache:
            from raysweep.gradient import _ray_exec

            self._cache[key] = _ray_exec.fetch_observable(self._refs[key])
        return self._cache[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._refs)

    def __len__(self) -> int:
        return len(self._refs)

    def __repr__(self) -> str:
        return f"<observables {sorted(self._refs)}, fetched on access>"


@dataclass(frozen=True, slots=True)
class OptimizerOutput:
    """The state of a run after a step; what ``run`` returns after the last one.

    Attributes:
        step: the step just completed (0-based).
        params: the parameters after this step's update (the next step's).
        opt_state: the optax state after the update.
        grads: the aggregated gradient (``None`` when a resume found nothing to do).
        losses: ``{objective name: loss}`` at the step's parameters.
        loss: the mean of ``losses``.
        observables: ``{component: {name: value}}``. For an objective, its ``aux``
            figures. For a simulator, its exposed observables, fetched from Ray
            only when you read one, because they can be large; they are readable
            while the run goes on (in the callback), not after ``run`` returned.
        history: the stored data of every step so far (see :class:`RayOptimizer`).
        stopped_early: whether the callback stopped the run at this step.
    """

    step: int
    params: Any
    opt_state: Any
    grads: Any
    losses: Mapping[str, float]
    loss: float
    observables: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    history: tuple[Mapping[str, Any], ...] = ()
    stopped_early: bool = False


#: ``callback(output, step) -> (modified output or None, keep_going)``.
Callback = Callable[[OptimizerOutput, int], tuple[OptimizerOutput | None, bool]]


@dataclass(frozen=True, slots=True)
class OptimizerState:
    """Everything a step needs besides the params; pass it back to continue exactly.

    Attributes:
        optimizer_state: the optax state (``optimizer.init(params)`` at first).
        component_state: ``{unit name: state}`` for every simulator and
            objective (mythos's name): what each simulator's ``run`` returned,
            what each stateful objective returned with its answer; ``None`` for
            a unit that has none yet (and always for stateless objectives).
        observables: ``{qualified observable name: Ray ObjectRef}``: the last
            observables of each simulator, kept so objectives that reuse
            observables get them again without a new simulation. References,
            never values: the data stays in Ray's object store, and lives as
            long as this state does (and Ray does).
        step: the index of the next step (the number of steps taken).
    """

    optimizer_state: Any
    component_state: Mapping[str, Any] = field(default_factory=dict)
    observables: Mapping[str, Any] = field(default_factory=dict)
    step: int = 0


@dataclass(frozen=True, slots=True)
class StepOutput:
    """What :meth:`RayOptimizer.step` returns.

    Attributes:
        params: the parameters after the step's update.
        state: the state to pass to the next ``step``.
        grads: the aggregated gradient (at the step's parameters).
        losses: ``{objective name: loss}``.
        aux: ``{objective name: aux figures}``, as the objectives returned them.
        record: the step's data as ``run`` stores it: ``losses``, ``loss``,
            ``grad_norm``, ``params`` (the evaluated ones, as JSON), ``timings``,
            ``simulators_run``, ``not_ready_retries`` and ``aux`` (as JSON).
    """

    params: Any
    state: OptimizerState
    grads: Any
    losses: Mapping[str, float]
    aux: Mapping[str, Mapping[str, Any]]
    record: Mapping[str, Any] = field(default_factory=dict)

    @property
    def loss(self) -> float:
        """The mean of ``losses``."""
        return sum(self.losses.values()) / len(self.losses)
