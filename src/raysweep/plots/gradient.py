"""The figures of a gradient run, from its steps table (``Experiment.steps_dataframe()``).

The table has one row per stored step and the step data flattened with ``/``
(``losses/<objective>``, ``params/<name>`` or ``params/<name>/<i>`` for short
arrays, ``timings/simulators_s/<simulator>``), so each figure picks its columns
by prefix.

Example:
    >>> import pandas as pd
    >>> steps = pd.DataFrame({"step": [0, 1], "loss": [4.0, 1.0], "grad_norm": [2.0, 1.0]})
    >>> loss(steps).figure.data[0].y
    (4.0, 1.0)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from raysweep.plots._data import Section
from raysweep.plots._plotly import go
from raysweep.plots.figures import layout, plain

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["MAX_PARAM_LINES", "grad_norm", "loss", "parameters", "simulator_times"]

#: Parameter trajectories drawn before the rest are only counted.
MAX_PARAM_LINES = 24


def _prefixed(steps: pd.DataFrame, prefix: str) -> list[str]:
    return [c for c in steps.columns if isinstance(c, str) and c.startswith(prefix)]


def _lines(
    steps: pd.DataFrame, columns: list[tuple[str, str]], dash: frozenset[str] = frozenset()
) -> object:
    """One line per ``(column, name)`` against the step."""
    g = go()
    ordered = steps.sort_values("step")
    x = plain(ordered["step"])
    return g.Figure(
        [
            g.Scatter(
                x=x,
                y=plain(ordered[column]),
                mode="lines+markers",
                name=name,
                line={"dash": "dash" if column in dash else "solid"},
            )
            for column, name in columns
        ]
    )


def loss(steps: pd.DataFrame) -> Section:
    """The total loss and each objective's loss, by step."""
    about = (
        "The loss (the mean over objectives) and each objective's loss by step. A total "
        "that goes down while one objective goes up is a trade-off between objectives."
    )
    per_objective = _prefixed(steps, "losses/")
    columns = [("loss", "loss")] if "loss" in steps else []
    columns += [(c, c[len("losses/") :]) for c in per_objective if len(per_objective) > 1]
    if steps.empty or not columns:
        return Section("loss", "Loss", about, note="no step stored yet")
    figure = _lines(steps, columns)
    return Section("loss", "Loss", about, layout(figure, x="step", y="loss"))


def parameters(steps: pd.DataFrame) -> Section:
    """Each parameter (each element of a short array) by step."""
    about = (
        "Each parameter's value at the step that evaluated it (elements of short arrays "
        "separately). Flat lines have converged; oscillation suggests a lower learning rate."
    )
    columns = [c for c in _prefixed(steps, "params/") if steps[c].map(_number).all()]
    if steps.empty or not columns:
        return Section(
            "params", "Parameter trajectories", about, note="no numeric parameter stored"
        )
    note = None
    if len(columns) > MAX_PARAM_LINES:
        note = f"showing {MAX_PARAM_LINES} of {len(columns)} parameter values"
        columns = columns[:MAX_PARAM_LINES]
    figure = _lines(steps, [(c, c[len("params/") :]) for c in columns])
    return Section(
        "params", "Parameter trajectories", about, layout(figure, x="step", y="value"), note=note
    )


def grad_norm(steps: pd.DataFrame) -> Section:
    """The norm of the aggregated gradient, by step (log scale)."""
    about = (
        "The global norm of the aggregated gradient by step, on a log scale. It should "
        "shrink as the fit converges; spikes are steps where the objectives disagreed."
    )
    if steps.empty or "grad_norm" not in steps:
        return Section("grad_norm", "Gradient norm", about, note="no step stored yet")
    figure = layout(_lines(steps, [("grad_norm", "gradient norm")]), x="step", y="gradient norm")
    figure.update_yaxes(type="log")
    return Section("grad_norm", "Gradient norm", about, figure)


def simulator_times(steps: pd.DataFrame) -> Section:
    """Seconds each simulator took in each step, and the whole step's (dashed)."""
    about = (
        "Seconds each simulator took per step (0 or missing: it was not re-run that step), "
        "and the whole step's time dashed. The slowest simulator sets the step's pace."
    )
    sims = _prefixed(steps, "timings/simulators_s/")
    if steps.empty or not sims:
        return Section("sim_times", "Simulator times", about, note="no simulator timings stored")
    columns = [(c, c[len("timings/simulators_s/") :]) for c in sims]
    if "timings/step_s" in steps:
        columns.append(("timings/step_s", "whole step"))
    figure = _lines(steps, columns, dash=frozenset({"timings/step_s"}))
    return Section(
        "sim_times", "Simulator times per step", about, layout(figure, x="step", y="seconds")
    )


def _number(value: object) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)) or value is None
