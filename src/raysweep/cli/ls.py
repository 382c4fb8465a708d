"""``raysweep ls [STORAGE]``: the experiments under a storage folder, one line each.

Each line names the experiment, its kind, its status (as ``raysweep status``
judges it: a running one whose driver is gone is "interrupted"), its trial
counts (or steps done of planned), its best value (or the size of its Pareto
front), and when it last changed. Folders that hold no experiment are skipped;
an experiment that cannot be read is listed with its problem instead of ending
the listing. Everything is read-only.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import click
from rich.console import Console

from raysweep._text import format_value
from raysweep.errors import RaysweepError
from raysweep.store import Location, experiments_in
from raysweep.trial import TrialState
from raysweep.view import Experiment, load
from raysweep.view._spec import standing

__all__ = ["experiment_row", "ls_command"]

_HEADER = ["name", "kind", "status", "trials/steps", "best", "last change"]


@click.command("ls")
@click.argument("storage", required=False, metavar="[STORAGE]")
def ls_command(storage: str | None) -> None:
    """List the experiments under STORAGE: name, kind, status, trial counts (or steps),
    best value, last change.

    STORAGE is a folder holding experiment folders, or a file:// URL [default: the default
    storage of a sweep, runs]. Safe to run while experiments are running.
    """
    from raysweep.sweep.config import SweepConfig

    where = storage if storage is not None else str(SweepConfig.options()["storage"].default)
    now = time.time()
    rows = [_row(location, now) for location in experiments_in(where)]
    console = Console(highlight=False, soft_wrap=True)
    if not rows:
        console.print(f"no experiments in {where}", markup=False)
        return
    for line in _columns([_HEADER, *rows]):
        console.print(line, markup=False)


def _row(location: Location, now: float) -> list[str]:
    try:
        with load(location.url) as exp:
            return experiment_row(exp, now)
    except RaysweepError as exc:
        name = location.directory.name if location.directory is not None else str(location)
        return [name, "?", "unreadable", "-", "-", f"error: {exc}"]


def experiment_row(exp: Experiment, now: float) -> list[str]:
    """The cells of one experiment's line (see the module docstring)."""
    status = standing(exp.meta, now).status
    spec = exp.spec
    if exp.kind == "gradient":
        planned = spec.get("n_steps")
        size = f"{len(exp.steps)}/{planned} steps" if planned else f"{len(exp.steps)} steps"
        best = "-"
        if exp.steps:
            losses = [s.data.get("loss") for s in exp.steps]
            numbers = [v for v in losses if isinstance(v, int | float)]
            best = f"loss={format_value(min(numbers))}" if numbers else "-"
    else:
        counts = exp.counts()
        planned = spec.get("num_trials")
        total = f"{len(exp.trials)}/{planned}" if planned else str(len(exp.trials))
        parts = [f"{counts[s]} {s.value.lower()}" for s in TrialState if counts.get(s)]
        size = f"{total}: {', '.join(parts)}" if parts else f"{total}: none yet"
        best = _best(exp)
    changed = exp.last_change
    when = (
        "-"
        if changed is None
        else time.strftime("%Y-%m-%d %H:%M", time.localtime(changed.timestamp()))
    )
    return [exp.name, exp.kind, status, size, best, when]


def _best(exp: Experiment) -> str:
    objectives = exp.objectives
    if objectives is None:
        return "-"
    if objectives.multi:
        front = exp.pareto_front
        return f"pareto front of {len(front)}" if front else "-"
    best = exp.best
    if best is None:
        return "-"
    return f"{objectives.metric}={format_value(best.metrics.get(objectives.metric))}"


def _columns(rows: Sequence[Sequence[str]]) -> list[str]:
    """Rows as left-aligned text columns (the last one unpadded)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return [
        "  ".join([*(c.ljust(w) for c, w in zip(row, widths, strict=False)), row[-1]]).rstrip()
        for row in rows
    ]
