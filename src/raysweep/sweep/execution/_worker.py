"""What runs inside a worker for one trial: call the objective, judge its result.

Pure Python with no Ray import, so the in-process backend and the unit tests use
exactly the code that runs on a cluster. Every outcome is turned into a plain
payload dict here, in the worker: a user exception becomes a stored traceback
instead of a Ray error whose class may not even unpickle on the driver.
"""

from __future__ import annotations

import os
import socket
import time
import traceback
from collections.abc import Callable, Mapping
from typing import Any

from raysweep.sweep.reporting import ReportSink, TrialContext, to_metric_value, trial_context

__all__ = ["Objective", "execute_trial", "judge_result"]

Objective = Callable[[dict[str, Any]], Any]


def judge_result(value: Any, metric: str) -> dict[str, float]:
    """The metrics of an objective's return value, or ``ValueError`` saying why
    the trial must FAIL (missing metric, NaN/Inf, non-numeric, wrong type)."""
    if isinstance(value, Mapping):
        if metric not in value:
            keys = sorted(str(k) for k in value)
            raise ValueError(f"objective returned keys {keys} but not the metric {metric!r}")
        return {str(k): to_metric_value(str(k), v) for k, v in value.items()}
    if value is None:
        raise ValueError(
            f"objective returned None; return a number or a dict with the metric {metric!r}"
        )
    return {metric: to_metric_value(metric, value)}


def execute_trial(
    objective: Objective,
    trial_id: int,
    config: Mapping[str, Any],
    metric: str,
    *,
    env: Mapping[str, str] | None = None,
    sink: ReportSink | None = None,
    node: str | None = None,
) -> dict[str, Any]:
    """Run one trial and return its payload.

    The payload is ``{"ok": bool, "metrics": {...}, "error": str | None,
    "reports": [...], "started_at", "ended_at", "node", "pid"}``.
    """
    for key, value in (env or {}).items():
        os.environ[key] = value
    ctx = TrialContext(trial_id=trial_id, config=config, sink=sink)
    started = time.time()
    error: str | None = None
    metrics: dict[str, float] = {}
    try:
        with trial_context(ctx):
            value = objective(dict(config))
    except KeyboardInterrupt:
        raise  # a cancellation from the driver, not a result of the trial
    except BaseException:
        error = traceback.format_exc()
    else:
        try:
            metrics = judge_result(value, metric)
        except ValueError as exc:
            error = str(exc)  # one line says it better than a traceback into raysweep
    return {
        "ok": error is None,
        "metrics": metrics if error is None else {},
        "error": error,
        "reports": ctx.reports,
        "started_at": started,
        "ended_at": time.time(),
        "node": node or socket.gethostname(),
        "pid": os.getpid(),
    }
