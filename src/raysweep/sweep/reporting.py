"""``raysweep.report``: intermediate results from inside a running trial.

The runner sets a trial context around the objective call; :func:`report` appends
to that trial's series and forwards each report to the driver while the trial
runs (the channel early stopping builds on). The full series also returns with
the trial's result, so what is stored is complete even if a live message is
late. Outside a trial (calling the objective by hand to debug it) a report is
dropped, so the same function runs unchanged in both places.
"""

from __future__ import annotations

import contextvars
import math
import numbers
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

__all__ = ["TrialContext", "current_trial", "report", "to_metric_value", "trial_context"]

ReportSink = Callable[[int, Mapping[str, Any]], None]


@dataclass(slots=True)
class TrialContext:
    """The running trial as seen from inside the objective."""

    trial_id: int
    config: Mapping[str, Any]
    sink: ReportSink | None = None
    reports: list[dict[str, Any]] = field(default_factory=list)


_current: contextvars.ContextVar[TrialContext | None] = contextvars.ContextVar(
    "raysweep_trial", default=None
)


@contextmanager
def trial_context(ctx: TrialContext) -> Iterator[TrialContext]:
    """Make ``ctx`` the current trial for the duration of the block."""
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)


def current_trial() -> TrialContext | None:
    """The trial this code runs in, or ``None`` outside a trial."""
    return _current.get()


def to_metric_value(name: str, value: Any) -> float:
    """A metric as a plain finite float, or ``ValueError`` saying why it is not one.

    Accepts Python and NumPy numbers and 0-d arrays (``.item()``); bools are
    refused because ``True`` as a loss is almost always a bug.
    """
    if hasattr(value, "item") and getattr(value, "shape", None) == ():
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"metric {name!r} is not a number: {value!r} ({type(value).__name__})")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"metric {name!r} is {number} (not finite)")
    return number


def report(step: int | None = None, **metrics: Any) -> None:
    """Record intermediate metrics of the running trial.

    Args:
        step: the training step / epoch this report belongs to; defaults to the
            number of earlier reports (0, 1, 2, ...).
        **metrics: metric names and finite numbers.

    Raises:
        ValueError: a metric is not a finite number, or ``step`` is not an integer.

    Example:
        >>> import raysweep
        >>> def objective(config):
        ...     for epoch in range(3):
        ...         raysweep.report(step=epoch, loss=1.0 / (epoch + 1))
        ...     return 1.0 / 3
        >>> objective({})  # outside a trial the reports are dropped
        0.3333333333333333
    """
    if not metrics:
        raise ValueError("report() needs at least one metric, e.g. report(step=3, loss=0.5)")
    ctx = _current.get()
    if step is not None and (isinstance(step, bool) or not isinstance(step, numbers.Integral)):
        raise ValueError(f"report(step=...) must be an integer, got {step!r}")
    if "step" in metrics or "time" in metrics:
        raise ValueError("'step' and 'time' are reserved names in report(); rename that metric")
    values = {name: to_metric_value(name, value) for name, value in metrics.items()}
    if ctx is None:
        return
    entry: dict[str, Any] = {"step": int(step) if step is not None else len(ctx.reports)}
    entry.update(values)
    entry["time"] = time.time()
    ctx.reports.append(entry)
    if ctx.sink is not None:
        ctx.sink(ctx.trial_id, entry)
