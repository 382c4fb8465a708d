"""Tables of an experiment: trials, the report series (long), a gradient run's steps.

Times are stored as Unix seconds; the tables hold them as time-zone aware UTC
:class:`pandas.Timestamp` values (``NaT`` where unset), and exports write them as
ISO-8601 text (:func:`iso_time`), so that nobody has to guess the epoch or the
zone.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from raysweep.objectives import Objectives
from raysweep.store import StepRecord
from raysweep.trial import Trial

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "REPORT_COLUMNS",
    "STEP_COLUMNS",
    "TIME_COLUMNS",
    "TRIAL_COLUMNS",
    "flatten_scalars",
    "iso_time",
    "report_rows",
    "reports_frame",
    "steps_frame",
    "trials_frame",
]

#: The columns every trials table starts with (an empty sweep's table has just these).
TRIAL_COLUMNS = (
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
#: The columns of the report series table; ``time`` and ``time_total_s`` only
#: when the reports carry them.
REPORT_COLUMNS = ("trial_id", "step", "metric", "value")
#: Keys of a report that are not metrics (``raysweep.report()`` adds them).
_REPORT_KEYS = ("step", "time", "time_total_s")
#: The first columns of a steps table.
STEP_COLUMNS = ("step", "time")
#: Columns holding times, in any of the tables.
TIME_COLUMNS = frozenset({"created_at", "queued_at", "started_at", "ended_at", "time"})


def iso_time(value: Any) -> str | None:
    """Unix seconds (or a UTC :class:`pandas.Timestamp`) as ISO-8601 UTC text with
    milliseconds; ``None`` for a missing or non-finite time.

    Example:
        >>> iso_time(0.25)
        '1970-01-01T00:00:00.250+00:00'
    """
    if value is None:
        return None
    if isinstance(value, datetime):  # pandas.Timestamp is one, and so is NaT
        if value != value:  # NaT, like NaN, is unequal to itself
            return None
        return value.astimezone(UTC).isoformat(timespec="milliseconds")
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return datetime.fromtimestamp(value, tz=UTC).isoformat(timespec="milliseconds")
    return None


def _utc(frame: pd.DataFrame) -> pd.DataFrame:
    """The time columns of ``frame`` as UTC timestamps."""
    import pandas as pd

    for column in frame.columns:
        if column in TIME_COLUMNS:
            frame[column] = pd.to_datetime(
                pd.to_numeric(frame[column], errors="coerce"), unit="s", utc=True
            )
    return frame


def trials_frame(trials: Sequence[Trial], objectives: Objectives | None) -> pd.DataFrame:
    """One row per trial: :data:`TRIAL_COLUMNS`, ``pareto`` with several metrics,
    ``config/<name>``, ``metrics/<name>``; times as UTC timestamps."""
    import pandas as pd

    from raysweep.sweep.result import trials_dataframe

    if not trials:
        multi = objectives is not None and objectives.multi
        return _utc(pd.DataFrame(columns=[*TRIAL_COLUMNS, *(["pareto"] if multi else [])]))
    return _utc(trials_dataframe(trials, objectives))


def report_rows(trials: Sequence[Trial]) -> Iterator[dict[str, Any]]:
    """The ``raysweep.report()`` series, one dict per (trial, report, metric):
    :data:`REPORT_COLUMNS` plus ``time`` and ``time_total_s`` (Unix seconds,
    seconds since the trial's start; ``None`` where a report lacks them)."""
    for trial in trials:
        for report in trial.intermediate:
            for metric, value in report.items():
                if metric not in _REPORT_KEYS:
                    yield {
                        "trial_id": trial.trial_id,
                        "step": report.get("step"),
                        "metric": metric,
                        "value": value,
                        "time": report.get("time"),
                        "time_total_s": report.get("time_total_s"),
                    }


def reports_frame(trials: Sequence[Trial]) -> pd.DataFrame:
    """:func:`report_rows` as a table; ``time`` (UTC) and ``time_total_s`` only
    where some report carries them."""
    import pandas as pd

    rows = list(report_rows(trials))
    extra = [k for k in ("time", "time_total_s") if any(r[k] is not None for r in rows)]
    frame = pd.DataFrame(rows, columns=[*REPORT_COLUMNS, *extra])
    frame["step"] = frame["step"].astype("Int64")  # a report may lack its step
    return _utc(frame)


def steps_frame(steps: Sequence[StepRecord]) -> pd.DataFrame:
    """One row per gradient step: ``step``, ``time`` (UTC), and the step data
    flattened by :func:`flatten_scalars`."""
    import pandas as pd

    rows = []
    for record in steps:
        row: dict[str, Any] = {"step": record.step, "time": record.time}
        data = {k: v for k, v in record.data.items() if k not in STEP_COLUMNS}
        row.update(flatten_scalars(data))
        rows.append(row)
    return _utc(pd.DataFrame(rows) if rows else pd.DataFrame(columns=list(STEP_COLUMNS)))


def flatten_scalars(value: Any, prefix: str = "", max_list: int = 64) -> Iterator[tuple[str, Any]]:
    """``(path, scalar)`` pairs of nested dicts, keys joined with ``/``.

    Short lists of numbers become one column per element (``params/w/0``);
    lists of strings are joined with ``;``; larger arrays are left out, since a
    table cell cannot hold them usefully (the JSON export keeps them whole).

    Example:
        >>> dict(flatten_scalars({"losses": {"rdf": 0.5}, "w": [1, 2], "run": ["a", "b"]}))
        {'losses/rdf': 0.5, 'w/0': 1, 'w/1': 2, 'run': 'a;b'}
    """
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from flatten_scalars(item, f"{prefix}/{key}" if prefix else str(key), max_list)
    elif isinstance(value, list | tuple):
        if value and all(isinstance(v, str) for v in value):
            yield prefix, ";".join(value)
        elif len(value) <= max_list and all(_is_scalar(v) for v in value):
            for i, item in enumerate(value):
                yield f"{prefix}/{i}", item
        elif (
            len(value) <= max_list
            and all(isinstance(v, list | tuple | Mapping) for v in value)
            and sum(_size(v) for v in value) <= max_list
        ):
            for i, item in enumerate(value):
                yield from flatten_scalars(item, f"{prefix}/{i}", max_list)
    elif _is_scalar(value):
        yield prefix, value


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, bool | int | float | str)


def _size(value: Any) -> int:
    if isinstance(value, Mapping):
        return sum(_size(v) for v in value.values())
    if isinstance(value, list | tuple):
        return sum(_size(v) for v in value)
    return 1
