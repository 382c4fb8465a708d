"""Which trial is better: a metric with a direction, and the list of them.

This is the only module that compares two metric values. The study (best so
far, patience), the stop target, :class:`~raysweep.sweep.result.Result`, the
progress display, ``raysweep status`` and ``export``, and the searchers all ask
an :class:`Objectives` instead of writing ``<`` or ``>`` themselves, so
maximization, ties and (later) several metrics are decided in one place.

Example:
    >>> objectives = Objectives.parse("accuracy", "max")
    >>> objectives.primary.better(0.9, 0.8)
    True
    >>> objectives.describe()
    'maximize accuracy'
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from raysweep.errors import SpecError

if TYPE_CHECKING:
    from raysweep.trial import Trial

__all__ = ["Direction", "Metric", "Objectives", "OptimizesObjectives"]


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


@dataclass(frozen=True, slots=True)
class Objectives:
    """What an experiment optimizes: one or more metrics, each with a direction.

    Only a single metric can be given to :func:`raysweep.run` today; the type
    already holds several so that Pareto fronts and multi-objective searchers
    plug in here without touching the callers.
    """

    metrics: tuple[Metric, ...]

    def __post_init__(self) -> None:
        if not self.metrics:
            raise SpecError("at least one metric is needed")
        names = [m.name for m in self.metrics]
        if len(set(names)) != len(names):
            raise SpecError(f"metric names must be distinct, got {names}")

    # -- building -----------------------------------------------------------------------
    @classmethod
    def parse(cls, metric: Any, mode: Any) -> Objectives:
        """From the ``metric`` and ``mode`` options of a sweep.

        Raises:
            SpecError: naming ``metric`` or ``mode`` and what is expected.
        """
        if not isinstance(metric, str) or not metric.strip():
            if isinstance(metric, list | tuple):
                raise SpecError(
                    f"metric: one metric name is supported, got the list {list(metric)!r}; "
                    f"optimize one metric and report the others as extra keys"
                )
            raise SpecError(f"metric: expected a non-empty string, got {metric!r}")
        try:
            direction = Direction.parse(mode)
        except SpecError as exc:
            raise SpecError(f"mode: {exc}") from None
        return cls((Metric(metric, direction),))

    @classmethod
    def single(cls, name: str, mode: str | Direction = Direction.MIN) -> Objectives:
        """One metric; ``mode`` is ``"min"`` or ``"max"``."""
        return cls.parse(name, mode.value if isinstance(mode, Direction) else mode)

    def to_json(self) -> dict[str, Any]:
        """``{"metric": name, "mode": "min"|"max"}``, the stored form."""
        return {"metric": self.metric, "mode": self.mode}

    # -- reading ------------------------------------------------------------------------
    @property
    def primary(self) -> Metric:
        """The metric searchers and stop conditions optimize."""
        return self.metrics[0]

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

    def ranked(self, trials: Iterable[Trial]) -> list[Trial]:
        """COMPLETED trials with the primary metric, best first (ties by id)."""
        scored = [(self.value(t), t) for t in trials]
        kept = [(v, t) for v, t in scored if v is not None]
        direction = self.primary.direction
        kept.sort(key=lambda item: (direction.loss(item[0]), item[1].trial_id))
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
        from raysweep.trial import TrialState

        scored: list[tuple[tuple[float, ...], Trial]] = []
        for trial in trials:
            if trial.state is not TrialState.COMPLETED:
                continue
            values = [m.value(trial.metrics) for m in self.metrics]
            if all(v is not None for v in values):
                scored.append((tuple(v for v in values if v is not None), trial))
        front = [t for v, t in scored if not any(self.dominates(w, v) for w, _ in scored if w != v)]
        return sorted(front, key=lambda t: t.trial_id)


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
