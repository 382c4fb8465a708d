"""The figures of a sweep, as pure functions from the view's dataframes to sections.

Each function takes the trials table (``Experiment.trials_dataframe()``), and the
reports table where it needs one, and returns a :class:`Section`: a plotly
figure, or the reason there is none. Nothing here reads a store, so the report,
the dashboard and the tests (with hand-made tables) draw the same thing.

Values go into the figures as plain lists, not NumPy arrays (which plotly would
pack as binary), so a reader of the page (or a test) finds the stored numbers
in ``figure.data``.

Example:
    >>> import pandas as pd
    >>> from raysweep.objectives import Objectives
    >>> trials = pd.DataFrame({"trial_id": [0, 1], "state": ["COMPLETED"] * 2,
    ...                        "config/x": [0.1, 0.2], "metrics/loss": [3.0, 1.0]})
    >>> history(trials, Objectives.single("loss")).figure.data[1].y
    (3.0, 1.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from raysweep.objectives import Direction, Objectives
from raysweep.plots._data import CONFIG, METRICS, Section, completed, finite, state_of
from raysweep.plots._plotly import go

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "failed_table",
    "history",
    "intermediate",
    "parallel_coordinates",
    "pareto",
]

#: Colours of the trial states, the same in every figure.
STATE_COLORS = {
    "COMPLETED": "#2c7fb8",
    "PRUNED": "#fd8d3c",
    "FAILED": "#d7301f",
    "RUNNING": "#41ab5d",
    "ABANDONED": "#969696",
    "PAUSED": "#807dba",
    "PENDING": "#bdbdbd",
}


def layout(figure: Any, *, x: str, y: str, height: int = 420) -> Any:
    """The common look: white template, axis titles, legend on top."""
    figure.update_layout(
        template="plotly_white",
        height=height,
        margin={"l": 60, "r": 20, "t": 30, "b": 50},
        legend={"orientation": "h", "y": 1.08},
        xaxis_title=x,
        yaxis_title=y,
    )
    return figure


def plain(values: Any) -> list[Any]:
    """A column as a list of Python values (``None`` for missing ones)."""
    return [
        None if v is None or v != v else (v.item() if hasattr(v, "item") else v) for v in values
    ]


def history(trials: pd.DataFrame, objectives: Objectives) -> Section:
    """Each completed trial's value of the primary metric by trial id, with the
    best value so far as a step line."""
    metric = objectives.primary
    about = (
        f"Each dot is a completed trial's {metric.name}, in the order trials were proposed; "
        f"the line is the best so far ({metric.direction.verb}). A line that keeps "
        "stepping means the search still finds better points."
    )
    done = completed(trials, [metric.name])
    if done.empty:
        return Section("history", "Optimization history", about, note="no completed trial yet")
    values = done[METRICS + metric.name].astype(float)
    best = values.cummin() if metric.direction is Direction.MIN else values.cummax()
    ids = plain(done["trial_id"])
    g = go()
    figure = g.Figure(
        [
            g.Scatter(
                x=ids,
                y=plain(best),
                mode="lines",
                name="best so far",
                line={"shape": "hv", "color": "#d7301f"},
            ),
            g.Scatter(
                x=ids,
                y=plain(values),
                mode="markers",
                name=metric.name,
                marker={"color": STATE_COLORS["COMPLETED"]},
                hovertemplate="trial %{x}<br>%{y}<extra></extra>",
            ),
        ]
    )
    return Section(
        "history", "Optimization history", about, layout(figure, x="trial", y=metric.name)
    )


def _axis(values: pd.Series) -> dict[str, Any]:
    """A parallel-coordinates axis: numbers as they are, anything else as category codes."""
    if all(finite(v) for v in values):
        return {"values": [float(v) for v in values]}
    labels = sorted({repr(v) if not isinstance(v, str) else v for v in values})
    codes = {label: i for i, label in enumerate(labels)}
    keys = [repr(v) if not isinstance(v, str) else v for v in values]
    return {
        "values": [codes[k] for k in keys],
        "tickvals": list(codes.values()),
        "ticktext": labels,
    }


def parallel_coordinates(
    trials: pd.DataFrame, objectives: Objectives, params: Sequence[str]
) -> Section:
    """One line per completed trial across its parameters and the primary metric,
    coloured by that metric."""
    metric = objectives.primary
    about = (
        "One line per completed trial through its parameter values, ending at its "
        f"{metric.name}; the colour is {metric.name}. Drag along an axis to keep only "
        "the lines through a range; where the good lines bunch is where the optimum is."
    )
    done = completed(trials, [metric.name])
    if done.empty or not params:
        why = "no completed trial yet" if done.empty else "no parameter varies"
        return Section("parallel", "Parallel coordinates", about, note=why)
    dimensions = []
    for name in params:
        column = done[CONFIG + name]
        if column.isna().any():  # a conditional parameter: only where it is active
            column = column.fillna("(inactive)")
        dimensions.append({"label": name, **_axis(column)})
    score = [float(v) for v in done[METRICS + metric.name]]
    dimensions.append({"label": metric.name, "values": score})
    scale = "Viridis_r" if metric.direction is Direction.MIN else "Viridis"
    g = go()
    figure = g.Figure(
        g.Parcoords(
            dimensions=dimensions,
            line={"color": score, "colorscale": scale, "showscale": True},
            customdata=plain(done["trial_id"]),
        )
    )
    figure.update_layout(template="plotly_white", height=420, margin={"l": 60, "r": 60, "t": 50})
    return Section("parallel", "Parallel coordinates", about, figure)


def intermediate(reports: pd.DataFrame, trials: pd.DataFrame, objectives: Objectives) -> Section:
    """The primary metric each trial reported, by step: one line per trial; pruned
    trials dashed, with a cross where they were stopped."""
    metric = objectives.primary
    about = (
        f"The {metric.name} each trial reported with raysweep.report(), by step; one line "
        "per trial. Pruned trials are dashed and end in a cross where the scheduler stopped "
        "them: crosses far from the best lines mean the scheduler saved time well."
    )
    series = reports[reports["metric"] == metric.name] if not reports.empty else reports
    if series.empty:
        return Section(
            "intermediate",
            "Intermediate values",
            about,
            note=f"no trial reported {metric.name} with raysweep.report()",
        )
    states = {int(t): state_of(s) for t, s in zip(trials["trial_id"], trials["state"], strict=True)}
    g = go()
    figure = g.Figure()
    crosses: tuple[list[Any], list[Any], list[Any]] = ([], [], [])
    for key, rows in series.sort_values(["trial_id", "step"]).groupby("trial_id", sort=True):
        trial_id = int(str(key))
        state = states.get(trial_id, "RUNNING")
        steps, values = plain(rows["step"]), plain(rows["value"])
        figure.add_trace(
            g.Scatter(
                x=steps,
                y=values,
                mode="lines",
                name=f"trial {trial_id}",
                legendgroup=state,
                showlegend=False,
                opacity=0.8,
                line={
                    "color": STATE_COLORS.get(state, "#636363"),
                    "dash": "dash" if state == "PRUNED" else "solid",
                },
                hovertemplate=f"trial {trial_id} ({state.lower()})<br>"
                + "step %{x}<br>%{y}<extra></extra>",
            )
        )
        if state == "PRUNED":
            crosses[0].append(steps[-1])
            crosses[1].append(values[-1])
            crosses[2].append(trial_id)
    if crosses[0]:
        figure.add_trace(
            g.Scatter(
                x=crosses[0],
                y=crosses[1],
                customdata=crosses[2],
                mode="markers",
                name="pruned here",
                marker={"symbol": "x", "size": 10, "color": STATE_COLORS["PRUNED"]},
                hovertemplate="trial %{customdata} pruned at step %{x}<extra></extra>",
            )
        )
    return Section(
        "intermediate", "Intermediate values", about, layout(figure, x="step", y=metric.name)
    )


def pareto(trials: pd.DataFrame, objectives: Objectives) -> Section | None:
    """For several objectives: every completed trial on the first two, the front
    (no trial beats it on every metric) highlighted and joined. ``None`` for one."""
    if not objectives.multi:
        return None
    first, second = objectives.metrics[0], objectives.metrics[1]
    about = (
        f"Every completed trial by {first.name} and {second.name}; the Pareto front (trials "
        "no other trial beats on every objective) is joined. Pick from the front the "
        "trade-off you want."
    )
    done = completed(trials, objectives.names)
    if done.empty:
        return Section("pareto", "Pareto front", about, note="no completed trial yet")
    if "pareto" in done:
        on_front = done["pareto"].astype(bool)
    else:
        from raysweep.sweep.result import pareto_ids
        from raysweep.trial import Trial, TrialState

        rows = [
            Trial(
                int(i),
                TrialState.COMPLETED,
                {},
                {m: float(str(done.at[k, METRICS + m])) for m in objectives.names},
            )
            for k, i in zip(done.index, done["trial_id"], strict=True)
        ]
        ids = pareto_ids(rows, objectives) or set()
        on_front = done["trial_id"].isin(ids)
    front = done[on_front].sort_values(METRICS + first.name)
    rest = done[~on_front]
    g = go()
    figure = g.Figure(
        [
            g.Scatter(
                x=plain(rest[METRICS + first.name]),
                y=plain(rest[METRICS + second.name]),
                customdata=plain(rest["trial_id"]),
                mode="markers",
                name="dominated",
                marker={"color": "#bdbdbd"},
                hovertemplate="trial %{customdata}<br>%{x}, %{y}<extra></extra>",
            ),
            g.Scatter(
                x=plain(front[METRICS + first.name]),
                y=plain(front[METRICS + second.name]),
                customdata=plain(front["trial_id"]),
                mode="lines+markers",
                name="Pareto front",
                line={"shape": "hv" if first.direction is second.direction else "linear"},
                marker={"color": "#d7301f", "size": 9},
                hovertemplate="trial %{customdata}<br>%{x}, %{y}<extra></extra>",
            ),
        ]
    )
    note = None
    if len(objectives) > 2:
        note = (
            f"showing the first two of {len(objectives)} objectives ({', '.join(objectives.names)})"
        )
    x, y = (f"{m.name} ({m.direction.value})" for m in (first, second))
    return Section("pareto", "Pareto front", about, layout(figure, x=x, y=y), note=note)


def failed_table(trials: pd.DataFrame) -> Section:
    """A table of the FAILED trials: id, node, attempts, and the last line of the error."""
    about = "Trials that failed, with the last line of their error (raysweep status shows it too)."
    failed = trials[trials["state"].map(state_of) == "FAILED"] if not trials.empty else trials
    if failed.empty:
        return Section("failed", "Failed trials", about, note="no trial failed")
    rows = [["trial", "node", "attempts", "error"]]
    for _, t in failed.sort_values("trial_id").iterrows():
        node = t.get("node")
        rows.append(
            [
                str(t["trial_id"]),
                str(node) if isinstance(node, str) else "-",
                str(t.get("attempts", "")),
                str(t.get("error") or "unknown error"),
            ]
        )
    return Section("failed", f"Failed trials ({len(rows) - 1})", about, table=rows)
