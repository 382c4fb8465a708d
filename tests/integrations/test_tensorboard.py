"""TensorBoard event files read back with TensorBoard's EventAccumulator: scalars per
trial, the HParams dashboard's session data, a gradient run's series."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from raysweep.integrations import TensorBoardCallback
from raysweep.trial import TrialState
from tests.integrations.helpers import gradient_outputs, sweep

pytest.importorskip("tensorboard")

SESSION_START = "_hparams_/session_start_info"
SESSION_END = "_hparams_/session_end_info"


def _read(folder: Path) -> Any:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(folder))
    accumulator.Reload()
    return accumulator


def _session(accumulator: Any) -> Any:
    """The hparams plugin's data of a trial's session start."""
    from tensorboard.plugins.hparams import plugin_data_pb2

    content = accumulator.PluginTagToContent("hparams")[SESSION_START]
    return plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info


def test_each_trial_has_its_folder_with_scalars_and_hparams(tmp_path: Path, storage: Path) -> None:
    """A folder per trial: every report as scalars at its step, the final metrics, and
    the configuration as the HParams session with a success status."""
    callback = TensorBoardCallback(tmp_path / "tb")
    result = sweep(storage, [callback], num_trials=3)
    assert (callback.errors, callback.dropped) == (0, 0)
    root = tmp_path / "tb" / "exp"
    assert sorted(p.name for p in root.iterdir()) == ["trial_0", "trial_1", "trial_2"]
    for trial in result.trials:
        accumulator = _read(root / f"trial_{trial.trial_id}")
        loss = accumulator.Scalars("loss")
        assert [(e.step, e.value) for e in loss] == [
            (r["step"], pytest.approx(r["loss"], rel=1e-6)) for r in trial.intermediate
        ]
        (accuracy,) = accumulator.Scalars("accuracy")
        assert accuracy.step == trial.last_step
        assert accuracy.value == pytest.approx(trial.metrics["accuracy"], rel=1e-6)
        session = _session(accumulator)
        assert session.group_name == f"trial_{trial.trial_id}"
        assert session.hparams["x"].number_value == pytest.approx(trial.config["x"])
        assert session.hparams["layers"].number_value == trial.config["layers"]
        assert session.hparams["opt"].string_value == trial.config["opt"]
        assert SESSION_END in accumulator.PluginTagToContent("hparams")


def test_a_resumed_sweep_keeps_one_session_per_trial(tmp_path: Path, storage: Path) -> None:
    """Resuming adds folders for new trials only, and a trial's session is not started twice."""
    sweep(storage, [TensorBoardCallback(tmp_path / "tb")], num_trials=2)
    result = sweep(storage, [TensorBoardCallback(tmp_path / "tb")], num_trials=4, resume=True)
    assert result.count(TrialState.COMPLETED) == 4
    root = tmp_path / "tb" / "exp"
    assert sorted(p.name for p in root.iterdir()) == [f"trial_{i}" for i in range(4)]
    for folder in root.iterdir():
        assert len(list(folder.glob("events.out.tfevents.*"))) == 1
        assert len(_read(folder).Scalars("loss")) == 3


def test_a_gradient_run_writes_its_series_per_step(tmp_path: Path) -> None:
    """Loss, per-objective loss, grad norm and params per step in the run's folder; a
    resumed fit appends the new steps."""
    with TensorBoardCallback(tmp_path / "tb", run_name="fit") as callback:
        for output in gradient_outputs(first=0, last=2):
            callback(output, output.step)
    with TensorBoardCallback(tmp_path / "tb", run_name="fit") as callback:
        for output in gradient_outputs(first=3, last=4):
            callback(output, output.step)
    accumulator = _read(tmp_path / "tb" / "fit")
    assert [(e.step, e.value) for e in accumulator.Scalars("loss")] == [
        (s, pytest.approx(1.0 / (s + 1))) for s in range(5)
    ]
    for tag in ("loss/fit", "grad_norm", "params/a", "params/b/0", "timings/step_s"):
        assert [e.step for e in accumulator.Scalars(tag)] == list(range(5))
