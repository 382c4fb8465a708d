"""``raysweep.report`` and the checkpoint functions, from inside a running trial.

The runner sets a trial context around the objective call; :func:`report` appends
to that trial's series and forwards each report to the driver while the trial
runs. The full series also returns with the trial's result, so what is stored is
complete even if a live message is late.

The channel runs both ways when a scheduler judges reports: the sink then
returns the driver's decision on that report, and ``report`` raises
:class:`~raysweep.errors.TrialPruned` (or ``TrialPaused``) in the trial, which
may catch it to clean up. Without a scheduler a report is fire and forget.

Outside a trial (calling the objective by hand to debug it) a report is
dropped, a checkpoint is not saved and none is loaded, so the same function runs
unchanged in both places.
"""

from __future__ import annotations

import contextvars
import math
import numbers
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from raysweep.errors import RaysweepError, TrialPaused, TrialPruned

if TYPE_CHECKING:
    from raysweep.sweep.trial_files import TrialFiles

__all__ = [
    "TrialContext",
    "current_trial",
    "load_checkpoint",
    "report",
    "save_checkpoint",
    "to_metric_value",
    "trial_context",
    "trial_dir",
]

#: Forwards one report to the driver; returns the driver's decision on it when a
#: scheduler judges reports ("continue", "stop", "pause"), else ``None``.
ReportSink = Callable[[int, Mapping[str, Any]], "str | None"]


@dataclass(slots=True)
class TrialContext:
    """The running trial as seen from inside the objective."""

    trial_id: int
    config: Mapping[str, Any]
    sink: ReportSink | None = None
    reports: list[dict[str, Any]] = field(default_factory=list)
    #: The trial's folder (checkpoints, files); ``None`` where there is none.
    files: TrialFiles | None = None
    #: "stop" or "pause" once the driver said so; every later report raises again.
    interrupt: str | None = None
    #: When this run of the trial began (``time_total_s`` of a report counts from it).
    started: float = field(default_factory=time.time)


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
    reserved = [name for name in ("step", "time", "time_total_s") if name in metrics]
    if reserved:
        raise ValueError(
            f"{reserved[0]!r} is a reserved name in report() (with 'step', 'time' and "
            f"'time_total_s'); rename that metric"
        )
    values = {name: to_metric_value(name, value) for name, value in metrics.items()}
    if ctx is None:
        return
    entry: dict[str, Any] = {"step": int(step) if step is not None else len(ctx.reports)}
    entry.update(values)
    entry["time"] = time.time()
    entry["time_total_s"] = entry["time"] - ctx.started
    if ctx.interrupt is None:
        ctx.reports.append(entry)
        if ctx.sink is not None:
            decision = ctx.sink(ctx.trial_id, entry)
            if decision in ("stop", "pause"):
                ctx.interrupt = decision
    if ctx.interrupt == "stop":
        raise TrialPruned(f"trial {ctx.trial_id} was pruned by the scheduler")
    if ctx.interrupt == "pause":
        raise TrialPaused(f"trial {ctx.trial_id} was paused by the scheduler")


def save_checkpoint(value: Any) -> Path | None:
    """Store a checkpoint of the running trial: any picklable object (a dict of
    arrays, a model's ``state_dict()``), or the path of a folder to copy.

    Written atomically under the trial's folder; the newest ``keep_checkpoints``
    (2 by default) are kept. A trial run again (a lost worker, a resume after a
    crash, a pause) finds it with :func:`load_checkpoint`. Returns the
    checkpoint's folder; outside a trial nothing is saved and ``None`` returned.

    Example:
        >>> import raysweep
        >>> def objective(config):
        ...     state = raysweep.load_checkpoint() or {"epoch": 0}
        ...     for epoch in range(state["epoch"], 3):
        ...         raysweep.save_checkpoint({"epoch": epoch + 1})
        ...         raysweep.report(step=epoch, loss=1.0 / (epoch + 1))
        ...     return 1.0 / 3
        >>> objective({})
        0.3333333333333333
    """
    ctx = _current.get()
    if ctx is None:
        return None
    if ctx.files is None:
        raise RaysweepError(
            "save_checkpoint: this experiment has no folder for trial files (its store is "
            "not a folder on disk); use a storage folder to keep checkpoints"
        )
    step = ctx.reports[-1]["step"] if ctx.reports else None
    return ctx.files.save(value, step=step)


def load_checkpoint() -> Any:
    """The newest checkpoint of the running trial (the object saved, or the path of
    the saved folder's copy), or ``None`` when there is none: a first run, or
    outside a trial. After population-based training's exploit it is the donor
    trial's checkpoint."""
    ctx = _current.get()
    if ctx is None or ctx.files is None:
        return None
    return ctx.files.load()


def trial_dir() -> Path:
    """A folder for the running trial's own outputs (``<experiment>/trials/<id>/files``,
    created now). Outside a trial: a new temporary folder, so the code runs by hand."""
    ctx = _current.get()
    if ctx is None or ctx.files is None:
        import tempfile

        return Path(tempfile.mkdtemp(prefix="raysweep-trial-"))
    return ctx.files.files_dir()
