"""``raysweep export DIR``: an experiment as JSON or CSV, for notebooks and other tools.

JSON holds everything (the stored spec, status, every trial with its reports,
or every step of a gradient run); CSV is the flat table a spreadsheet or
``pandas.read_csv`` wants, the same columns as :meth:`raysweep.Result.trials_dataframe`.
For a sweep of several metrics each trial has ``pareto`` (true/false): whether it
is on the Pareto front, since no single trial is "the best" there.
The JSON is strict: NaN and infinities, which Python would write as invalid
``NaN`` tokens, become ``null``.
"""

from __future__ import annotations

import errno
import io
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from raysweep.cli._format import checked_spec, flatten_scalars, spec_objectives
from raysweep.errors import RaysweepError, SpecError
from raysweep.store import ExperimentStore, open_experiment
from raysweep.sweep.result import pareto_ids, trials_dataframe

__all__ = ["experiment_csv", "experiment_json", "export_command", "to_strict_json"]

#: Columns of an empty sweep's CSV (a header is easier to consume than nothing).
_EMPTY_COLUMNS = (
    "trial_id",
    "state",
    "attempts",
    "last_step",
    "parent_id",
    "node",
    "queued_at",
    "started_at",
    "ended_at",
    "duration_s",
    "error",
)


@click.command("export")
@click.argument("directory", metavar="DIR")
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
def export_command(directory: str, fmt: str | None, output: Path | None) -> None:
    """Export an experiment's trials (or a gradient run's steps) as JSON or CSV.

    DIR is the experiment folder (runs/NAME), its experiment.db, or a file:// URL. Safe to run
    while the experiment is running.
    """
    if fmt is None:
        fmt = "csv" if output is not None and output.suffix.lower() == ".csv" else "json"
    store = open_experiment(directory)
    try:
        text = experiment_csv(store) if fmt == "csv" else to_strict_json(experiment_json(store))
    finally:
        store.close()
    if output is None:
        click.echo(text, nl=not text.endswith("\n"))
    else:
        write_output(output, text if text.endswith("\n") else text + "\n")


def write_output(output: Path, text: str) -> None:
    """Write ``text`` to ``output`` whole or not at all, naming the file on failure.

    A regular file is written under a temporary name beside it and renamed into
    place, so a full disk never leaves half an export where the last one was.
    Special files (``/dev/stdout``, a FIFO) are written directly.

    Raises:
        SpecError: the target cannot be written (no permission, no such folder):
            fixable input, exit 2.
        RaysweepError: the disk is full (or another I/O failure): exit 1.
    """
    direct = output.exists() and not output.is_file() and not output.is_dir()
    target = output if direct else output.with_name(f".{output.name}.{os.getpid()}.tmp")
    try:
        with open(target, "w", encoding="utf-8") as fh:
            fh.write(text)
        if not direct:
            os.replace(target, output)
    except OSError as exc:
        if not direct:
            target.unlink(missing_ok=True)
        why = exc.strerror or type(exc).__name__
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EIO):
            raise RaysweepError(f"--output {output}: cannot write the export: {why}") from None
        raise SpecError(f"--output {output}: cannot write the export: {why}") from None


def experiment_json(store: ExperimentStore) -> dict[str, Any]:
    """``{"experiment": {...}, "trials": [...]}``, or ``"steps"`` for a gradient run."""
    spec = checked_spec(store)
    experiment = dict(spec)
    experiment.update(
        {
            "status": store.get_meta("status"),
            "stop_reason": store.get_meta("stop_reason"),
            "started_at": store.get_meta("started_at"),
        }
    )
    if spec.get("kind") == "gradient":
        steps = [{"step": s.step, "time": s.time, **s.data} for s in store.steps()]
        return {"experiment": experiment, "steps": steps}
    experiment["counts"] = {state.value: n for state, n in store.count_by_state().items()}
    trials = store.trials()
    rows = [t.to_dict() for t in trials]
    front = pareto_ids(trials, spec_objectives(spec))
    if front is not None:
        for row, trial in zip(rows, trials, strict=True):
            row["pareto"] = trial.trial_id in front
    return {"experiment": experiment, "trials": rows}


def experiment_csv(store: ExperimentStore) -> str:
    """One row per trial (``config/<name>``, ``metrics/<name>`` columns, and ``pareto``
    with several metrics), or one row per step of a gradient run (``loss``,
    ``grad_norm``, ``losses/<objective>``, scalar ``params/...``, ``timings/...``)."""
    import pandas as pd

    spec = checked_spec(store)
    if spec.get("kind") == "gradient":
        rows = []
        for record in store.steps():
            row: dict[str, Any] = {"step": record.step, "time": record.time}
            row.update(flatten_scalars(_without(record.data, "step", "time")))
            rows.append(row)
        frame = pd.DataFrame(rows) if rows else pd.DataFrame(columns=["step", "time"])
    else:
        trials = store.trials()
        objectives = spec_objectives(spec)
        columns = [*_EMPTY_COLUMNS, *(["pareto"] if objectives.multi else [])]
        frame = trials_dataframe(trials, objectives) if trials else pd.DataFrame(columns=columns)
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, lineterminator="\n")
    return buffer.getvalue()


def _without(data: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in keys}


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
