"""When to stop the whole experiment early: time budget, target, patience.

The runner asks :meth:`Stop.reason` after every finished trial; a non-``None``
reason stops it. No new trial starts; trials still running are cancelled and
stored as ABANDONED, so a resume runs them again.

``target`` and ``patience`` follow one value. With several objective metrics
``metric`` says which; the sweep configuration makes it the primary metric of
its :class:`~raysweep.objectives.Objectives`, so the best-so-far kept by the
study and handed to :meth:`Stop.reason` is already that metric's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from raysweep._checks import did_you_mean, expect_int, expect_mapping, expect_number, expect_str
from raysweep.errors import SpecError
from raysweep.objectives import Objectives

__all__ = ["Stop"]

_KEYS = ("time_budget_s", "target", "patience", "metric")


def _field(name: str, value: Any, check: Callable[[Any], Any]) -> None:
    if value is not None:
        try:
            check(value)
        except SpecError as exc:
            raise SpecError(f"{name}: {exc}") from None


@dataclass(frozen=True, slots=True)
class Stop:
    """Experiment-level stop conditions; any one that holds stops the run.

    Attributes:
        time_budget_s: wall-clock seconds this run may take (counted per run, so
            a resumed experiment gets a fresh budget).
        target: stop once the best metric reaches this value (``<=`` for mode
            "min", ``>=`` for "max").
        patience: stop after this many consecutive completed trials without an
            improvement of the best value.
        metric: the objective metric ``target`` and ``patience`` follow; needed
            when the experiment has several (default: the only one).

    Example:
        >>> Stop.coerce({"target": 0.1}).target
        0.1
        >>> Stop.coerce({"target": 0.1, "metric": "loss"}).metric
        'loss'
    """

    time_budget_s: float | None = None
    target: float | None = None
    patience: int | None = None
    metric: str | None = None

    def __post_init__(self) -> None:
        _field("time_budget_s", self.time_budget_s, lambda v: expect_number(v, positive=True))
        _field("target", self.target, expect_number)
        _field("patience", self.patience, lambda v: expect_int(v, minimum=1))
        _field("metric", self.metric, lambda v: expect_str(v, what="an objective metric name"))
        if self.metric is not None and self.target is None and self.patience is None:
            raise SpecError(
                f"metric: names the metric target or patience follow, but neither is given; "
                f"add one, e.g. {{target: 0.1, metric: {self.metric}}}"
            )

    @property
    def follows_value(self) -> bool:
        """Whether a condition needs one metric's best value (target, patience)."""
        return self.target is not None or self.patience is not None

    def check_metrics(self, names: Sequence[str]) -> None:
        """Refuse a ``metric`` that is not one of ``names``, and, with several
        metrics, a target or patience that does not say which one it follows.

        Raises:
            SpecError: ``"metric: ..."`` or ``"target: ..."`` (the caller adds ``stop.``).
        """
        if self.metric is not None and self.metric not in names:
            raise SpecError(
                f"metric: {self.metric!r} is not an objective metric; expected one of: "
                f"{', '.join(names)}"
            )
        if self.metric is None and self.follows_value and len(names) > 1:
            key, value = (
                ("target", self.target)
                if self.target is not None
                else (
                    "patience",
                    self.patience,
                )
            )
            raise SpecError(
                f"{key}: with {len(names)} metrics ({', '.join(names)}) it must follow one; "
                f"name it, e.g. stop: {{{key}: {value}, metric: {names[0]}}}"
            )

    @classmethod
    def coerce(cls, value: Stop | Mapping[str, Any] | None) -> Stop:
        """Accept a :class:`Stop`, a mapping of its fields, or ``None`` (never stop early)."""
        if value is None:
            return cls()
        if isinstance(value, Stop):
            return value
        expect_mapping(value, "{time_budget_s: 3600, target: 0.01, patience: 50, metric: loss}")
        for key in value:
            if key not in _KEYS:
                raise SpecError(
                    f"unknown key {key!r}{did_you_mean(key, _KEYS)}; expected any of: "
                    f"{', '.join(_KEYS)}"
                )
        return cls(**dict(value))

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in _KEYS if getattr(self, k) is not None}

    def reason(
        self,
        *,
        elapsed_s: float,
        best: float | None,
        objectives: Objectives,
        since_improvement: int,
    ) -> str | None:
        """Why the experiment should stop now, or ``None`` to go on.

        ``best`` and ``since_improvement`` are those of the primary metric of
        ``objectives``, which is :attr:`metric` when one is named.
        """
        if self.time_budget_s is not None and elapsed_s >= self.time_budget_s:
            return f"time budget of {self.time_budget_s:g} s used"
        which = f" of {objectives.metric}" if objectives.multi else ""
        if self.target is not None and best is not None and objectives.reached(best, self.target):
            return f"target {self.target:g}{which} reached (best {best:g})"
        if self.patience is not None and since_improvement >= self.patience:
            return f"no improvement{which} in the last {since_improvement} completed trials"
        return None
