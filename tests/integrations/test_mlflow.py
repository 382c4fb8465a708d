"""MLflow against a local SQLite tracking store, read back with MlflowClient: a parent
run per sweep, a nested run per trial, step series, resume without duplicates."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from raysweep.integrations import MLflowCallback
from raysweep.sweep.execution import FakeClock, InProcessBackend
from raysweep.trial import TrialState
from tests.integrations.helpers import STEPS, gradient_outputs, sweep

mlflow = pytest.importorskip("mlflow")


@pytest.fixture
def uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A SQLite tracking store under tmp_path (artifacts there too)."""
    monkeypatch.chdir(tmp_path)
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def _callback(uri: str, **options: Any) -> MLflowCallback:
    return MLflowCallback(uri, artifact_location=str(Path.cwd() / "artifacts"), **options)


def _runs(uri: str, experiment: str = "exp") -> tuple[Any, list[Any], Any]:
    """(the client, every run of the experiment, the parent run)."""
    client = mlflow.MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    assert found is not None
    runs = client.search_runs([found.experiment_id], max_results=1000)
    parents = [r for r in runs if r.data.tags.get("raysweep.kind") in ("sweep", "gradient")]
    assert len(parents) == 1
    return client, runs, parents[0]


def test_a_sweep_is_a_parent_run_with_a_nested_run_per_trial(uri: str, storage: Path) -> None:
    """Params, the step series of every report, final metrics and states are read back."""
    callback = _callback(uri)
    result = sweep(storage, [callback], num_trials=4)
    assert (callback.errors, callback.dropped) == (0, 0)
    client, runs, parent = _runs(uri)
    assert parent.info.run_name == "exp"
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["raysweep.stop_reason"] == "num_trials reached"
    best = result.best
    assert best is not None
    assert parent.data.tags["raysweep.best_trial"] == str(best.trial_id)
    assert parent.data.metrics["best/loss"] == pytest.approx(best.metrics["loss"])
    trials = {int(r.data.tags["raysweep.trial_id"]): r for r in runs if r is not parent}
    assert sorted(trials) == [0, 1, 2, 3]
    for trial in result.trials:
        run = trials[trial.trial_id]
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.info.status == "FINISHED"
        assert run.data.tags["raysweep.state"] == "COMPLETED"
        assert run.data.params == {k: str(v) for k, v in trial.config.items()}
        history = client.get_metric_history(run.info.run_id, "loss")
        assert sorted((m.step, m.value) for m in history) == [
            (r["step"], pytest.approx(r["loss"])) for r in trial.intermediate
        ]
        assert len(history) == STEPS  # the final loss equals the last report's: no repeat
        assert run.data.metrics["accuracy"] == pytest.approx(trial.metrics["accuracy"])


def test_failed_trials_end_with_their_status(uri: str, storage: Path) -> None:
    """A failing trial's run is FAILED with the error as a tag."""

    def sometimes(config: dict[str, Any]) -> float:
        if config["x"] > 0.5:
            raise ValueError("diverged")
        return float(config["x"])

    result = sweep(storage, [_callback(uri)], num_trials=6, objective=sometimes)
    _, runs, parent = _runs(uri)
    by_id = {int(r.data.tags["raysweep.trial_id"]): r for r in runs if r is not parent}
    for trial in result.trials:
        run = by_id[trial.trial_id]
        if trial.state is TrialState.FAILED:
            assert run.info.status == "FAILED"
            assert "ValueError: diverged" in run.data.tags["raysweep.error"]
        else:
            assert run.info.status == "FINISHED"
    assert {t.state for t in result.trials} == {TrialState.FAILED, TrialState.COMPLETED}


def test_a_resumed_sweep_logs_into_the_same_runs(uri: str, storage: Path) -> None:
    """Resuming (after a stop that abandoned trials) reuses the parent run and each
    trial's run: one run per trial, and every abandoned run finished after all."""
    clock = FakeClock()
    backend = InProcessBackend(concurrency=2, clock=clock, duration=lambda c: 30.0)
    first = sweep(
        storage,
        [_callback(uri)],
        num_trials=8,
        clock=clock,
        backend=backend,
        stop={"time_budget_s": 100.0},
    )
    abandoned = [t.trial_id for t in first.trials if t.state is TrialState.ABANDONED]
    assert abandoned
    _, runs, parent = _runs(uri)
    killed = {int(r.data.tags["raysweep.trial_id"]) for r in runs if r.info.status == "KILLED"}
    assert killed == set(abandoned)
    second = sweep(storage, [_callback(uri)], num_trials=8, resume=True)
    assert second.count(TrialState.COMPLETED) == 8
    client, runs, parent_again = _runs(uri)
    assert parent_again.info.run_id == parent.info.run_id
    trial_runs = [r for r in runs if r is not parent_again]
    assert sorted(int(r.data.tags["raysweep.trial_id"]) for r in trial_runs) == list(range(8))
    assert {r.info.status for r in trial_runs} == {"FINISHED"}
    for run in trial_runs:  # each step once, however often the trial ran
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "loss")]
        assert sorted(steps) == sorted(set(steps))


def test_a_tracking_store_that_cannot_be_written_leaves_the_sweep_completed(
    tmp_path: Path, storage: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tracking URI under a file (so no folder can be made there): one error line,
    counted; the sweep completes with its results."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a-file").write_text("not a folder")
    callback = MLflowCallback(f"sqlite:///{tmp_path / 'a-file' / 'mlflow.db'}")
    with caplog.at_level(logging.ERROR, logger="raysweep.integrations"):
        result = sweep(storage, [callback], num_trials=3)
    assert result.count(TrialState.COMPLETED) == 3
    assert callback.errors == 1
    assert callback.dropped > 0
    (record,) = caplog.records
    assert "MLflowCallback: _log_experiment_start raised" in record.getMessage()


def test_a_gradient_run_is_one_run_with_step_series(uri: str) -> None:
    """Loss, per-objective loss, grad norm and params per step; a resumed fit continues
    the same run and logs no step twice."""
    with _callback(uri, run_name="fit") as callback:
        for output in gradient_outputs(first=0, last=2):
            callback(output, output.step)
    # A resumed process: its history holds steps 0..2, one of them logged again.
    with _callback(uri, run_name="fit") as callback:
        for output in gradient_outputs(first=2, last=4):
            callback(output, output.step)
    assert (callback.errors, callback.dropped) == (0, 0)
    client, runs, run = _runs(uri, experiment="fit")
    assert len(runs) == 1
    assert run.info.status == "FINISHED"
    assert run.data.tags["raysweep.kind"] == "gradient"
    loss = client.get_metric_history(run.info.run_id, "loss")
    assert sorted((m.step, m.value) for m in loss) == [
        (s, pytest.approx(1.0 / (s + 1))) for s in range(5)
    ]
    for key in ("loss/fit", "grad_norm", "params/a", "params/b/1", "timings/step_s"):
        assert len(client.get_metric_history(run.info.run_id, key)) == 5
