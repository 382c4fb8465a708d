"""``raysweep report``: one offline HTML file, checked in a real headless browser
against the store it was made from."""

from __future__ import annotations

import math
import re
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import raysweep
from raysweep.cli import cli
from raysweep.store import NewTrial, SQLiteStore, TrialUpdate
from raysweep.trial import TrialState
from tests.conftest import wait_until
from tests.report.browser import console_errors, plot_data, screenshot
from tests.report.helpers import make_sweep

SWEEP_PLOTS = ("history", "parallel", "importance", "slices", "contour", "intermediate", "timeline")


def report(directory: Path, out: Path) -> Path:
    result = CliRunner().invoke(cli, ["report", str(directory), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("wrote ")
    return out


def open_page(browser: Any, path: Path, plots: int) -> None:
    """Load ``path`` and wait until plotly has drawn ``plots`` plots."""
    browser.get(path.as_uri())
    wait_until(
        lambda: (
            browser.execute_script("return document.querySelectorAll('.js-plotly-plot').length")
            == plots
        ),
        f"{plots} plots drawn in {path.name}",
    )


def completed_losses(exp: Any) -> dict[int, float]:
    return {t.trial_id: t.metrics["loss"] for t in exp.trials if t.state is TrialState.COMPLETED}


def test_report_is_one_file_with_no_outside_references(tmp_path: Path) -> None:
    """plotly.js is inlined: no script or stylesheet is fetched from anywhere."""
    html = report(make_sweep(tmp_path), tmp_path / "report.html").read_text()
    assert not re.search(r"<script[^>]+src=", html)
    assert not re.search(r"<link[^>]+href=\"http", html)
    assert "Plotly.newPlot" in html
    assert html.count('class="plot"') == len(SWEEP_PLOTS)


def test_report_of_a_sweep_in_the_browser_matches_the_store(browser: Any, tmp_path: Path) -> None:
    """Every named plot is drawn with no console error, and its points are the stored ones."""
    directory = make_sweep(tmp_path)
    out = report(directory, tmp_path / "report.html")
    open_page(browser, out, len(SWEEP_PLOTS))
    assert console_errors(browser) == []
    screenshot(browser, "report-sweep")
    exp = raysweep.load(directory)
    losses = completed_losses(exp)
    best_line, dots = plot_data(browser, "history")
    assert dict(zip(dots["x"], dots["y"], strict=True)) == pytest.approx(losses)
    assert best_line["y"][-1] == pytest.approx(min(losses.values()))
    (parallel,) = plot_data(browser, "parallel")
    assert [d["label"] for d in parallel["dimensions"]] == ["x", "lr", "act", "loss"]
    assert parallel["dimensions"][-1]["values"] == pytest.approx(list(losses.values()))
    bars = plot_data(browser, "importance")[0]
    assert sorted(bars["y"]) == ["act", "lr", "x"]
    assert bars["y"][-1] == "x"  # x drives the loss: the top bar
    curves = {
        int(t["name"].split()[1]): t["y"]
        for t in plot_data(browser, "intermediate")
        if t["name"].startswith("trial ")
    }
    stored = {t.trial_id: [r["loss"] for r in t.intermediate] for t in exp.trials if t.intermediate}
    assert curves == pytest.approx(stored)
    pruned = next(t for t in plot_data(browser, "intermediate") if t["name"] == "pruned here")
    assert sorted(pruned["customdata"]) == [
        t.trial_id for t in exp.trials if t.state.value == "PRUNED"
    ]
    drawn = [i for t in plot_data(browser, "timeline") if t["customdata"] for i in t["customdata"]]
    assert sorted(drawn) == [t.trial_id for t in exp.trials]
    failed = browser.execute_script(
        "return Array.from(document.querySelectorAll('#table-failed tbody tr'))"
        ".map(r => [r.cells[0].textContent, r.cells[3].textContent])"
    )
    errors = [t for t in exp.trials if t.state is TrialState.FAILED]
    assert failed == [[str(t.trial_id), (t.error or "").splitlines()[-1]] for t in errors]


def test_report_of_a_multi_objective_sweep_draws_its_pareto_front(
    browser: Any, tmp_path: Path
) -> None:
    """The front's points are the stored Pareto front, each at its two stored metrics."""
    directory = make_sweep(tmp_path, "multi", multi=True)
    out = report(directory, tmp_path / "multi.html")
    open_page(browser, out, len(SWEEP_PLOTS) + 1)
    assert console_errors(browser) == []
    screenshot(browser, "report-multi-objective")
    exp = raysweep.load(directory)
    _, front = plot_data(browser, "pareto")
    assert sorted(front["customdata"]) == sorted(t.trial_id for t in exp.pareto_front)
    by_id = {t.trial_id: t for t in exp.pareto_front}
    for trial_id, x, y in zip(front["customdata"], front["x"], front["y"], strict=True):
        assert (x, y) == pytest.approx(
            (by_id[trial_id].metrics["loss"], by_id[trial_id].metrics["cost"])
        )


def test_report_of_a_running_sweep_says_what_it_cannot_show_yet(
    browser: Any, tmp_path: Path
) -> None:
    """Two trials running, one done: importance says how many it needs; running bars end now."""
    store = SQLiteStore.create(
        tmp_path / "live",
        {"kind": "sweep", "name": "live", "objective": "m:f", "metric": "loss", "mode": "min",
         "num_trials": 10, "space": {}, "constraints": [],
         "searcher": {"name": "random", "options": {}}},
    )  # fmt: skip
    now = time.time()
    store.commit(
        new=[NewTrial(i, {"x": 0.1 * i}, TrialState.RUNNING, now - 30) for i in range(3)],
        updates=[
            TrialUpdate(0, state=TrialState.COMPLETED, metrics={"loss": 0.5}, started_at=now - 20,
                        ended_at=now - 10, node="10.0.0.1", attempts=1),
            TrialUpdate(1, started_at=now - 15, node="10.0.0.1", attempts=1),
            TrialUpdate(2, started_at=now - 5, node="10.0.0.2", attempts=1),
        ],
        meta={"status": "running", "started_at": now - 30},
    )  # fmt: skip
    try:
        out = report(tmp_path / "live", tmp_path / "live.html")
    finally:
        store.close()
    browser.get(out.as_uri())
    wait_until(
        lambda: browser.execute_script("return !!document.getElementById('plot-timeline').data"),
        "the timeline drawn",
    )
    assert console_errors(browser) == []
    note = browser.find_element("id", "note-importance").text
    assert note == "importance needs ≥ 8 completed trials, there are 1"
    running = next(t for t in plot_data(browser, "timeline") if t["name"] == "running")
    assert sorted(running["customdata"]) == [1, 2]
    assert all(length > 0 and math.isfinite(length) for length in running["x"])


@pytest.mark.ray
def test_report_of_a_gradient_run_in_the_browser(
    ray_session: None, browser: Any, storage: Path
) -> None:
    """A real RayOptimizer run: loss, parameters, gradient norm and simulator times per step."""
    import optax

    from raysweep.gradient import RayOptimizer
    from tests.gradient.helpers import make_units

    sims, objectives = make_units(2)
    RayOptimizer(sims, objectives, optax.sgd(0.1), name="fit", storage=storage).run(
        {"a": 0.0}, n_steps=5
    )
    out = report(storage / "fit", storage / "fit.html")
    open_page(browser, out, 4)
    assert console_errors(browser) == []
    screenshot(browser, "report-gradient")
    steps = raysweep.load(storage / "fit").steps
    (loss,) = plot_data(browser, "loss")
    assert loss["y"] == pytest.approx([s.data["loss"] for s in steps])
    (param,) = plot_data(browser, "params")
    assert param["y"] == pytest.approx([s.data["params"]["a"] for s in steps])
    (norm,) = plot_data(browser, "grad_norm")
    assert norm["y"] == pytest.approx([s.data["grad_norm"] for s in steps])
    times = {t["name"]: t["y"] for t in plot_data(browser, "sim_times")}
    assert set(times) == {"s.0", "s.1", "whole step"}
    assert times["s.1"] == pytest.approx([s.data["timings"]["simulators_s"]["s.1"] for s in steps])


def test_report_of_a_missing_experiment_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """No traceback: exit 2 and one line naming what is missing."""
    result = CliRunner().invoke(
        cli, ["report", str(tmp_path / "nope"), "-o", str(tmp_path / "r.html")]
    )
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")
    assert len(result.stderr.strip().splitlines()) == 1
    bad_out = CliRunner().invoke(
        cli, ["report", str(make_sweep(tmp_path)), "-o", str(tmp_path / "no" / "r.html")]
    )
    assert bad_out.exit_code == 2
    assert "does not exist" in bad_out.stderr
