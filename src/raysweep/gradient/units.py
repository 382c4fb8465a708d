"""Simulators and objectives: the two kinds of unit a gradient run schedules.

A :class:`Simulator` turns parameters into observables (trajectories, energies)
and carries a state from one run to the next; an :class:`Objective` turns the
observables it declares into a loss and a gradient, or answers :class:`NotReady`.
Both are plain picklable objects: the optimizer ships them to Ray worker
processes, so they hold configuration only, never open files or live handles.
A unit stays in one worker process for the whole run, so what it caches at
module level (imports, JIT-compiled functions) is reused from step to step;
everything that must survive a crash (its state) goes back to the driver.

Names route the data. ``Simulator.create_n(3, name="md")`` makes ``md.0``,
``md.1`` and ``md.2``; the observable ``trajectory`` of ``md.1`` is known as
``trajectory.MySim.md.1`` (observable, class, simulator name), and objectives
list such qualified names in ``required_observables``.
"""

from __future__ import annotations

import abc
import inspect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from raysweep.errors import SpecError
from raysweep.resources import SchedulerHints

__all__ = [
    "NotReady",
    "Objective",
    "ObjectiveResult",
    "Simulator",
    "takes_state",
    "validate_units",
]

_S = TypeVar("_S", bound="Simulator")


@dataclass(frozen=True, slots=True)
class ObjectiveResult:
    """What an objective computed: a loss, its gradient and extra figures.

    Attributes:
        loss: the scalar loss (stored and shown as a float).
        grads: gradient of ``loss`` with respect to the parameters: a pytree with
            the structure of the parameters (JAX arrays or NumPy arrays).
        aux: small JSON-friendly figures (numbers, short lists) to store with the
            step and show to the callback, e.g. ``{"density": 0.81}``.
        state: for an objective whose ``compute`` takes ``state``: its state for
            the next step (small and JSON-friendly, like a simulator's; it is
            checkpointed). Ignored for objectives without a ``state`` argument.
    """

    loss: float
    grads: Any
    aux: Mapping[str, Any] = field(default_factory=dict)
    state: Any = None


@dataclass(frozen=True, slots=True)
class NotReady:
    """An objective's answer that its observables cannot give a usable gradient.

    The optimizer then runs again the simulators exposing ``needs_update`` (all
    the simulators the objective reads when it names none) and asks again; a
    ``NotReady`` on the last allowed attempt of a step fails the step with ``reason``.

    Attributes:
        reason: why, in a few words (``"ESS 12 < 50"``); it ends up in the error.
        needs_update: qualified names of the observables that must be refreshed
            (mythos's ``needs_update``), e.g. ``(sim.observable("trajectory"),)``;
            each must be one the objective reads.
        state: for an objective whose ``compute`` takes ``state``: the state it
            receives on the retry (and on the next step if the retry fails).

    Example:
        >>> NotReady("ESS 12 < 50", needs_update=["trajectory.MySim.md.1"]).needs_update
        ('trajectory.MySim.md.1',)
    """

    reason: str = ""
    needs_update: Sequence[str] = ()
    state: Any = None

    def __post_init__(self) -> None:
        names = self.needs_update
        if isinstance(names, str) or not isinstance(names, Iterable):
            raise SpecError(
                f"NotReady.needs_update must be a list of qualified observable names, got {names!r}"
            )
        names = tuple(names)
        bad = [n for n in names if not isinstance(n, str) or not n]
        if bad:
            raise SpecError(
                f"NotReady.needs_update must hold qualified observable names "
                f"(sim.observable('x')), got {bad!r}"
            )
        object.__setattr__(self, "needs_update", names)


def takes_state(objective: Objective) -> bool:
    """Whether an objective's ``compute`` has a ``state`` argument (a stateful objective).

    Example:
        >>> class Counter(Objective):
        ...     def compute(self, params, observables, state=None):
        ...         return ObjectiveResult(0.0, {"x": 0.0}, state=(state or 0) + 1)
        >>> takes_state(Counter(name="c", required_observables=["x.S.s"]))
        True
    """
    try:
        parameters = inspect.signature(objective.compute).parameters
    except (TypeError, ValueError):  # a builtin or odd callable: no signature to read
        return False
    param = parameters.get("state")
    return param is not None and param.kind in (
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        inspect.Parameter.KEYWORD_ONLY,
    )


def _check_name(kind: str, name: object) -> str:
    if not isinstance(name, str) or not name or name != name.strip():
        raise SpecError(
            f"{kind} name must be a non-empty string without surrounding spaces, got {name!r}"
        )
    return name


class _Unit:
    """What simulators and objectives share: a name and resource hints."""

    name: str
    scheduler_hints: SchedulerHints

    def __init__(
        self,
        name: str | None,
        scheduler_hints: SchedulerHints | Mapping[str, Any] | None,
    ) -> None:
        kind = "simulator" if isinstance(self, Simulator) else "objective"
        self.name = _check_name(kind, type(self).__name__ if name is None else name)
        self.scheduler_hints = SchedulerHints.coerce(scheduler_hints)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class Simulator(_Unit, abc.ABC):
    """Base class of simulators: subclass it, list ``exposes`` and write :meth:`run`.

    A simulator runs (in its worker process, the same every step) each time
    fresh observables are needed. It receives the current parameters and the
    state its previous run returned (``None`` the first time), so a trajectory
    can continue where it stopped.

    Attributes:
        exposes: names of the observables every :meth:`run` returns (class level).
        name: unique name of this instance, also the name of its calls in Ray.
        scheduler_hints: resources of its worker process and retries of its runs.
        replica: index of this instance in :meth:`create_n` (0 when made alone);
            handy as a random seed.

    Example:
        >>> class Noise(Simulator):
        ...     exposes = ("samples",)
        ...     def run(self, params, state):
        ...         return {"samples": [params["x"]] * 3}, state
        >>> [s.observable("samples") for s in Noise.create_n(2, name="n")]
        ['samples.Noise.n.0', 'samples.Noise.n.1']
    """

    exposes: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        name: str | None = None,
        *,
        scheduler_hints: SchedulerHints | Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(name, scheduler_hints)
        self.replica = 0
        exposes = type(self).exposes
        if isinstance(exposes, str) or not isinstance(exposes, Sequence) or not exposes:
            raise SpecError(
                f"{type(self).__name__}.exposes must be a non-empty tuple of "
                f"observable names, got {exposes!r}"
            )
        for obs in exposes:
            _check_name("observable", obs)
        if len(set(exposes)) != len(exposes):
            raise SpecError(f"{type(self).__name__}.exposes lists a name twice: {exposes!r}")

    @classmethod
    def create_n(cls: type[_S], n: int, name: str | None = None, **kwargs: Any) -> list[_S]:
        """Make ``n`` instances named ``name.0`` … ``name.{n-1}``.

        Args:
            n: how many (at least 1).
            name: the common stem; the class name when omitted.
            **kwargs: passed to every constructor (``scheduler_hints``, ...).

        Returns:
            The instances, each with its ``replica`` index set.
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise SpecError(f"create_n needs a whole number n >= 1, got {n!r}")
        stem = _check_name("simulator", cls.__name__ if name is None else name)
        sims = []
        for i in range(n):
            sim = cls(name=f"{stem}.{i}", **kwargs)
            sim.replica = i
            sims.append(sim)
        return sims

    def observable(self, name: str) -> str:
        """The qualified name of one of this simulator's observables.

        Raises:
            SpecError: ``name`` is not in ``exposes``.
        """
        if name not in type(self).exposes:
            raise SpecError(
                f"simulator {self.name!r} does not expose {name!r}; "
                f"it exposes {list(type(self).exposes)}"
            )
        return f"{name}.{type(self).__name__}.{self.name}"

    def observables(self) -> list[str]:
        """Qualified names of everything this simulator exposes, in ``exposes`` order."""
        return [self.observable(obs) for obs in type(self).exposes]

    @abc.abstractmethod
    def run(self, params: Any, state: Any) -> tuple[Mapping[str, Any], Any]:
        """Simulate at ``params``, continuing from ``state``.

        Args:
            params: the current parameters (a pytree with NumPy leaves).
            state: what the previous run returned as its state; ``None`` at first
                and after a resume whose stored state could not be kept.

        Returns:
            ``(observables, new_state)``: a dict with exactly the names in
            ``exposes``, and the state for the next run. Keep the state small and
            JSON-friendly (numbers, arrays, dicts, lists) so a checkpoint can
            store it.
        """


class Objective(_Unit, abc.ABC):
    """Base class of objectives: subclass it and write :meth:`compute`.

    An objective whose ``compute`` takes a ``state`` argument
    (``def compute(self, params, observables, state=None)``) is *stateful*: it
    receives its own state (``None`` the first time) and returns the next one
    with its answer (``ObjectiveResult(..., state=s)`` or ``NotReady(..., state=s)``).
    What it returns is the state it gets next, on a not-ready retry in the
    same step or on the next step; it is part of the optimizer state and of
    every checkpoint, so keep it small and JSON-friendly. Objectives without a
    ``state`` argument keep nothing between calls.

    Attributes:
        name: unique name; the key of its loss in the stored steps.
        required_observables: qualified names of the observables it reads.
        scheduler_hints: resources of its worker process and retries of its calls.
        reuse_observables: whether it may be handed observables simulated at
            earlier parameters (True for reweighting objectives such as DiffTRe,
            which answer :class:`NotReady` when they are too stale). When every
            objective that reads a simulator allows this, that simulator only
            runs when an objective asks for fresh data; otherwise every step.

    Example:
        >>> class Mean(Objective):
        ...     def compute(self, params, observables):
        ...         return ObjectiveResult(loss=0.0, grads={"x": 0.0})
        >>> Mean(name="m", required_observables=["samples.Noise.n.0"]).required_observables
        ('samples.Noise.n.0',)
    """

    def __init__(
        self,
        name: str | None = None,
        required_observables: Iterable[str] = (),
        *,
        scheduler_hints: SchedulerHints | Mapping[str, Any] | None = None,
        reuse_observables: bool = False,
    ) -> None:
        super().__init__(name, scheduler_hints)
        if isinstance(required_observables, str):
            raise SpecError(
                f"objective {self.name!r}: required_observables must be a list of "
                f"names, got the string {required_observables!r}"
            )
        self.required_observables = tuple(required_observables)
        if not self.required_observables:
            raise SpecError(
                f"objective {self.name!r} requires no observables; list the "
                f"qualified names it reads, e.g. [sim.observable('trajectory')]"
            )
        for obs in self.required_observables:
            _check_name("observable", obs)
        self.reuse_observables = bool(reuse_observables)

    @abc.abstractmethod
    def compute(self, params: Any, observables: Mapping[str, Any]) -> ObjectiveResult | NotReady:
        """Loss and gradient at ``params`` from the observables.

        Args:
            params: the current parameters (a pytree with NumPy leaves).
            observables: ``{qualified name: value}`` for every required observable.

        Returns:
            An :class:`ObjectiveResult`, or :class:`NotReady` to ask for fresh
            simulation (at most once per step). A stateful objective (see the
            class) takes a third argument ``state`` and returns its next state in
            the answer's ``state``.
        """


def validate_units(
    simulators: Sequence[Simulator],
    objectives: Sequence[Objective],
) -> dict[str, str]:
    """Check names and wiring; map every qualified observable to its simulator.

    Raises:
        SpecError: no simulator or no objective, a unit of the wrong type, a name
            used twice (by two units, two observables, or a unit and an
            observable), or a required observable no simulator exposes. The
            message names every culprit, not just the first.
    """
    if not simulators:
        raise SpecError("no simulators given: pass at least one Simulator (see Simulator.create_n)")
    if not objectives:
        raise SpecError("no objectives given: pass at least one Objective reading the simulators")
    for sim in simulators:
        if not isinstance(sim, Simulator):
            raise SpecError(f"simulators must be Simulator instances, got {sim!r}")
    for obj in objectives:
        if not isinstance(obj, Objective):
            raise SpecError(f"objectives must be Objective instances, got {obj!r}")
    # Units and observables share one namespace: states are keyed by unit name and
    # observables by qualified name in the same OptimizerState and output.
    seen: dict[str, list[str]] = {}
    units: list[_Unit] = [*simulators, *objectives]
    for unit in units:
        seen.setdefault(unit.name, []).append(repr(unit))
    producer: dict[str, str] = {}
    for sim in simulators:
        for qualified in sim.observables():
            seen.setdefault(qualified, []).append(f"an observable of {sim!r}")
            producer[qualified] = sim.name
    dups = {name: owners for name, owners in seen.items() if len(owners) > 1}
    if dups:
        detail = "; ".join(f"{name!r} used by {', '.join(owners)}" for name, owners in dups.items())
        raise SpecError(
            f"names must be unique across simulators, objectives and observables: {detail}"
        )
    missing = [
        (obj.name, obs)
        for obj in objectives
        for obs in obj.required_observables
        if obs not in producer
    ]
    if missing:
        detail = "; ".join(f"objective {o!r} requires {obs!r}" for o, obs in missing)
        raise SpecError(
            f"required observables that no simulator exposes: {detail}. Exposed: {sorted(producer)}"
        )
    return producer
