"""``raysweep export DIR``: an experiment as JSON or CSV, for notebooks and other tools.

``--what`` picks the table: ``trials`` (a sweep's default: one row per trial),
``reports`` (the ``raysweep.report()`` series of a sweep, long: one row per
trial, step and metric) or ``steps`` (a gradient run's default and only table:
one row per step). JSON holds an ``experiment`` header (the stored spec, status,
counts) and the rows, whole (trials with their config, metrics and reports;
steps with their data); CSV is the flat table a spreadsheet or
``pandas.read_csv`` wants, the same columns as ``raysweep.load(DIR)``'s
``trials_dataframe()``, ``reports_dataframe()`` and ``steps_dataframe()``.
For a sweep of several metrics each trial has ``pareto`` (true/false): whether it
is on the Pareto front, since no single trial is "the best" there.

Times are ISO-8601 text in UTC with milliseconds
(``2026-12-02T07:14:18.123+00:00``), never raw epoch numbers. The JSON is
strict: NaN and infinities, which Python would write as invalid ``NaN`` tokens,
become ``null``.
"""

from __future__ import annotations

import errno
import io
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from raysweep._files import write_text_atomic
from raysweep.errors import RaysweepError, SpecError
from raysweep.view import Experiment, load
from raysweep.view._frames import TIME_COLUMNS, iso_time, report_rows

__all__ = ["experiment_csv", "experiment_json", "export_command", "to_strict_json"]

#: What ``--what`` can name, and which kind of experiment has it.
_TABLES = {"trials": "sweep", "reports": "sweep", "steps": "gradient"}


@click.command("export")
@click.argument("directory", metavar="DIR")
@click.option(
    "--what",
    type=click.Choice(sorted(_TABLES)),
    default=None,
    help="The table: trials (one row per trial), reports (a sweep's report() series, one "
    "row per trial, step and metric) or steps (a gradient run's) [default: trials; steps "
    "for a gradient run].",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "json"]),
    default=None,
    help="Output format [default: from --output's extension, else json].",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file instead of standard output.",
)
def export_command(directory: str, what: str | None, fmt: str | None, output: Path | None) -> None:
    """Export an experiment's trials, report series or gradient steps as JSON or CSV.

    DIR is the experiment folder (runs/NAME), its experiment.db, or a file:// URL. Times
    are ISO-8601 in UTC. Safe to run while the experiment is running.
    """
    if fmt is None:
        fmt = "csv" if output is not None and output.suffix.lower() == ".csv" else "json"
    with load(directory) as exp:
        if fmt == "csv":
            text = experiment_csv(exp, what)
        else:
            text = to_strict_json(experiment_json(exp, what))
    if output is None:
        click.echo(text, nl=not text.endswith("\n"))
    else:
        write_output(output, text if text.endswith("\n") else text + "\n")


def _table(exp: Experiment, what: str | None) -> str:
    """The table ``--what`` names, checked against the kind of experiment."""
    if what is None:
        return "steps" if exp.kind == "gradient" else "trials"
    if _TABLES[what] != exp.kind:
        has = " or ".join(f"--what {w}" for w, kind in _TABLES.items() if kind == exp.kind)
        called = "a gradient run" if exp.kind == "gradient" else "a sweep"
        raise SpecError(f"--what {what}: {exp.name!r} is {called}, which has no {what}; use {has}")
    return what


def write_output(output: Path, text: str) -> None:
    """Write ``text`` to ``output`` whole or not at all (``write_text_atomic``),
    naming the file on failure.

    Raises:
        SpecError: the target cannot be written (no permission, no such folder):
            fixable input, exit 2.
        RaysweepError: the disk is full (or another I/O failure): exit 1.
    """
    try:
        write_text_atomic(output, text)
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EIO):
            raise RaysweepError(f"--output {output}: cannot write the export: {why}") from None
        raise SpecError(f"--output {output}: cannot write the export: {why}") from None


def experiment_json(exp: Experiment, what: str | None = None) -> dict[str, Any]:
    """``{"experiment": {...}, <table>: [...]}``: the header and the rows of ``what``."""
    table = _table(exp, what)
    experiment = exp.spec
    meta = exp.meta
    experiment.update(
        {
            "status": meta.get("status"),
            "stop_reason": meta.get("stop_reason"),
            "started_at": iso_time(meta.get("started_at")),
        }
    )
    if exp.kind == "gradient":
        steps = [{"step": s.step, "time": iso_time(s.time), **s.data} for s in exp.steps]
        return {"experiment": experiment, "steps": steps}
    experiment["counts"] = {state.value: n for state, n in exp.counts().items()}
    if table == "reports":
        rows = [{**r, "time": iso_time(r["time"])} for r in report_rows(exp.trials)]
        return {"experiment": experiment, "reports": rows}
    front = {t.trial_id for t in exp.pareto_front} if _multi(exp) else None
    trials = []
    for trial in exp.trials:
        row = trial.to_dict()
        for key in TIME_COLUMNS & row.keys():
            row[key] = iso_time(row[key])
        row["intermediate"] = [
            {**r, "time": iso_time(r["time"])} if "time" in r else r for r in row["intermediate"]
        ]
        if front is not None:
            row["pareto"] = trial.trial_id in front
        trials.append(row)
    return {"experiment": experiment, "trials": trials}


def _multi(exp: Experiment) -> bool:
    return exp.objectives is not None and exp.objectives.multi


def experiment_csv(exp: Experiment, what: str | None = None) -> str:
    """One row per trial (``config/<name>``, ``metrics/<name>`` columns, and ``pareto``
    with several metrics), per (trial, step, metric) of the reports, or per step of
    a gradient run (``loss``, ``grad_norm``, ``losses/<objective>``, scalar
    ``params/...``, ``timings/...``); times as ISO-8601 text."""
    table = _table(exp, what)
    if table == "steps":
        frame = exp.steps_dataframe()
    elif table == "reports":
        frame = exp.reports_dataframe()
    else:
        frame = exp.trials_dataframe()
    for column in frame.columns:
        if column in TIME_COLUMNS:
            frame[column] = [iso_time(v) for v in frame[column]]
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, lineterminator="\n")
    return buffer.getvalue()


def to_strict_json(value: Any) -> str:
    """Indented JSON that any parser accepts: non-finite floats become ``null``."""
    return json.dumps(_finite(value), indent=2, allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
