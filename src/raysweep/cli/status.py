"""``raysweep status DIR``: what an experiment is doing or did, read-only.

A sweep of one metric shows its best trial; a sweep of several shows its Pareto
front instead (the trials no other trial beats on every metric, sorted by the
first metric), since no single trial is the best there.

A sweep's RUNNING trials are shown in two groups: those running on a worker, and
those *queued*: dispatched, but still waiting in the cluster's queue for
resources (``started_at`` empty for :data:`~raysweep.sweep.execution.QUEUED_AFTER_S`
or more), with how long they have waited.

It reads through :func:`raysweep.load` (read-only), so it can be run any number
of times while a sweep or a gradient run is writing the same file (SQLite WAL
readers never block the writer), and on folders this user may only read. For a
"running" experiment it judges whether the driver is still there from the stored
driver and heartbeat (:func:`raysweep.store.judge_driver`).

``--watch`` refreshes the table in place (``rich.live``) until the run ends or
Ctrl-C; each refresh reads only what changed since the one before
(:meth:`raysweep.Experiment.refresh`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.live import Live
from rich.text import Text

from raysweep._text import format_config, format_duration, format_value
from raysweep.cli._format import display_path
from raysweep.objectives import Objectives
from raysweep.store import HEARTBEAT_KEY, DriverState, DriverVerdict, ExperimentStore, StepRecord
from raysweep.sweep.execution import QUEUED_AFTER_S
from raysweep.trial import Trial, TrialState
from raysweep.view import Experiment, load
from raysweep.view._frames import flatten_scalars
from raysweep.view._spec import standing

__all__ = ["render_status", "status_command"]

#: Parameters shown for a gradient run before the rest are counted.
_MAX_PARAMS = 16
#: Queued trial ids listed before the rest are counted.
_MAX_QUEUED_IDS = 10
#: Pareto-front trials listed before the rest are counted.
_MAX_FRONT_ROWS = 20


@click.command("status")
@click.argument("directory", metavar="DIR")
@click.option(
    "--watch",
    is_flag=True,
    help="Refresh in place until the run ends (or Ctrl-C), reading only what changed.",
)
@click.option(
    "--interval",
    type=click.FloatRange(min=0, min_open=True),
    default=2.0,
    show_default=True,
    metavar="S",
    help="Seconds between refreshes with --watch.",
)
def status_command(directory: str, watch: bool, interval: float) -> None:
    """Show an experiment: state, trial counts, best trial (or Pareto front), running
    trials, last error.

    DIR is the experiment folder (runs/NAME), its experiment.db, or a file:// URL. For a
    gradient run: steps done, last losses, gradient norm, parameters, step time.
    Safe to run while the experiment is running.
    """
    console = Console(highlight=False, soft_wrap=True)
    with load(directory) as exp:
        if watch:
            _watch(exp, console, directory, interval)
        else:
            render_status(exp, console, directory, now=time.time())


def _watch(exp: Experiment, console: Console, directory: str, interval: float) -> None:
    """Show the status, refreshed every ``interval`` seconds, until the run is no
    longer running (shown once more, as it ended) or Ctrl-C."""
    try:
        with Live(console=console, auto_refresh=False, transient=False) as live:
            while True:
                now = time.time()
                live.update(_text(status_lines(exp, directory, now)), refresh=True)
                if standing(exp.meta, now).status != "running":
                    return
                time.sleep(interval)
                exp.refresh()
    except KeyboardInterrupt:
        return  # watching ended by the user: nothing failed


def _text(lines: list[str]) -> Text:
    text = Text(lines[0], style="bold")
    for line in lines[1:]:
        text.append("\n" + line)
    return text


def render_status(
    source: Experiment | ExperimentStore,
    console: Console,
    directory: str | Path,
    now: float,
    host: str | None = None,
) -> None:
    """Print the status of the experiment (a loaded one, or an open store).

    Args:
        now: Unix time, for ages and the heartbeat judgement.
        host: this machine's name (default ``socket.gethostname()``); a driver
            on this host is checked by its pid.
    """
    exp = source if isinstance(source, Experiment) else Experiment(source)
    lines = status_lines(exp, directory, now, host)
    console.print(lines[0], style="bold", markup=False)
    for line in lines[1:]:
        console.print(line, markup=False, highlight=False, soft_wrap=True)


def status_lines(
    exp: Experiment, directory: str | Path, now: float, host: str | None = None
) -> list[str]:
    """The status as text lines, the title first (see :func:`render_status`)."""
    spec = exp.spec
    meta = exp.meta
    judged = standing(meta, now, host)
    verdict = judged.verdict
    title = f"{spec.get('name', '?')} ({exp.kind}): {judged.status}" + (
        f", {judged.reason}" if judged.reason else ""
    )
    grid = _Lines()
    shown = str(directory)
    grid.row("folder", shown if "://" in shown else display_path(shown))
    started = meta.get("started_at")
    created = exp.events("created")
    resumes = len(exp.events("resumed"))
    if created and resumes:  # "started" alone would read as the experiment's start
        grid.row("created", _when(created[0]["time"], now))
        times = "once" if resumes == 1 else f"{resumes} times"
        if started is not None:
            grid.row("resumed", f"{times}, last {_when(started, now)}")
    elif started is not None:
        grid.row("started", _when(started, now))
    if (
        verdict is not None
        and verdict.state is DriverState.RUNNING
        and verdict.last_seen is not None
    ):
        grid.row("driver", _heartbeat_line(verdict, meta.get(HEARTBEAT_KEY), now))
    if exp.kind == "gradient":
        _gradient(grid, spec, exp.steps, now)
    else:
        _sweep(grid, spec, exp, now)
    return [title, *grid.render()]


def _heartbeat_line(verdict: DriverVerdict, beat: Any, now: float) -> str:
    seen = now if verdict.last_seen is None else verdict.last_seen
    every = beat.get("interval_s") if isinstance(beat, dict) else None
    often = f", every {format_duration(every)}" if isinstance(every, int | float) else ""
    pid = "?" if verdict.pid is None else verdict.pid
    return (
        f"host {verdict.host or '?'} pid {pid}, "
        f"heartbeat {format_duration(max(0.0, now - seen))} ago{often}"
    )


class _Lines:
    """Label/value lines with aligned values, and small tables in between, as plain text.

    Plain text rather than rich tables: status output ends up in logs and
    ``watch`` windows, where padded, re-wrapped table cells read worse.
    """

    def __init__(self) -> None:
        self.items: list[tuple[str, str] | list[list[str]]] = []

    def row(self, label: str, value: str) -> None:
        self.items.append((label, value))

    def table(self, rows: list[list[str]]) -> None:
        self.items.append(rows)

    def render(self) -> list[str]:
        width = max((len(item[0]) for item in self.items if isinstance(item, tuple)), default=0)
        lines: list[str] = []
        for item in self.items:
            if isinstance(item, tuple):
                lines.append(f"{item[0]:<{width}}  {item[1]}".rstrip())
                continue
            widths = [max(len(row[i]) for row in item) for i in range(len(item[0]))]
            for row in item:
                cells = "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True))
                lines.append(f"{'':<{width}}  {cells}".rstrip())
        return lines


def _when(value: Any, now: float) -> str:
    if isinstance(value, int | float) and math.isfinite(value):
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(value))
        return f"{stamp} ({format_duration(now - value)} ago)"
    return str(value)


# -- sweeps ---------------------------------------------------------------------------


def _sweep(grid: _Lines, spec: Mapping[str, Any], exp: Experiment, now: float) -> None:
    objectives = exp.objectives or Objectives.single("loss")
    searcher = spec.get("searcher") or {}
    searcher_name = searcher.get("name", "?") if isinstance(searcher, Mapping) else searcher
    scheduler = spec.get("scheduler")
    scheduler_name = scheduler.get("name") if isinstance(scheduler, Mapping) else scheduler
    judged = f", scheduler {scheduler_name}" if scheduler_name not in (None, "fifo") else ""
    grid.row(
        "objective",
        f"{spec.get('objective', '?')}, {objectives.describe()}, searcher {searcher_name}{judged}",
    )
    summary = exp.meta.get("searcher_summary")
    if isinstance(summary, str):
        grid.row("searcher", summary)
    trials = exp.trials
    counts = exp.counts()
    planned = spec.get("num_trials")
    head = f"{len(trials)} of {planned}" if planned else f"{len(trials)}"
    in_flight = [t for t in trials if t.state is TrialState.RUNNING]
    queued = [
        t
        for t in in_flight
        if t.started_at is None and t.queued_at is not None and now - t.queued_at >= QUEUED_AFTER_S
    ]
    waiting = {t.trial_id for t in queued}
    running = [t for t in in_flight if t.trial_id not in waiting]
    parts: list[str] = []
    for state in TrialState:
        if state is TrialState.RUNNING:  # told apart: on a worker, or waiting for one
            parts += [f"{len(running)} running"] if running else []
            parts += [f"{len(queued)} queued"] if queued else []
        elif counts.get(state):
            parts.append(f"{counts[state]} {state.value.lower()}")
    grid.row("trials", f"{head}: {', '.join(parts)}" if parts else f"{head}: none yet")
    if objectives.multi:
        _front(grid, objectives, trials)
    else:
        best = objectives.best(trials)
        if best is not None:
            score = format_config({m.name: best.metrics.get(m.name) for m in objectives})
            grid.row("best", f"trial {best.trial_id}: {score}")
            grid.row("", format_config(best.config))
    if running:
        grid.row("running", f"{len(running)} trial(s)")
        grid.table(_running_table(running, now))
    if queued:
        waited = max(now - (t.queued_at or 0.0) for t in queued)
        ids = ", ".join(str(t.trial_id) for t in queued[:_MAX_QUEUED_IDS])
        if len(queued) > _MAX_QUEUED_IDS:
            ids += f", ... {len(queued) - _MAX_QUEUED_IDS} more"
        grid.row(
            "queued",
            f"{len(queued)} trial(s) waiting for resources, the longest for "
            f"{format_duration(waited)}: trial {ids}",
        )
    failed = [t for t in trials if t.state is TrialState.FAILED]
    if failed:
        last = max(failed, key=lambda t: (t.ended_at or 0.0, t.trial_id))
        grid.row("last error", f"trial {last.trial_id}: {_error_line(last.error)}")


def _front(grid: _Lines, objectives: Objectives, trials: Sequence[Trial]) -> None:
    """The Pareto front: its size, then one row per trial with every objective
    metric and its config, best first by the first metric."""
    first = objectives.metrics[0]
    front = objectives.ranked(objectives.pareto_front(trials), metric=first.name)
    if not front:
        return
    grid.row(
        "pareto front",
        f"{len(front)} trial(s) no other trial beats on every metric, by {first.name}:",
    )
    rows = [["trial", *objectives.names, "config"]]
    for t in front[:_MAX_FRONT_ROWS]:
        values = [format_value(t.metrics.get(name)) for name in objectives.names]
        rows.append([str(t.trial_id), *values, format_config(t.config)])
    if len(front) > _MAX_FRONT_ROWS:
        more = f"{len(front) - _MAX_FRONT_ROWS} more (raysweep export lists them)"
        rows.append(["...", *([""] * len(objectives)), more])
    grid.table(rows)


def _running_table(trials: Sequence[Trial], now: float) -> list[list[str]]:
    rows = [["trial", "started", "elapsed", "node", "attempt", "last report"]]
    for t in trials:
        began = t.started_at
        started = "-" if began is None else time.strftime("%H:%M:%S", time.localtime(began))
        elapsed = "-" if began is None else format_duration(now - began)
        last = t.intermediate[-1] if t.intermediate else {}
        report = format_config({k: v for k, v in last.items() if k not in ("time", "time_total_s")})
        rows.append([str(t.trial_id), started, elapsed, t.node or "-", str(t.attempts), report])
    return rows


def _error_line(error: str | None) -> str:
    """The exception line of a stored error (its last line when it holds a traceback)."""
    lines = [line.strip() for line in (error or "").splitlines() if line.strip()]
    return lines[-1] if lines else "unknown error"


# -- gradient runs --------------------------------------------------------------------


def _gradient(
    grid: _Lines, spec: Mapping[str, Any], steps: Sequence[StepRecord], now: float
) -> None:
    n_steps = spec.get("n_steps")
    for key in ("simulators", "objectives"):
        names = spec.get(key)
        if isinstance(names, list) and names:
            shown = ", ".join(str(n) for n in names[:6]) + (", ..." if len(names) > 6 else "")
            grid.row(key, f"{len(names)}: {shown}")
    done = len(steps)
    grid.row("steps", f"{done} / {n_steps}" if n_steps else str(done))
    if not steps:
        return
    last = steps[-1]
    data = last.data
    grid.row("last step", f"{last.step} ({format_duration(now - last.time)} ago)")
    if "loss" in data:
        grid.row("loss", format_value(data["loss"]))
    losses = data.get("losses")
    if isinstance(losses, Mapping) and losses:
        grid.row("losses", format_config(losses))
    if "grad_norm" in data:
        grid.row("grad norm", format_value(data["grad_norm"]))
    params = data.get("params")
    if params is not None:
        lines = _param_lines(params)
        for i, line in enumerate(lines):
            grid.row("params" if i == 0 else "", line)
    timings = data.get("timings")
    if isinstance(timings, Mapping) and timings:
        step_s = timings.get("step_s")
        others = {
            k: format_duration(v)
            for k, v in timings.items()
            if k != "step_s" and isinstance(v, int | float)
        }
        text = format_duration(step_s) if isinstance(step_s, int | float) else "-"
        grid.row("step time", text + (f" ({format_config(others)})" if others else ""))


def _param_lines(params: Any) -> list[str]:
    """One line per parameter: scalars as values, arrays summarized."""
    if not isinstance(params, Mapping):
        return [_short(params)]
    lines = [f"{key} = {_short(value)}" for key, value in _leaves(params)]
    if len(lines) > _MAX_PARAMS:
        lines = [*lines[:_MAX_PARAMS], f"... {len(lines) - _MAX_PARAMS} more"]
    return lines


def _leaves(params: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in params.items():
        path = f"{prefix}/{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            out.extend(_leaves(value, path))
        else:
            out.append((path, value))
    return out


def _short(value: Any) -> str:
    if isinstance(value, list | tuple):
        flat = [v for _, v in flatten_scalars(list(value), max_list=10**9)]
        numbers = [v for v in flat if isinstance(v, int | float) and not isinstance(v, bool)]
        if len(flat) <= 6:
            return "[" + ", ".join(format_value(v) for v in flat) + "]"
        if numbers:
            finite = [float(v) for v in numbers if math.isfinite(v)]
            stats = f", min {min(finite):.4g}, max {max(finite):.4g}" if finite else ""
            return f"[{len(flat)} values{stats}]"
        return f"[{len(flat)} values]"
    return format_value(value)
