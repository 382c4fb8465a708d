"""The report's figures as pure functions of hand-made tables: what each draws, and
what a section says when it cannot draw."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from raysweep.objectives import Objectives
from raysweep.plots import figures, gradient, params, timeline

LOSS = Objectives.single("loss")
T0 = pd.Timestamp("2025-01-01 12:00:00", tz="UTC")


def trials_table(n: int = 12) -> pd.DataFrame:
    """``n`` trials on one node, two at a time: x drives the loss, y barely matters;
    trial 3 failed, trial 5 was pruned, the last is still running."""
    rows = []
    for i in range(n):
        state = "FAILED" if i == 3 else "PRUNED" if i == 5 else "COMPLETED"
        state = "RUNNING" if i == n - 1 else state
        x, y = (i * 0.37) % 1.0, (i * 0.61) % 1.0
        start = T0 + pd.Timedelta(seconds=5 * (i // 2))
        rows.append(
            {
                "trial_id": i,
                "state": state,
                "attempts": 1,
                "node": "10.0.0.1",
                "queued_at": start - pd.Timedelta(seconds=1),
                "started_at": start,
                "ended_at": pd.NaT if state == "RUNNING" else start + pd.Timedelta(seconds=4),
                "error": "ValueError: x too big" if state == "FAILED" else None,
                "config/x": x,
                "config/y": y,
                "config/act": ["relu", "tanh"][i % 2],
                "config/fixed": 7,
                "metrics/loss": (x - 0.4) ** 2 + 0.01 * y if state == "COMPLETED" else math.nan,
            }
        )
    return pd.DataFrame(rows)


def test_history_plots_completed_values_and_best_so_far() -> None:
    """The dots are the completed trials' losses by id; the line is their running minimum."""
    trials = trials_table()
    section = figures.history(trials, LOSS)
    best, dots = section.figure.data
    done = trials[trials["state"] == "COMPLETED"]
    assert list(dots.x) == list(done["trial_id"])
    assert list(dots.y) == pytest.approx(list(done["metrics/loss"]))
    assert list(best.y) == pytest.approx(list(done["metrics/loss"].cummin()))


def test_history_of_a_maximized_metric_keeps_the_maximum() -> None:
    """With mode max the best-so-far line is the running maximum."""
    trials = trials_table()
    section = figures.history(trials, Objectives.single("loss", "max"))
    done = trials[trials["state"] == "COMPLETED"]
    assert list(section.figure.data[0].y) == pytest.approx(list(done["metrics/loss"].cummax()))


def test_sections_without_data_say_why() -> None:
    """An experiment with no completed trial gets notes, not empty plots."""
    empty = trials_table().assign(state="RUNNING")
    assert figures.history(empty, LOSS).note == "no completed trial yet"
    assert figures.parallel_coordinates(empty, LOSS, ["x"]).figure is None
    ranked = params.importances(empty, LOSS)
    assert (
        ranked == f"importance needs ≥ {params.MIN_IMPORTANCE_TRIALS} completed trials, there are 0"
    )
    assert params.importance(ranked, LOSS).note == ranked
    assert figures.failed_table(empty).note == "no trial failed"


def test_parallel_coordinates_codes_categories_and_ends_at_the_metric() -> None:
    """Numbers stay numbers, a categorical parameter becomes codes with its labels, the
    metric is the last axis and the colour."""
    trials = trials_table()
    section = figures.parallel_coordinates(trials, LOSS, ["x", "act"])
    (trace,) = section.figure.data
    labels = [d["label"] for d in trace.dimensions]
    assert labels == ["x", "act", "loss"]
    done = trials[trials["state"] == "COMPLETED"]
    assert list(trace.dimensions[0]["values"]) == pytest.approx(list(done["config/x"]))
    assert list(trace.dimensions[1]["ticktext"]) == ["relu", "tanh"]
    assert list(trace.line.color) == pytest.approx(list(done["metrics/loss"]))


def test_importance_ranks_the_parameter_that_drives_the_loss_first() -> None:
    """fANOVA over an in-memory Optuna study puts x (which sets the loss) above y and act."""
    pytest.importorskip("optuna")
    trials = trials_table(40)
    ranked = params.importances(trials, LOSS)
    assert isinstance(ranked, dict)
    assert next(iter(ranked)) == "x"
    assert sum(ranked.values()) == pytest.approx(1.0)
    bars = params.importance(ranked, LOSS).figure.data[0]
    assert list(bars.y)[-1] == "x"  # the longest bar on top


def test_importance_uses_the_declared_space() -> None:
    """With a stored space the study gets its distributions (a choice by index)."""
    pytest.importorskip("optuna")
    import raysweep as rs
    from raysweep.sweep.space import SearchSpace

    space = SearchSpace.from_any(
        {"x": rs.uniform(0, 1), "y": rs.loguniform(1e-3, 1), "act": rs.choice(["relu", "tanh"])}
    )
    trials = trials_table(30)
    trials["config/y"] = trials["config/y"] + 1e-3
    ranked = params.importances(trials, LOSS, space.to_json())
    assert isinstance(ranked, dict)
    assert set(ranked) == {"x", "y", "act"}


def test_slices_and_contour_show_the_top_parameters() -> None:
    """A panel per parameter with the trials' values; the contour's dots are the trials."""
    trials = trials_table(20)
    done = trials[trials["state"] == "COMPLETED"]
    sliced = params.slices(trials, LOSS, ["x", "act"])
    assert [t.name for t in sliced.figure.data] == ["x", "act"]
    assert list(sliced.figure.data[0].x) == pytest.approx(list(done["config/x"]))
    drawn = params.contour(trials, LOSS, ["act", "x", "y"])
    assert drawn.title == "Contour: x × y"
    surface, dots = drawn.figure.data
    assert surface.type == "contour"
    assert list(dots.customdata) == list(done["trial_id"])
    assert params.contour(trials, LOSS, ["act", "x"]).figure is None


def test_intermediate_curves_mark_pruned_trials() -> None:
    """One line per trial; the pruned trial is dashed, with a cross at its last report."""
    trials = trials_table()
    reports = pd.DataFrame(
        [
            {"trial_id": t, "step": s, "metric": "loss", "value": 1.0 / (s + 1 + t)}
            for t in (0, 5)
            for s in range(3 if t == 5 else 6)
        ]
        + [{"trial_id": 0, "step": 0, "metric": "acc", "value": 0.5}]
    )
    section = figures.intermediate(reports, trials, LOSS)
    lines = [t for t in section.figure.data if t.mode == "lines"]
    assert [t.name for t in lines] == ["trial 0", "trial 5"]
    assert lines[1].line.dash == "dash"
    cross = section.figure.data[-1]
    assert (list(cross.x), list(cross.y), list(cross.customdata)) == ([2], [1.0 / 8], [5])
    assert figures.intermediate(reports.iloc[0:0], trials, LOSS).figure is None


def test_pareto_front_only_for_several_objectives() -> None:
    """One objective: no section; two: the front trials joined, sorted by the first."""
    trials = trials_table()
    trials["metrics/time"] = 1.0 - trials["config/x"]
    assert figures.pareto(trials, LOSS) is None
    both = Objectives.parse(["loss", "time"], ["min", "min"])
    section = figures.pareto(trials, both)
    assert section is not None
    rest, front = section.figure.data
    assert list(front.x) == sorted(front.x)
    assert len(front.x) + len(rest.x) == int((trials["state"] == "COMPLETED").sum())


def test_failed_table_has_the_error_line() -> None:
    """One row per failed trial with its node and the last line of its error."""
    section = figures.failed_table(trials_table())
    assert section.table == [
        ["trial", "node", "attempts", "error"],
        ["3", "10.0.0.1", "1", "ValueError: x too big"],
    ]


def test_lanes_reuse_a_slot_once_free() -> None:
    """A trial takes the lowest slot of its node free at its start."""
    spans = [("a", 0.0, 4.0), ("a", 0.0, 2.0), ("a", 2.0, 3.0), ("b", 1.0, 5.0), ("a", 4.0, 6.0)]
    assert timeline.assign_lanes(spans) == [0, 1, 1, 0, 0]
    use = timeline.usage([("a", 0.0, 1.0), ("a", 3.0, 4.0)], [0, 0])
    assert use == timeline.Usage(busy=0.5, longest_gap_s=2.0, slots=1)


def test_timeline_bars_start_and_last_as_stored() -> None:
    """Two slots (two trials at a time); each bar's base is its start and its length its
    run; a running trial ends at ``now``; queued time is its own trace."""
    trials = trials_table(6)
    now = T0 + pd.Timedelta(seconds=20)
    section = timeline.timeline(trials, now)
    traces = {t.name: t for t in section.figure.data}
    assert set(traces) == {"queued", "completed", "failed", "running"}
    assert set(traces["completed"].y) == {"10.0.0.1 · 1", "10.0.0.1 · 2"}
    assert list(traces["completed"].customdata) == [0, 1, 2, 4]
    assert list(traces["completed"].x) == [4000.0] * 4
    assert traces["running"].x[0] == (now - (T0 + pd.Timedelta(seconds=10))).total_seconds() * 1000
    assert section.note is not None
    assert section.note.startswith("2 worker slot(s) busy")


def test_gradient_figures_pick_columns_by_prefix() -> None:
    """Loss per objective, parameter trajectories, gradient norm on a log axis, and one
    line per simulator's time."""
    steps = pd.DataFrame(
        {
            "step": [0, 1, 2],
            "loss": [3.0, 2.0, 1.0],
            "losses/energy": [4.0, 3.0, 1.5],
            "losses/rdf": [2.0, 1.0, 0.5],
            "grad_norm": [1.0, 0.5, 0.25],
            "params/eps": [1.0, 1.1, 1.2],
            "params/sigma/0": [0.5, 0.4, 0.3],
            "timings/step_s": [2.0, 2.1, 2.2],
            "timings/simulators_s/sim.0": [1.5, 1.6, 1.7],
            "timings/simulators_s/sim.1": [0.5, 0.6, 0.7],
        }
    )
    assert [t.name for t in gradient.loss(steps).figure.data] == ["loss", "energy", "rdf"]
    trajectories = gradient.parameters(steps).figure.data
    assert [t.name for t in trajectories] == ["eps", "sigma/0"]
    assert list(trajectories[1].y) == [0.5, 0.4, 0.3]
    norm = gradient.grad_norm(steps).figure
    assert norm.layout.yaxis.type == "log"
    times = gradient.simulator_times(steps).figure.data
    assert [t.name for t in times] == ["sim.0", "sim.1", "whole step"]
    empty = steps.iloc[0:0]
    assert gradient.loss(empty).note == "no step stored yet"


def test_importing_the_figures_keeps_raysweep_report_the_function() -> None:
    """The figures live in ``raysweep.plots``: a package named ``raysweep.report`` would
    shadow ``raysweep.report()`` (what trials call) once imported."""
    import raysweep
    import raysweep.plots  # the import is what is tested

    assert callable(raysweep.report)
