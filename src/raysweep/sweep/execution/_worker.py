"""What runs inside a worker for one trial: call the objective, judge its result.

Pure Python with no Ray import, so the in-process backend and the unit tests use
exactly the code that runs on a cluster. Every outcome is turned into a plain
payload dict here, in the worker: a user exception becomes a stored traceback
instead of a Ray error whose class may not even unpickle on the driver.
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeAlias

from raysweep.errors import TrialInterrupted, TrialPaused
from raysweep.resources import limit_torch_memory
from raysweep.sweep.reporting import ReportSink, TrialContext, to_metric_value, trial_context
from raysweep.sweep.trial_files import TrialFiles

#: Bytes of a trial's stdout and stderr kept in ``output.log`` (``log_output``).
OUTPUT_CAP = 1 << 20

__all__ = ["MetricNames", "Objective", "execute_trial", "judge_result"]

Objective = Callable[[dict[str, Any]], Any]
#: The objective metric(s) every trial must return: one name, or several in order.
MetricNames: TypeAlias = str | Sequence[str]


def judge_result(value: Any, metric: MetricNames) -> dict[str, float]:
    """The metrics of an objective's return value, or ``ValueError`` saying why
    the trial must FAIL: an objective metric missing, NaN/Inf or non-numeric, or
    a plain number when several metrics are optimized.

    Judged here, in the worker, so that a searcher is only ever told a trial with
    a finite value for every objective metric.
    """
    names = (metric,) if isinstance(metric, str) else tuple(metric)
    wanted = ", ".join(names)
    if isinstance(value, Mapping):
        missing = [n for n in names if n not in value]
        if missing:
            keys = sorted(str(k) for k in value)
            what = "the metric" if len(missing) == 1 else "the metrics"
            raise ValueError(
                f"objective returned keys {keys} but not {what} "
                f"{', '.join(repr(n) for n in missing)}"
            )
        judged = {n: to_metric_value(n, value[n]) for n in names}  # their errors come first
        return {
            str(k): judged[k] if k in judged else to_metric_value(str(k), v)
            for k, v in value.items()
        }
    if len(names) > 1:
        raise ValueError(
            f"objective returned {_shown(value)} but {len(names)} metrics are optimized; "
            f"return a dict with keys {wanted}"
        )
    if value is None:
        raise ValueError(
            f"objective returned None; return a number or a dict with the metric {names[0]!r}"
        )
    return {names[0]: to_metric_value(names[0], value)}


def _shown(value: Any) -> str:
    if value is None:
        return "None"
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


def execute_trial(
    objective: Objective,
    trial_id: int,
    config: Mapping[str, Any],
    metric: MetricNames,
    *,
    env: Mapping[str, str] | None = None,
    sink: ReportSink | None = None,
    node: str | None = None,
    files: TrialFiles | None = None,
    log_output: bool = False,
) -> dict[str, Any]:
    """Run one trial and return its payload.

    The payload is ``{"ok": bool, "metrics": {...}, "error": str | None,
    "interrupt": "stop" | "pause" | None, "reports": [...], "started_at",
    "ended_at", "node", "pid"}``. ``interrupt`` says the scheduler ended the
    trial through its reports (whether the trial let ``TrialPruned`` propagate
    or caught it and returned).
    """
    for key, value in (env or {}).items():
        os.environ[key] = value
    limit_torch_memory(env or {})
    ctx = TrialContext(trial_id=trial_id, config=config, sink=sink, files=files)
    started = time.time()
    error: str | None = None
    metrics: dict[str, float] = {}
    try:
        with trial_context(ctx), _captured(files if log_output else None):
            value = objective(dict(config))
    except KeyboardInterrupt:
        raise  # a cancellation from the driver, not a result of the trial
    except TrialInterrupted as exc:
        # What the scheduler asked for; a trial may also raise TrialPruned itself.
        if ctx.interrupt is None:
            ctx.interrupt = "pause" if isinstance(exc, TrialPaused) else "stop"
    except BaseException:
        error = traceback.format_exc()
    else:
        try:
            metrics = judge_result(value, metric)
        except ValueError as exc:
            error = str(exc)  # one line says it better than a traceback into raysweep
    return {
        "ok": error is None and ctx.interrupt is None,
        "metrics": metrics if error is None else {},
        "error": error,
        "interrupt": ctx.interrupt,
        "reports": ctx.reports,
        "started_at": started,
        "ended_at": time.time(),
        "node": node or socket.gethostname(),
        "pid": os.getpid(),
    }


class _CappedLog(io.TextIOBase):
    """A text stream appending to ``output.log`` until :data:`OUTPUT_CAP` bytes."""

    def __init__(self, files: TrialFiles) -> None:
        files.path.mkdir(parents=True, exist_ok=True)
        self._path = files.path / "output.log"
        self._left = OUTPUT_CAP - (self._path.stat().st_size if self._path.exists() else 0)
        self._handle = open(self._path, "a", encoding="utf-8", errors="replace")  # noqa: SIM115

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if self._left > 0:
            data = text.encode("utf-8", errors="replace")
            if len(data) > self._left:
                data = data[: self._left] + b"\n[output.log: cap reached, the rest dropped]\n"
            self._handle.write(data.decode("utf-8", errors="replace"))
            self._handle.flush()
            self._left -= len(data)
        return len(text)

    def close(self) -> None:
        self._handle.close()
        super().close()


@contextlib.contextmanager
def _captured(files: TrialFiles | None) -> Iterator[None]:
    """Send the trial's Python-level stdout and stderr to its ``output.log``."""
    if files is None:
        yield
        return
    log = _CappedLog(files)
    try:
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            yield
    finally:
        log.close()
