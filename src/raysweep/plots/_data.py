"""Reading the experiment's dataframes the way every figure needs them.

The figures take the view's dataframes (``trials_dataframe()``,
``reports_dataframe()``, ``steps_dataframe()``) and nothing else, so the report,
the dashboard and the unit tests (hand-made frames) share them. The helpers here
are the few readings they all make: which trials completed with a finite value,
the parameter and metric columns, times as UTC, and a :class:`Section`, the unit
both the HTML report and the dashboard lay out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "CONFIG",
    "METRICS",
    "Section",
    "completed",
    "config_names",
    "finite",
    "state_of",
    "utc",
    "utc_text",
]

#: Column prefixes of the trials table.
CONFIG = "config/"
METRICS = "metrics/"


@dataclass(frozen=True, slots=True)
class Section:
    """One part of the report: a figure or a table, or the reason it has neither.

    Attributes:
        key: a stable id (HTML ids ``plot-<key>``, the dashboard's JSON keys).
        title: the heading.
        about: how to read it, one or two sentences.
        figure: a plotly figure, or ``None``.
        table: rows of cells (the first row is the header), or ``None``.
        note: why there is no figure (``"importance needs ≥ 5 completed trials"``),
            or a remark shown under it.
    """

    key: str
    title: str
    about: str
    figure: Any = None
    table: list[list[str]] | None = None
    note: str | None = None

    @property
    def shown(self) -> bool:
        """Whether there is something to draw (else only the note is shown)."""
        return self.figure is not None or self.table is not None


def state_of(value: Any) -> str:
    """A trial state as its stored name (``"COMPLETED"``), from a string or the Enum."""
    return str(getattr(value, "value", value))


def finite(value: Any) -> bool:
    """Whether ``value`` is a real, finite number (not a bool, None or NaN)."""
    if isinstance(value, bool) or value is None:
        return False
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def completed(trials: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """The COMPLETED trials with a finite value of every one of ``metrics``, by id."""
    if trials.empty or "state" not in trials:
        return trials.iloc[0:0]
    done = trials.loc[(trials["state"].map(state_of) == "COMPLETED").astype(bool)]
    for name in metrics:
        column = METRICS + name
        if column not in done:
            return done.iloc[0:0]
        done = done.loc[done[column].map(finite).astype(bool)]
    return done.sort_values("trial_id")


def config_names(trials: pd.DataFrame) -> list[str]:
    """The parameter names of the trials table, in column order, without constants
    (a parameter that took one value everywhere explains nothing)."""
    names = []
    for column in trials.columns:
        if isinstance(column, str) and column.startswith(CONFIG):
            values = trials[column].dropna().map(repr)
            if values.nunique() > 1:
                names.append(column[len(CONFIG) :])
    return names


def utc(values: pd.Series) -> pd.Series:
    """Times as tz-aware UTC timestamps, from Unix seconds or timestamps."""
    import pandas as pd

    if pd.api.types.is_numeric_dtype(values):
        return pd.to_datetime(values, unit="s", utc=True)
    return pd.to_datetime(values, utc=True)


def utc_text(values: pd.Series) -> list[str | None]:
    """Times as the text plotly reads as dates (UTC, no zone), ``None`` where missing."""
    return [
        None if v is None or v != v else v.strftime("%Y-%m-%d %H:%M:%S.%f") for v in utc(values)
    ]
