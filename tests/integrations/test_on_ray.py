"""End to end on the shared local Ray: a sweep and a gradient fit logging to MLflow
and TensorBoard, read back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import raysweep as rs
from raysweep.integrations import MLflowCallback, TensorBoardCallback
from tests.integrations.helpers import SPACE, STEPS, reporting

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_session")]

mlflow = pytest.importorskip("mlflow")
pytest.importorskip("tensorboard")


def test_a_sweep_on_ray_logs_every_trial(
    tmp_path: Path, storage: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reports sent from Ray workers reach MLflow and TensorBoard as step series."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    callbacks = [MLflowCallback(uri), TensorBoardCallback(tmp_path / "tb")]
    result = rs.run(
        reporting,
        SPACE,
        num_trials=4,
        max_concurrent=2,
        name="on-ray",
        storage=storage,
        seed=1,
        verbose=0,
        callbacks=callbacks,
    )
    assert result.count(rs.TrialState.COMPLETED) == 4
    assert [(c.errors, c.dropped) for c in callbacks] == [(0, 0), (0, 0)]
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("on-ray")
    runs = client.search_runs([experiment.experiment_id])
    trial_runs = [r for r in runs if r.data.tags.get("raysweep.kind") == "trial"]
    assert len(trial_runs) == 4
    for run in trial_runs:
        assert len(client.get_metric_history(run.info.run_id, "loss")) == STEPS
    for trial in result.trials:
        accumulator = EventAccumulator(str(tmp_path / "tb" / "on-ray" / f"trial_{trial.trial_id}"))
        accumulator.Reload()
        assert [e.step for e in accumulator.Scalars("loss")] == list(range(STEPS))


def test_a_gradient_fit_on_ray_logs_every_step(tmp_path: Path, storage: Path) -> None:
    """An integration as RayOptimizer's callback: one series point per step."""
    import optax
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from raysweep.gradient import RayOptimizer
    from tests.gradient.helpers import make_units

    sims, objs = make_units(2)
    opt = RayOptimizer(
        simulators=sims,
        objectives=objs,
        optimizer=optax.sgd(0.25),
        remote_options_default={"num_cpus": 1},
        name="fit",
        storage=storage,
    )
    with TensorBoardCallback(tmp_path / "tb", run_name="fit") as callback:
        out = opt.run({"a": np.asarray(0.0, dtype=np.float32)}, n_steps=4, callback=callback)
    assert (callback.errors, callback.dropped) == (0, 0)
    accumulator = EventAccumulator(str(tmp_path / "tb" / "fit"))
    accumulator.Reload()
    loss = accumulator.Scalars("loss")
    assert [e.step for e in loss] == [0, 1, 2, 3]
    assert [e.value for e in loss] == pytest.approx([h["loss"] for h in out.history], rel=1e-6)
    assert [e.step for e in accumulator.Scalars("params/a")] == [0, 1, 2, 3]
