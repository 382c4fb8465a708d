"""How the parameters matter: importance, slices and a contour of the top two.

Importance is Optuna's (fANOVA, :class:`optuna.importance.FanovaImportanceEvaluator`,
seeded so the same trials give the same bars): the completed trials are told to
an in-memory Optuna study (``create_trial`` / ``add_trials``) over the
experiment's declared space (:class:`~raysweep.sweep.searchers._encoding.Encoding`,
so log scales and choices are Optuna's own), or over ranges read from the
trials when no space is stored. The slice and contour panels then show the
parameters in that order, the most important first.

Example:
    >>> ranked = importances(trials, Objectives.single("loss"), space)  # doctest: +SKIP
    >>> slices(trials, Objectives.single("loss"), list(ranked)[:3])  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from raysweep.errors import MissingExtraError
from raysweep.objectives import Objectives
from raysweep.plots._data import CONFIG, METRICS, Section, completed, finite
from raysweep.plots._plotly import go, subplots
from raysweep.plots.figures import layout, plain

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["MIN_IMPORTANCE_TRIALS", "contour", "importance", "importances", "slices"]

#: Completed trials fANOVA needs before its forest says more than noise.
MIN_IMPORTANCE_TRIALS = 8
#: Cells per side of the contour's interpolation grid.
GRID = 40


def _distributions(
    optuna: Any, done: pd.DataFrame, params: Sequence[str], space: Mapping[str, Any] | None
) -> tuple[dict[str, Any], Any]:
    """Optuna distributions of ``params`` and an encoder of a config into their values."""
    if space:
        from raysweep.sweep.searchers._encoding import Encoding
        from raysweep.sweep.space import SearchSpace

        encoding = Encoding(SearchSpace.from_json(space))
        declared = encoding.optuna_distributions()
        return {n: declared[n] for n in params if n in declared}, encoding.encode
    dists: dict[str, Any] = {}
    categories: dict[str, list[str]] = {}
    for name in params:
        values = done[CONFIG + name].dropna()
        if all(finite(v) for v in values):
            low, high = float(values.min()), float(values.max())
            if all(float(v).is_integer() and not isinstance(v, float) for v in values):
                dists[name] = optuna.distributions.IntDistribution(int(low), int(high))
            else:
                dists[name] = optuna.distributions.FloatDistribution(low, high)
        else:
            categories[name] = sorted({repr(v) for v in values})
            dists[name] = optuna.distributions.CategoricalDistribution(categories[name])

    def encode(config: Mapping[str, Any]) -> dict[str, Any]:
        return {n: repr(v) if n in categories else v for n, v in config.items() if n in dists}

    return dists, encode


def importances(
    trials: pd.DataFrame, objectives: Objectives, space: Mapping[str, Any] | None = None
) -> dict[str, float] | str:
    """``{parameter: importance}`` of the primary metric, most important first (they
    sum to 1), or why there is none (too few trials, Optuna missing)."""
    metric = objectives.primary
    done = completed(trials, [metric.name])
    if len(done) < MIN_IMPORTANCE_TRIALS:
        return f"importance needs ≥ {MIN_IMPORTANCE_TRIALS} completed trials, there are {len(done)}"
    try:
        from raysweep.sweep.searchers._optuna import import_optuna

        optuna = import_optuna("parameter importance in the report")
    except MissingExtraError as exc:
        return str(exc)
    params = [c[len(CONFIG) :] for c in done.columns if isinstance(c, str) and c.startswith(CONFIG)]
    dists, encode = _distributions(optuna, done, params, space)
    if not dists:
        return "importance needs a parameter that varies"
    study = optuna.create_study(direction=metric.direction.verb)
    for _, row in done.iterrows():
        config = {n: row[CONFIG + n] for n in dists if row.get(CONFIG + n) == row.get(CONFIG + n)}
        values = {n: v.item() if hasattr(v, "item") else v for n, v in encode(config).items()}
        study.add_trial(
            optuna.trial.create_trial(
                params=values,
                distributions={n: dists[n] for n in values},
                value=float(row[METRICS + metric.name]),
            )
        )
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
    try:
        ranked = optuna.importance.get_param_importances(study, evaluator=evaluator)
    except (ValueError, RuntimeError) as exc:  # e.g. no parameter present in every trial
        return f"importance could not be computed: {exc}"
    return {str(k): float(v) for k, v in ranked.items()}


def importance(ranked: dict[str, float] | str, objectives: Objectives) -> Section:
    """A bar per parameter: the share of the primary metric's variance it explains."""
    about = (
        f"How much of the variation of {objectives.primary.name} each parameter explains "
        "(Optuna's fANOVA over the completed trials; the bars sum to 1). Tune the top ones; "
        "the bottom ones can often be fixed."
    )
    if isinstance(ranked, str):
        return Section("importance", "Parameter importance", about, note=ranked)
    names = list(reversed(ranked))
    g = go()
    figure = g.Figure(
        g.Bar(
            x=[ranked[n] for n in names],
            y=names,
            orientation="h",
            marker={"color": "#2c7fb8"},
            hovertemplate="%{y}: %{x:.3f}<extra></extra>",
        )
    )
    figure = layout(figure, x="importance", y="", height=max(240, 60 + 32 * len(names)))
    return Section("importance", "Parameter importance", about, figure)


def slices(trials: pd.DataFrame, objectives: Objectives, params: Sequence[str]) -> Section:
    """The primary metric against each of ``params`` (the most important first),
    one panel each, coloured by trial id."""
    metric = objectives.primary
    about = (
        f"{metric.name} against each of the most important parameters, one panel each; "
        "darker dots are later trials. A clear valley (or peak) shows where that "
        "parameter is best whatever the others are."
    )
    done = completed(trials, [metric.name])
    if done.empty or not params:
        why = "no completed trial yet" if done.empty else "no parameter varies"
        return Section("slices", "Slices", about, note=why)
    figure = subplots()(rows=1, cols=len(params), shared_yaxes=True, subplot_titles=list(params))
    g = go()
    ids = plain(done["trial_id"])
    for i, name in enumerate(params, start=1):
        xs = plain(done[CONFIG + name].map(lambda v: v if finite(v) or v is None else str(v)))
        figure.add_trace(
            g.Scatter(
                x=xs,
                y=plain(done[METRICS + metric.name]),
                mode="markers",
                name=name,
                customdata=ids,
                showlegend=False,
                marker={"color": ids, "colorscale": "Blues", "line": {"width": 0.5}},
                hovertemplate="trial %{customdata}<br>" + name + "=%{x}<br>%{y}<extra></extra>",
            ),
            row=1,
            col=i,
        )
    figure.update_yaxes(title_text=metric.name, row=1, col=1)
    figure.update_layout(template="plotly_white", height=380, margin={"l": 60, "r": 20, "t": 40})
    return Section("slices", "Slices", about, figure)


def contour(trials: pd.DataFrame, objectives: Objectives, params: Sequence[str]) -> Section:
    """The primary metric over the first two numeric ``params``: the trials as dots
    over a surface interpolated between them (linear, inside their hull)."""
    metric = objectives.primary
    about = (
        f"{metric.name} over the two most important numeric parameters: dots are trials, "
        "the shading is interpolated between them (only inside the region they cover). "
        "It shows whether the two interact (a diagonal valley) or act alone."
    )
    done = completed(trials, [metric.name])
    numeric = [n for n in params if len(done) and all(finite(v) for v in done[CONFIG + n])]
    if len(numeric) < 2:
        return Section(
            "contour", "Contour", about, note="a contour needs two numeric parameters that vary"
        )
    x_name, y_name = numeric[:2]
    xs = [float(v) for v in done[CONFIG + x_name]]
    ys = [float(v) for v in done[CONFIG + y_name]]
    zs = [float(v) for v in done[METRICS + metric.name]]
    g = go()
    traces = []
    if len(done) >= 4:
        import numpy as np
        from scipy.interpolate import griddata

        gx = np.linspace(min(xs), max(xs), GRID)
        gy = np.linspace(min(ys), max(ys), GRID)
        try:
            grid = griddata((xs, ys), zs, tuple(np.meshgrid(gx, gy)), method="linear")
        except Exception:  # degenerate points (all on one line): dots only
            grid = None
        if grid is not None:
            cells = [[None if v != v else float(v) for v in row] for row in grid]
            traces.append(
                g.Contour(
                    x=gx.tolist(),
                    y=gy.tolist(),
                    z=cells,
                    colorscale="Viridis",
                    reversescale=metric.direction.value == "min",
                    colorbar={"title": {"text": metric.name}},
                    hoverinfo="skip",
                )
            )
    traces.append(
        g.Scatter(
            x=xs,
            y=ys,
            mode="markers",
            name="trials",
            customdata=plain(done["trial_id"]),
            text=zs,
            marker={"color": "white", "line": {"color": "black", "width": 1}},
            hovertemplate="trial %{customdata}<br>%{x}, %{y}<br>"
            + metric.name
            + "=%{text}<extra></extra>",
        )
    )
    figure = layout(g.Figure(traces), x=x_name, y=y_name, height=460)
    return Section("contour", f"Contour: {x_name} × {y_name}", about, figure)
