"""What every integration logs, as plain names and numbers.

One reading of a trial's report, of its final metrics and of a gradient step,
shared by MLflow, TensorBoard and W&B, so the three show the same series under
the same names.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from raysweep.trial import Trial, TrialState

__all__ = [
    "MAX_PARAM_SERIES",
    "config_value",
    "final_metrics",
    "final_step",
    "gradient_metrics",
    "report_metrics",
    "report_step",
    "trial_failed",
]

#: Keys of a report that are not metrics (``time`` is the worker's clock).
_NOT_METRICS = frozenset({"step", "time"})
#: Parameter leaves of a gradient run logged as series at most (the first ones, in
#: order); a large array would flood the tracking server with series.
MAX_PARAM_SERIES = 100


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def report_metrics(report: Mapping[str, Any]) -> dict[str, float]:
    """The finite numbers of a report, without its ``step`` and ``time``.

    Example:
        >>> report_metrics({"step": 2, "time": 1e9, "loss": 0.5, "time_total_s": 3.0})
        {'loss': 0.5, 'time_total_s': 3.0}
    """
    out: dict[str, float] = {}
    for key, value in report.items():
        number = _number(value)
        if key not in _NOT_METRICS and number is not None:
            out[key] = number
    return out


def report_step(report: Mapping[str, Any]) -> int:
    """The report's ``step`` (every stored report has one)."""
    step = report.get("step")
    return step if isinstance(step, int) and not isinstance(step, bool) else 0


def final_step(trial: Trial) -> int:
    """The step a trial's final metrics are logged at: its last report's, else 0."""
    return trial.last_step or 0


def final_metrics(trial: Trial) -> dict[str, float]:
    """The trial's final metrics that its last report does not already hold with the
    same value (so a series does not get the same point twice).

    Example:
        >>> t = Trial(0, TrialState.COMPLETED, {}, metrics={"loss": 0.1, "acc": 0.9},
        ...           intermediate=({"step": 4, "loss": 0.1},))
        >>> final_metrics(t)
        {'acc': 0.9}
    """
    last = trial.intermediate[-1] if trial.intermediate else {}
    out: dict[str, float] = {}
    for key, value in trial.metrics.items():
        number = _number(value)
        if number is not None and _number(last.get(key)) != number:
            out[key] = number
    return out


def trial_failed(trial: Trial) -> bool:
    """Whether the trial ended in failure (an error or a time-out), not by a decision."""
    return trial.state is TrialState.FAILED


def config_value(value: Any) -> bool | int | float | str:
    """A configuration value as a library's hyperparameter: numbers, bools and
    strings as they are, anything else as JSON."""
    if isinstance(value, bool | int | float | str):
        return value
    try:
        return json.dumps(value, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return repr(value)


def _leaves(prefix: str, tree: Any, out: dict[str, float]) -> None:
    if len(out) >= MAX_PARAM_SERIES:
        return
    if isinstance(tree, Mapping):
        for key in tree:
            _leaves(f"{prefix}/{key}", tree[key], out)
    elif isinstance(tree, list | tuple):
        for i, item in enumerate(tree):
            _leaves(f"{prefix}/{i}", item, out)
    else:
        number = _number(tree)
        if number is not None:
            out[prefix] = number


def gradient_metrics(step_data: Mapping[str, Any]) -> dict[str, float]:
    """The series of one stored gradient step: ``loss``, ``loss/<objective>``,
    ``grad_norm``, ``params/<leaf>`` (the parameters the step evaluated, at most
    :data:`MAX_PARAM_SERIES`) and ``timings/<part>``.

    Example:
        >>> gradient_metrics({"loss": 1.0, "losses": {"fit": 1.0}, "grad_norm": 0.5,
        ...                   "params": {"a": [1.0, 2.0]}, "timings": {"step_s": 0.1}})
        {'loss': 1.0, 'grad_norm': 0.5, 'loss/fit': 1.0, 'timings/step_s': 0.1, 'params/a/0': 1.0, 'params/a/1': 2.0}
    """  # noqa: E501 - a doctest's output is one line
    out: dict[str, float] = {}
    for key in ("loss", "grad_norm"):
        number = _number(step_data.get(key))
        if number is not None:
            out[key] = number
    for group, prefix in (("losses", "loss"), ("timings", "timings")):
        values = step_data.get(group)
        if isinstance(values, Mapping):
            for name, value in values.items():
                number = _number(value)
                if number is not None:
                    out[f"{prefix}/{name}"] = number
    params: dict[str, float] = {}
    _leaves("params", step_data.get("params"), params)
    out.update(params)
    return out
