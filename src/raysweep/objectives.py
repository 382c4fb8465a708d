"""Which trial is better: a metric with a direction, and the list of them.

This is the only module that compares two metric values. The study (best so
far, patience), the stop target, :class:`~raysweep.sweep.result.Result`, the
progress display, ``raysweep status`` and ``export``, and the searchers all ask
an :class:`Objectives` instead of writing ``<`` or ``>`` themselves, so
maximization, ties and several metrics are decided in one place.

With several metrics no single trial is "the best": the answer is the Pareto
front, the trials no other trial beats on every metric. Whatever still needs one
value (best so far, a stop target, patience) follows the *primary* metric: the
first, or the one ``stop.metric`` names.

Example:
    >>> objectives = Objectives.parse("accuracy", "max")
    >>> objectives.primary.better(0.9, 0.8)
    True
    >>> objectives.describe()
    'maximize accuracy'
    >>> Objectives.parse(["loss", "latency"], "min").describe()
    'minimize loss, minimize latency'
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from raysweep._checks import describe as _describe
from raysweep.errors import SpecError

if TYPE_CHECKING:
    from raysweep.trial import Trial

__all__ = [
    "Direction",
    "Metric",
    "Objectives",
    "OptimizesObjectives",
    "metric_directions",
    "metric_names",
]


class Direction(enum.Enum):
    """Whether lower or higher values of a metric are better."""

    MIN = "min"
    MAX = "max"

    @classmethod
    def parse(cls, value: Any) -> Direction:
        """``"min"``, ``"max"`` or a :class:`Direction`; anything else is a :class:`SpecError`."""
        if isinstance(value, Direction):
            return value
        if isinstance(value, str) and value in ("min", "max"):
            return cls(value)
        raise SpecError(f"expected 'min' or 'max', got {value!r}")

    def better(self, a: float, b: float) -> bool:
        """Whether ``a`` is strictly better than ``b``."""
        return a < b if self is Direction.MIN else a > b

    def reached(self, value: float, target: float) -> bool:
        """Whether ``value`` is at least as good as ``target``."""
        return value <= target if self is Direction.MIN else value >= target

    def loss(self, value: float) -> float:
        """``value`` turned into a quantity to minimize (negated for MAX); for
        libraries that only minimize, and for sorting."""
        return value if self is Direction.MIN else -value

    @property
    def verb(self) -> str:
        """``"minimize"`` or ``"maximize"``."""
        return "minimize" if self is Direction.MIN else "maximize"


@dataclass(frozen=True, slots=True)
class Metric:
    """One metric a trial reports and the direction in which it is optimized."""

    name: str
    direction: Direction = Direction.MIN

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise SpecError(f"a metric name must be a non-empty string, got {self.name!r}")

    def value(self, metrics: Mapping[str, Any]) -> float | None:
        """This metric in ``metrics`` as a finite float, or ``None`` if absent or not finite."""
        value = metrics.get(self.name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        number = float(value)
        return number if math.isfinite(number) else None

    def better(self, a: float, b: float) -> bool:
        """Whether value ``a`` is strictly better than value ``b``."""
        return self.direction.better(a, b)


def metric_names(value: Any) -> tuple[str, ...]:
    """The ``metric`` option in normal form: one name, or a list of distinct names.

    The rule for every place a metric list is given (``run()``, sweep files, a
    stored spec); messages do not name the option, the caller prefixes it.

    Raises:
        SpecError: an empty list, a name that is not a non-empty string, a repeat.
    """
    if isinstance(value, str):
        if not value.strip():
            raise SpecError(
                f"expected a non-empty string or a list of them, got {_describe(value)}"
            )
        return (value,)
    if not isinstance(value, list | tuple):
        raise SpecError(
            f"expected a non-empty string or a list of them such as [loss, latency], "
            f"got {_describe(value)}"
        )
    if not value:
        raise SpecError("expected a metric name or a non-empty list of names, got []")
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise SpecError(
                f"expected non-empty strings as metric names, got {_describe(item)} "
                f"in {list(value)!r}"
            )
    seen: set[str] = set()
    for item in value:
        if item in seen:
            raise SpecError(f"metric names must be distinct, {item!r} is given twice")
        seen.add(item)
    return tuple(value)


def metric_directions(value: Any, names: Sequence[str]) -> tuple[Direction, ...]:
    """The ``mode`` option for the metrics ``names``: one ``"min"``/``"max"`` for all,
    or a list with one per metric.

    Raises:
        SpecError: a bad entry (naming it and its metric) or a length mismatch.
    """
    if isinstance(value, str | Direction):
        return (Direction.parse(value),) * len(names)
    if not isinstance(value, list | tuple):
        raise SpecError(
            f"expected 'min' or 'max', or a list with one per metric, got {_describe(value)}"
        )
    if len(value) != len(names):
        raise SpecError(
            f"{len(value)} direction(s) given for {len(names)} metric(s) {list(names)!r}; "
            f"give one 'min'/'max' per metric, or one string for all"
        )
    directions = []
    for name, item in zip(names, value, strict=True):
        try:
            directions.append(Direction.parse(item))
        except SpecError:
            raise SpecError(
                f"expected 'min' or 'max' for each metric, got {_describe(item)} for {name!r}"
            ) from None
    return tuple(directions)


@dataclass(frozen=True, slots=True)
class Objectives:
    """What an experiment optimizes: one or more metrics, each with a direction.

    Attributes:
        metrics: the metrics in the order given (searchers see value vectors in
            this order).
        primary_index: which metric single-valued judgements follow (best so
            far, ``stop.target``, ``stop.patience``, :meth:`best`); the first
            unless ``stop.metric`` names another.
    """

    metrics: tuple[Metric, ...]
    primary_index: int = 0

    def __post_init__(self) -> None:
        if not self.metrics:
            raise SpecError("at least one metric is needed")
        names = [m.name for m in self.metrics]
        if len(set(names)) != len(names):
            raise SpecError(f"metric names must be distinct, got {names}")
        if not 0 <= self.primary_index < len(self.metrics):
            raise SpecError(
                f"primary_index: expected 0..{len(self.metrics) - 1}, got {self.primary_index}"
            )

    # -- building -----------------------------------------------------------------------
    @classmethod
    def parse(cls, metric: Any, mode: Any) -> Objectives:
        """From the ``metric`` and ``mode`` options of a sweep: a name or a list of
        names, and ``"min"``/``"max"`` for all or one per metric.

        Raises:
            SpecError: naming ``metric`` or ``mode`` and what is expected.
        """
        try:
            names = metric_names(metric)
        except SpecError as exc:
            raise SpecError(f"metric: {exc}") from None
        try:
            directions = metric_directions(mode, names)
        except SpecError as exc:
            raise SpecError(f"mode: {exc}") from None
        return cls(tuple(Metric(n, d) for n, d in zip(names, directions, strict=True)))

    @classmethod
    def single(cls, name: str, mode: str | Direction = Direction.MIN) -> Objectives:
        """One metric; ``mode`` is ``"min"`` or ``"max"``."""
        return cls.parse(name, mode.value if isinstance(mode, Direction) else mode)

    def with_primary(self, name: str | None) -> Objectives:
        """These objectives with ``name`` as the primary metric (``None``: unchanged).

        Raises:
            SpecError: ``name`` is not one of the metrics.
        """
        if name is None:
            return self
        if name not in self.names:
            raise SpecError(
                f"{name!r} is not an objective metric; expected one of: {', '.join(self.names)}"
            )
        return Objectives(self.metrics, self.names.index(name))

    def to_json(self) -> dict[str, Any]:
        """``{"metric": name, "mode": "min"|"max"}``, or lists with several metrics:
        the stored form, which older versions wrote for one metric."""
        if not self.multi:
            return {"metric": self.metrics[0].name, "mode": self.metrics[0].direction.value}
        return {"metric": list(self.names), "mode": [m.direction.value for m in self]}

    # -- reading ------------------------------------------------------------------------
    @property
    def primary(self) -> Metric:
        """The metric single-valued judgements follow: best so far, stop target,
        patience (the first metric unless ``stop.metric`` names another)."""
        return self.metrics[self.primary_index]

    @property
    def metric(self) -> str:
        """The name of the primary metric."""
        return self.primary.name

    @property
    def mode(self) -> Literal["min", "max"]:
        """``"min"`` or ``"max"``: the direction of the primary metric."""
        return "min" if self.primary.direction is Direction.MIN else "max"

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.metrics)

    @property
    def multi(self) -> bool:
        """Several metrics: the answer is a Pareto front, not one best trial."""
        return len(self.metrics) > 1

    def __iter__(self) -> Iterator[Metric]:
        return iter(self.metrics)

    def __len__(self) -> int:
        return len(self.metrics)

    def describe(self, *, ongoing: bool = False) -> str:
        """``"minimize loss"`` (or ``"minimize loss, maximize acc"``); with
        ``ongoing``, ``"minimizing loss"``."""
        verbs = [m.direction.verb[:-1] + "ing" if ongoing else m.direction.verb for m in self]
        return ", ".join(f"{verb} {m.name}" for verb, m in zip(verbs, self, strict=True))

    def value(self, trial: Trial) -> float | None:
        """The primary metric of a COMPLETED trial, else ``None``."""
        from raysweep.trial import TrialState

        if trial.state is not TrialState.COMPLETED:
            return None
        return self.primary.value(trial.metrics)

    def values(self, trial: Trial) -> tuple[float, ...] | None:
        """Every metric of a COMPLETED trial, in order, or ``None`` if it is not
        completed or one is missing or not finite."""
        from raysweep.trial import TrialState

        if trial.state is not TrialState.COMPLETED:
            return None
        values = [m.value(trial.metrics) for m in self.metrics]
        return tuple(v for v in values if v is not None) if None not in values else None

    def improves(self, value: float, best: float | None) -> bool:
        """Whether ``value`` beats the best value so far (``None``: nothing yet)."""
        return best is None or self.primary.better(value, best)

    def reached(self, value: float, target: float) -> bool:
        """Whether ``value`` meets a stop target."""
        return self.primary.direction.reached(value, target)

    def best(self, trials: Iterable[Trial]) -> Trial | None:
        """The COMPLETED trial with the best primary metric; the lowest id wins ties."""
        best: Trial | None = None
        best_value: float | None = None
        for trial in sorted(trials, key=lambda t: t.trial_id):
            value = self.value(trial)
            if value is not None and self.improves(value, best_value):
                best, best_value = trial, value
        return best

    def ranked(self, trials: Iterable[Trial], metric: str | None = None) -> list[Trial]:
        """COMPLETED trials with the primary metric (or ``metric``), best first
        (ties by id)."""
        from raysweep.trial import TrialState

        by = self.primary if metric is None else self.with_primary(metric).primary
        scored = [(by.value(t.metrics), t) for t in trials if t.state is TrialState.COMPLETED]
        kept = [(v, t) for v, t in scored if v is not None]
        kept.sort(key=lambda item: (by.direction.loss(item[0]), item[1].trial_id))
        return [t for _, t in kept]

    def dominates(self, a: Sequence[float], b: Sequence[float]) -> bool:
        """Pareto dominance of two value vectors (one value per metric)."""
        at_least = all(not m.better(y, x) for m, x, y in zip(self.metrics, a, b, strict=True))
        strictly = any(m.better(x, y) for m, x, y in zip(self.metrics, a, b, strict=True))
        return at_least and strictly

    def pareto_front(self, trials: Iterable[Trial]) -> list[Trial]:
        """The COMPLETED trials no other trial dominates, by id.

        With one metric that is every trial sharing the best value.
        """
        scored = [(v, t) for t in trials if (v := self.values(t)) is not None]
        front = [t for v, t in scored if not any(self.dominates(w, v) for w, _ in scored)]
        return sorted(front, key=lambda t: t.trial_id)

    def add_to_front(self, front: Sequence[Trial], trial: Trial) -> list[Trial] | None:
        """The front ``front`` becomes with ``trial`` added, or ``None`` if ``trial``
        changes nothing (not completed, a metric missing, or dominated).

        For callers that see trials one at a time (the progress display): the cost
        is the size of the front, not of the experiment.
        """
        new = self.values(trial)
        if new is None:
            return None
        kept: list[Trial] = []
        for other in front:
            old = self.values(other)
            if old is None or other.trial_id == trial.trial_id:
                continue
            if self.dominates(old, new):
                return None
            if not self.dominates(new, old):
                kept.append(other)
        return sorted([*kept, trial], key=lambda t: t.trial_id)


class OptimizesObjectives:
    """Mixin for records holding ``objectives``: ``metric`` and ``mode`` of the
    primary metric, the names single-objective code (and users) know."""

    __slots__ = ()
    objectives: Objectives

    @property
    def metric(self) -> str:
        """The name of the optimized (primary) metric."""
        return self.objectives.metric

    @property
    def mode(self) -> Literal["min", "max"]:
        """``"min"`` or ``"max"`` for the primary metric."""
        return self.objectives.mode
