"""When to stop the whole experiment early: time budget, target, patience.

The runner asks :meth:`Stop.reason` after every finished trial; a non-``None``
reason stops it. No new trial starts; trials still running are cancelled and
stored as ABANDONED, so a resume runs them again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from raysweep._checks import did_you_mean, expect_int, expect_mapping, expect_number
from raysweep.errors import SpecError
from raysweep.objectives import Objectives

__all__ = ["Stop"]

_KEYS = ("time_budget_s", "target", "patience")


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

    Example:
        >>> Stop.coerce({"target": 0.1}).target
        0.1
    """

    time_budget_s: float | None = None
    target: float | None = None
    patience: int | None = None

    def __post_init__(self) -> None:
        _field("time_budget_s", self.time_budget_s, lambda v: expect_number(v, positive=True))
        _field("target", self.target, expect_number)
        _field("patience", self.patience, lambda v: expect_int(v, minimum=1))

    @classmethod
    def coerce(cls, value: Stop | Mapping[str, Any] | None) -> Stop:
        """Accept a :class:`Stop`, a mapping of its fields, or ``None`` (never stop early)."""
        if value is None:
            return cls()
        if isinstance(value, Stop):
            return value
        expect_mapping(value, "{time_budget_s: 3600, target: 0.01, patience: 50}")
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
        """Why the experiment should stop now, or ``None`` to go on."""
        if self.time_budget_s is not None and elapsed_s >= self.time_budget_s:
            return f"time budget of {self.time_budget_s:g} s used"
        if self.target is not None and best is not None and objectives.reached(best, self.target):
            return f"target {self.target:g} reached (best {best:g})"
        if self.patience is not None and since_improvement >= self.patience:
            return f"no improvement in the last {since_improvement} completed trials"
        return None
