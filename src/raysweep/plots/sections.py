"""Which sections an experiment gets, in order: the one list the report and the dashboard lay out.

A sweep gets its history, parallel coordinates, parameter importance, slices and
a contour of the top parameters, intermediate curves, the Pareto front (several
objectives only), the timeline and the failed trials; a gradient run its loss,
parameter trajectories, gradient norm and simulator times. A section that
does not apply yet keeps its place and says why, so the dashboard's layout does
not jump as a run fills in.

The input is anything shaped like ``raysweep.load()``'s experiment
(:class:`ExperimentLike`): its name, kind, status, spec, objectives and tables.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from raysweep.objectives import Objectives
from raysweep.plots import figures, gradient, params, timeline
from raysweep.plots._data import Section, config_names, state_of

if TYPE_CHECKING:
    import pandas as pd

    from raysweep.trial import Trial

__all__ = ["SLICE_PARAMS", "ExperimentLike", "build_sections", "summary"]

#: Parameters shown in the slice panels (the most important first).
SLICE_PARAMS = 4


class ExperimentLike(Protocol):
    """What the figures read of an experiment (``raysweep.load()`` returns one)."""

    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def spec(self) -> Mapping[str, Any]: ...
    @property
    def objectives(self) -> Objectives | None: ...
    @property
    def best(self) -> Trial | None: ...
    def trials_dataframe(self) -> pd.DataFrame: ...
    def reports_dataframe(self) -> pd.DataFrame: ...
    def steps_dataframe(self) -> pd.DataFrame: ...


def build_sections(exp: ExperimentLike, now: pd.Timestamp | None = None) -> list[Section]:
    """The sections of ``exp`` as it stands; ``now`` ends the bars of running trials
    in the timeline (default: the current time)."""
    import pandas as pd

    if exp.kind == "gradient":
        steps = exp.steps_dataframe()
        return [
            gradient.loss(steps),
            gradient.parameters(steps),
            gradient.grad_norm(steps),
            gradient.simulator_times(steps),
        ]
    objectives = exp.objectives or Objectives.single("loss")
    trials = exp.trials_dataframe()
    reports = exp.reports_dataframe()
    varying = config_names(trials)
    space = exp.spec.get("space")
    ranked = params.importances(trials, objectives, space if isinstance(space, Mapping) else None)
    order = [n for n in ranked if n in varying] if isinstance(ranked, dict) else varying
    order += [n for n in varying if n not in order]  # conditional ones fANOVA left out
    sections = [
        figures.history(trials, objectives),
        figures.parallel_coordinates(trials, objectives, varying),
        params.importance(ranked, objectives),
        params.slices(trials, objectives, order[:SLICE_PARAMS]),
        params.contour(trials, objectives, order),
        figures.intermediate(reports, trials, objectives),
    ]
    front = figures.pareto(trials, objectives)
    if front is not None:
        sections.append(front)
    sections.append(timeline.timeline(trials, now or pd.Timestamp.now(tz="UTC")))
    sections.append(figures.failed_table(trials))
    return sections


def summary(exp: ExperimentLike) -> list[tuple[str, str]]:
    """``(label, text)`` lines for the page's head: kind, status, progress, best."""
    lines = [("experiment", exp.name), ("kind", exp.kind), ("status", exp.status)]
    if exp.kind == "gradient":
        steps = exp.steps_dataframe()
        planned = exp.spec.get("n_steps")
        lines.append(("steps", f"{len(steps)} of {planned}" if planned else str(len(steps))))
        if not steps.empty and "loss" in steps:
            lines.append(("last loss", f"{float(steps.sort_values('step')['loss'].iloc[-1]):.6g}"))
        return lines
    trials = exp.trials_dataframe()
    counts: dict[str, int] = {}
    for state in trials["state"].map(state_of) if not trials.empty else []:
        counts[state] = counts.get(state, 0) + 1
    planned = exp.spec.get("num_trials")
    head = f"{len(trials)} of {planned}" if planned else str(len(trials))
    parts = ", ".join(f"{n} {s.lower()}" for s, n in counts.items())
    lines.append(("trials", f"{head}" + (f": {parts}" if parts else "")))
    objectives = exp.objectives
    if objectives is not None:
        lines.append(("objective", objectives.describe()))
        best = exp.best  # the experiment's own rule (ties: the lowest id), as status shows it
        if not objectives.multi and best is not None:
            value = float(best.metrics[objectives.metric])
            lines.append(("best", f"trial {best.trial_id}: {objectives.metric}={value:.6g}"))
    return lines
