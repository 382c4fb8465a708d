"""Multi-objective sweeps end to end without Ray: lists of metrics in Python and
YAML, their errors, the worker's judgement of each metric, stop conditions that
follow one metric, resume checks, and the Pareto front in the result, the
progress display, ``raysweep status`` and ``raysweep export``."""

from __future__ import annotations

import io
import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner
from rich.console import Console

import raysweep as rs
from raysweep.cli import cli
from raysweep.errors import SpecError
from raysweep.objectives import Objectives
from raysweep.sweep.callbacks import ExperimentInfo
from raysweep.sweep.config import SweepConfig
from raysweep.sweep.execution import FakeClock, InProcessBackend
from raysweep.sweep.execution._worker import execute_trial, judge_result
from raysweep.sweep.progress import ProgressCallback
from raysweep.sweep.searchers import RandomSearcher
from raysweep.sweep.stopping import Stop
from raysweep.sweep.sweepfile import load_sweep_file
from raysweep.trial import Trial, TrialState
from tests.sweep.test_sweepfile import write_sweep

SPACE = {"x": rs.uniform(0.0, 2.0), "tag": "fixed"}
TWO = {"metric": ["loss", "latency"], "mode": ["min", "min"]}


def two_metrics(config: Mapping[str, Any]) -> dict[str, float]:
    """loss falls until x = 0.5 while latency rises with x: a trade-off below 0.5."""
    return {"loss": (config["x"] - 0.5) ** 2, "latency": config["x"] + 1.0, "x2": 2 * config["x"]}


class ParetoRandom(RandomSearcher):
    """Random search (multi-objective: it ignores the objective), recording what it
    is told."""

    def __init__(self, seed: int | None = None) -> None:
        super().__init__(seed)
        self.completed: list[Trial] = []
        self.errored: list[int] = []

    def on_trial_complete(self, trial: Trial) -> None:
        self.completed.append(trial)

    def on_trial_error(self, trial: Trial) -> None:
        self.errored.append(trial.trial_id)


class SingleObjectiveOnly(RandomSearcher):
    """A searcher that optimizes one metric only."""

    multi_objective = False


def run(folder: Path, objective: Any = two_metrics, **kwargs: Any) -> rs.Result:
    kwargs = {**TWO, "num_trials": 12, "name": "mo", "seed": 3, **kwargs}
    kwargs.setdefault("searcher", ParetoRandom())
    clock = FakeClock()
    return rs.run(
        objective,
        kwargs.pop("space", SPACE),
        storage=folder,
        backend=InProcessBackend(concurrency=3, clock=clock),
        clock=clock,
        verbose=0,
        **kwargs,
    )


def invoke(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def build(**values: Any) -> SweepConfig:
    base = {"objective": two_metrics, "space": SPACE, "num_trials": 4, "name": "c"}
    return SweepConfig.build({**base, "searcher": ParetoRandom(), **values})


# -- the options ---------------------------------------------------------------------


def test_metric_lists_in_python_normal_form_and_stored_spec() -> None:
    """Lists become tuples, one mode applies to all, and the spec stores lists."""
    config = build(metric=["loss", "latency"], mode="max")
    assert (config.metric, config.mode) == (("loss", "latency"), ("max", "max"))
    assert config.objectives.names == ("loss", "latency")
    assert config.objectives.metric == "loss"
    spec = config.to_spec()
    assert (spec["metric"], spec["mode"]) == (["loss", "latency"], ["max", "max"])
    SweepConfig.check_stored(spec)
    assert config.replace(num_trials=5).objectives == config.objectives


def test_one_metric_is_stored_as_before_and_an_old_spec_resumes_unchanged() -> None:
    """One metric is stored as a string, so a spec of an older version shows no change."""
    config = build(searcher="random")
    spec = config.to_spec()
    assert (spec["metric"], spec["mode"]) == ("loss", "min")
    assert config.resume_changes({**spec, "metric": "loss", "mode": "min"}) == ([], [])
    refused, _ = build(**TWO).resume_changes(spec)
    assert "metric: 'loss' -> ['loss', 'latency']" in refused
    assert "mode: 'min' -> ['min', 'min']" in refused


def test_yaml_lists_round_trip(tmp_path: Path) -> None:
    """A sweep file's metric and mode lists build the same config as Python lists."""
    path = write_sweep(tmp_path, metric=["loss", "acc"], mode=["min", "max"], stop={})
    config = load_sweep_file(path)
    assert config.objectives.describe() == "minimize loss, maximize acc"
    assert config.to_spec()["mode"] == ["min", "max"]
    one_mode = load_sweep_file(write_sweep(tmp_path / "b", metric=["loss", "acc"], mode="max"))
    assert one_mode.mode == ("max", "max")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"metric": []}, "metric: expected a metric name or a non-empty list of names, got []"),
        (
            {"metric": ["loss", "loss"]},
            "metric: metric names must be distinct, 'loss' is given twice",
        ),
        (
            {"metric": ["loss", 3]},
            "metric: expected non-empty strings as metric names, got 3 in ['loss', 3]",
        ),
        (
            {"metric": ["loss", ""]},
            "metric: expected non-empty strings as metric names, got '' (str) in ['loss', '']",
        ),
        (
            {**TWO, "mode": ["min"]},
            "mode: 1 direction(s) given for 2 metric(s) ['loss', 'latency']; give one "
            "'min'/'max' per metric, or one string for all",
        ),
        (
            {**TWO, "mode": ["min", "maxx"]},
            "mode: expected 'min' or 'max' for each metric, got 'maxx' (str) for 'latency'",
        ),
        (
            {**TWO, "mode": 3},
            "mode: expected 'min' or 'max', or a list with one per metric, got 3",
        ),
        (
            {**TWO, "stop": {"target": 1}},
            "stop.target: with 2 metrics (loss, latency) it must follow one; name it, e.g. "
            "stop: {target: 1, metric: loss}",
        ),
        (
            {**TWO, "stop": {"patience": 5}},
            "stop.patience: with 2 metrics (loss, latency) it must follow one; name it, e.g. "
            "stop: {patience: 5, metric: loss}",
        ),
        (
            {**TWO, "stop": {"target": 1, "metric": "nope"}},
            "stop.metric: 'nope' is not an objective metric; expected one of: loss, latency",
        ),
        (
            {"stop": {"patience": 3, "metric": "latency"}},
            "stop.metric: 'latency' is not an objective metric; expected one of: loss",
        ),
        (
            {**TWO, "stop": {"metric": "loss"}},
            "stop.metric: names the metric target or patience follow, but neither is given; "
            "add one, e.g. {target: 0.1, metric: loss}",
        ),
        (
            {**TWO, "stop": {"target": 1, "metric": 4}},
            "stop.metric: expected an objective metric name, got 4",
        ),
    ],
)
def test_bad_metric_mode_and_stop_give_one_line(values: dict[str, Any], message: str) -> None:
    """Each bad input is one line naming the option, the bad entry and what is expected."""
    with pytest.raises(SpecError) as info:
        build(**values)
    assert str(info.value) == message


def test_a_sweep_file_error_names_the_file(tmp_path: Path) -> None:
    """The same rules apply to sweep files, prefixed with the file's path."""
    path = write_sweep(tmp_path, metric=["loss", "latency"], stop={"target": 0.5})
    with pytest.raises(SpecError, match=r"sweep\.yaml: stop\.target: with 2 metrics") as info:
        load_sweep_file(path)
    assert "\n" not in str(info.value)


def test_a_single_objective_searcher_is_refused_with_two_metrics() -> None:
    """A searcher that cannot weigh several metrics fails at start, naming ones that can."""
    with pytest.raises(SpecError, match=r"^searcher: 'random' cannot optimize 2 metrics; use "):
        build(**TWO, searcher=SingleObjectiveOnly())


def test_stop_metric_makes_the_primary_metric() -> None:
    """stop.metric picks the metric best-so-far, target and patience follow."""
    config = build(**TWO, stop={"target": 1.2, "metric": "latency"})
    assert config.stop == Stop(target=1.2, metric="latency")
    assert config.objectives.metric == "latency"
    assert config.objectives.names == ("loss", "latency")
    assert config.to_spec()["stop"] == {"target": 1.2, "metric": "latency"}


# -- the worker ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"loss": 1.0}, "objective returned keys ['loss'] but not the metric 'latency'"),
        ({"x": 1.0}, "objective returned keys ['x'] but not the metrics 'loss', 'latency'"),
        ({"loss": 1.0, "latency": math.nan}, "metric 'latency' is nan (not finite)"),
        ({"loss": math.inf, "latency": 1.0}, "metric 'loss' is inf (not finite)"),
        ({"loss": 1.0, "latency": "fast"}, "metric 'latency' is not a number: 'fast' (str)"),
        (
            0.5,
            "objective returned float 0.5 but 2 metrics are optimized; return a dict with "
            "keys loss, latency",
        ),
        (
            None,
            "objective returned None but 2 metrics are optimized; return a dict with keys "
            "loss, latency",
        ),
    ],
)
def test_worker_fails_a_trial_missing_or_non_finite_in_any_metric(value: Any, message: str) -> None:
    """Every objective metric must be there and finite; the reason names the metric."""
    with pytest.raises(ValueError) as info:
        judge_result(value, ("loss", "latency"))
    assert str(info.value) == message
    payload = execute_trial(lambda c: value, 0, {}, ("loss", "latency"))
    assert (payload["ok"], payload["error"], payload["metrics"]) == (False, message, {})


def test_worker_keeps_every_metric_of_a_good_result() -> None:
    """A dict with both metrics and extras is kept whole; one metric still takes a number."""
    assert judge_result({"x": 1, "latency": 2, "loss": 3}, ["loss", "latency"]) == {
        "x": 1.0,
        "latency": 2.0,
        "loss": 3.0,
    }
    assert judge_result(0.25, "loss") == {"loss": 0.25}


# -- a sweep ---------------------------------------------------------------------------


def brute_front(trials: tuple[Trial, ...]) -> list[int]:
    """Ids of completed trials no other completed trial beats on both metrics."""
    done = [t for t in trials if t.state is TrialState.COMPLETED]

    def beats(a: Trial, b: Trial) -> bool:
        pairs = [(a.metrics[k], b.metrics[k]) for k in ("loss", "latency")]
        return all(x <= y for x, y in pairs) and any(x < y for x, y in pairs)

    return sorted(t.trial_id for t in done if not any(beats(o, t) for o in done))


def test_sweep_returns_the_pareto_front_and_status_and_export_show_it(storage: Path) -> None:
    """A real two-metric sweep: the front matches a brute-force one, status lists it
    by loss, export marks it, and the result's table has the same column."""
    searcher = ParetoRandom()
    result = run(storage, searcher=searcher, num_trials=16)
    ids = [t.trial_id for t in result.pareto_front()]
    assert ids == brute_front(result.trials)
    assert 2 <= len(ids) < 16
    assert len(searcher.completed) == 16
    assert result.best is not None
    assert result.best.trial_id == min(result.trials, key=lambda t: t.metrics["loss"]).trial_id
    assert list(result.trials_dataframe().query("pareto")["trial_id"]) == ids

    directory = str(storage / "mo")
    status = invoke("status", directory)
    assert "minimize loss, minimize latency" in status
    front_line = (
        rf"^pareto front +{len(ids)} trial\(s\) no other trial beats on every metric, by loss:$"
    )
    assert re.search(front_line, status, re.MULTILINE)
    assert not re.search("^best", status, re.MULTILINE)
    rows = [
        line.split() for line in status.splitlines() if line.split()[:1] in ([str(i)] for i in ids)
    ]
    assert [int(r[0]) for r in rows] == [
        t.trial_id for t in sorted(result.pareto_front(), key=lambda t: t.metrics["loss"])
    ]

    frame = pd.read_csv(io.StringIO(invoke("export", directory, "--format", "csv")))
    assert sorted(frame.loc[frame["pareto"], "trial_id"]) == ids
    assert frame["pareto"].dtype == bool
    data = json.loads(invoke("export", directory))
    assert sorted(t["trial_id"] for t in data["trials"] if t["pareto"]) == ids
    assert data["experiment"]["metric"] == ["loss", "latency"]


def test_single_metric_output_keeps_best_and_no_pareto_column(storage: Path) -> None:
    """With one metric, status shows the best trial and export has no pareto column."""
    result = run(storage, metric="loss", mode="min", searcher="random", num_trials=4)
    directory = str(storage / "mo")
    assert result.best is not None
    status = invoke("status", directory)
    assert re.search(rf"^best +trial {result.best.trial_id}: loss=", status, re.MULTILINE)
    assert "pareto" not in status
    assert "pareto" not in invoke("export", directory, "--format", "csv").splitlines()[0]
    assert "pareto" not in result.trials_dataframe().columns


def test_trials_missing_a_metric_fail_and_are_never_told_as_values(storage: Path) -> None:
    """A trial without latency, or with a NaN one, FAILS naming it; the searcher hears
    of it only as an error."""

    def flaky(config: Mapping[str, Any]) -> dict[str, float]:
        if config["x"] > 1.5:
            return {"loss": 1.0}
        if config["x"] > 1.0:
            return {"loss": 1.0, "latency": math.nan}
        return two_metrics(config)

    searcher = ParetoRandom()
    result = run(storage, flaky, searcher=searcher, num_trials=20)
    failed = [t for t in result.trials if t.state is TrialState.FAILED]
    assert failed
    for trial in failed:
        assert trial.error in (
            "objective returned keys ['loss'] but not the metric 'latency'",
            "metric 'latency' is nan (not finite)",
        )
    assert sorted(searcher.errored) == sorted(t.trial_id for t in failed)
    assert all(math.isfinite(t.metrics["latency"]) for t in searcher.completed)
    assert {t.trial_id for t in result.pareto_front()} <= {t.trial_id for t in searcher.completed}


def test_target_follows_the_named_metric(storage: Path) -> None:
    """stop: {target, metric: latency} stops once latency reaches it, whatever the loss."""
    result = run(storage, num_trials=200, stop={"target": 1.2, "metric": "latency"})
    assert result.stop_reason.startswith("target 1.2 of latency reached (best ")
    assert len(result.trials) < 200
    done = [t for t in result.trials if t.state is TrialState.COMPLETED]
    assert min(t.metrics["latency"] for t in done) <= 1.2
    assert result.best is not None
    assert result.best.metrics["latency"] == min(t.metrics["latency"] for t in done)


def test_patience_follows_the_named_metric(storage: Path) -> None:
    """Patience on a metric that never improves stops, though the other one varies."""

    def flat_latency(config: Mapping[str, Any]) -> dict[str, float]:
        return {"loss": config["x"], "latency": 1.0}

    result = run(storage, flat_latency, num_trials=100, stop={"patience": 4, "metric": "latency"})
    assert result.stop_reason == "no improvement of latency in the last 4 completed trials"
    assert len(result.trials) < 100


def test_resume_with_a_changed_metric_list_needs_force(storage: Path) -> None:
    """Changing the metrics of a stored experiment is refused unless forced."""
    run(storage, num_trials=3)
    db = storage / "mo" / "experiment.db"
    before = db.read_bytes()
    with pytest.raises(rs.ExperimentMismatchError, match=r"metric: \['loss', 'latency'\] -> "):
        run(storage, metric=["loss", "x2"], num_trials=5, resume=True)
    assert db.read_bytes() == before
    resumed = run(storage, metric=["loss", "x2"], num_trials=5, resume=True, force=True)
    assert resumed.objectives.names == ("loss", "x2")
    again = run(storage, metric=["loss", "x2"], num_trials=6, resume=True)
    assert len(again.trials) == 6


# -- the progress display ------------------------------------------------------------


def done_trial(trial_id: int, loss: float, latency: float) -> Trial:
    metrics = {"loss": loss, "latency": latency}
    return Trial(trial_id, TrialState.COMPLETED, {"x": trial_id / 10}, metrics=metrics)


def test_progress_shows_the_front_size_and_its_metrics() -> None:
    """Plain lines say when a trial joins the front and its size; the live frame
    lists the front's metrics by the first one."""
    out = io.StringIO()
    progress = ProgressCallback(Console(file=out, width=200), live=False, min_interval_s=0.0)
    objectives = Objectives.parse(["loss", "latency"], "min")
    progress.on_experiment_start(
        ExperimentInfo(name="mo", directory="runs/mo", objectives=objectives, num_trials=4)
    )
    for trial in (done_trial(0, 2, 1), done_trial(1, 1, 2), done_trial(2, 3, 3)):
        progress.on_trial_start(trial)
        progress.on_trial_complete(trial)
    lines = out.getvalue().splitlines()
    assert "minimizing loss, minimizing latency" in lines[0]
    assert "trial 0 completed loss=2, latency=1; joins the Pareto front: 1 trial" in lines[1]
    assert "trial 1 completed loss=1, latency=2; joins the Pareto front: 2 trials" in lines[2]
    assert "trial 2 completed loss=3, latency=3; Pareto front: 2 trials" in lines[3]
    assert "new best" not in out.getvalue()

    recorder = Console(record=True, width=140, file=io.StringIO())
    recorder.print(progress.renderable())
    frame = recorder.export_text()
    assert "pareto front 2 trial(s), by loss" in frame
    rows = [line.split() for line in frame.splitlines() if line.split()[:1] in (["0"], ["1"])]
    assert [r[:3] for r in rows] == [["1", "1", "2"], ["0", "2", "1"]]
    assert "best trial" not in frame


@pytest.mark.ray
@pytest.mark.slow
def test_cli_run_reads_the_metric_list_from_the_sweep_file(
    ray_session: None, tmp_path: Path
) -> None:
    """`raysweep run` on a sweep file with two metrics stores them, and its summary,
    status and export follow."""
    from tests.cli.test_cli_run import sweep_folder

    config = sweep_folder(
        tmp_path, searcher="random", metric=["loss", "double"], mode=["min", "max"]
    )
    summary = invoke("run", str(config))
    assert "pareto front: " in summary
    assert "best trial" not in summary
    directory = str(tmp_path / "runs" / "cli")
    assert "minimize loss, maximize double" in invoke("status", directory)
    assert "pareto front" in invoke("status", directory)
    frame = pd.read_csv(io.StringIO(invoke("export", directory, "--format", "csv")))
    assert frame["pareto"].any()
    assert json.loads(invoke("export", directory))["experiment"]["mode"] == ["min", "max"]


def test_a_resumed_run_shows_the_stored_front_from_its_start(storage: Path) -> None:
    """On resume the progress display starts from the stored Pareto front, not from the
    best trial alone."""
    first = run(storage, num_trials=8)
    stored_front = [t.trial_id for t in first.pareto_front()]
    seen: list[tuple[int, ...]] = []
    frames: list[str] = []

    class Capture(rs.Callback):
        def on_experiment_start(self, info: Any) -> None:
            seen.append(tuple(t.trial_id for t in info.front))

    progress = ProgressCallback(Console(file=io.StringIO()), live=False)

    class Frame(rs.Callback):
        def on_experiment_start(self, info: Any) -> None:
            recorder = Console(record=True, width=200, file=io.StringIO())
            recorder.print(progress.renderable())
            frames.append(recorder.export_text())

    run(storage, num_trials=9, resume=True, callbacks=[Capture(), progress, Frame()])
    assert seen == [tuple(stored_front)]
    assert f"pareto front {len(stored_front)} trial(s)" in frames[0]
