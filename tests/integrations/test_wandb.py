"""W&B in offline mode, read back from the run folders it writes (its ``.wandb``
transaction log parsed with W&B's own protocol buffers); no server is contacted."""

from __future__ import annotations

from pathlib import Path

import pytest

from raysweep.errors import SpecError
from raysweep.integrations import WandbCallback
from tests.integrations.helpers import (
    gradient_outputs,
    sweep,
    wandb_config,
    wandb_exit_code,
    wandb_history,
)

pytest.importorskip("wandb")


@pytest.fixture(autouse=True)
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """W&B strictly offline, everything it writes under tmp_path."""
    for key, sub in (
        ("WANDB_DIR", "wandb-dir"),
        ("WANDB_CONFIG_DIR", "wandb-config"),
        ("WANDB_CACHE_DIR", "wandb-cache"),
        ("WANDB_DATA_DIR", "wandb-data"),
    ):
        (tmp_path / sub).mkdir()
        monkeypatch.setenv(key, str(tmp_path / sub))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    return tmp_path


def _log(folder: Path, run_id: str) -> Path:
    """The transaction log of the offline run ``run_id`` (exactly one)."""
    (log,) = folder.glob(f"wandb/offline-run-*-{run_id}/run-{run_id}.wandb")
    return log


def test_each_trial_is_an_offline_run_with_its_history(tmp_path: Path, storage: Path) -> None:
    """One offline run per trial, with the trial's config, every report at its step,
    and exit code 0."""
    folder = tmp_path / "wandb-logs"
    callback = WandbCallback(project="demo", dir=folder)
    result = sweep(storage, [callback], num_trials=3)
    assert (callback.errors, callback.dropped) == (0, 0)
    assert len(list(folder.glob("wandb/offline-run-*"))) == 3
    for trial in result.trials:
        log = _log(folder, f"exp-trial-{trial.trial_id}")
        config = wandb_config(log)
        assert {k: config[k] for k in trial.config} == dict(trial.config)
        rows = [r for r in wandb_history(log) if "loss" in r]
        assert [(r["_step"], r["loss"]) for r in rows] == [
            (r["step"], pytest.approx(r["loss"])) for r in trial.intermediate
        ]
        final = [r for r in wandb_history(log) if "accuracy" in r]
        assert final[-1]["accuracy"] == pytest.approx(trial.metrics["accuracy"])
        assert wandb_exit_code(log) == 0


def test_a_gradient_run_is_one_offline_run(tmp_path: Path) -> None:
    """Every step's series in one run named after the fit."""
    folder = tmp_path / "wandb-logs"
    with WandbCallback(dir=folder, run_name="fit") as callback:
        for output in gradient_outputs(first=0, last=3):
            callback(output, output.step)
    assert (callback.errors, callback.dropped) == (0, 0)
    rows = wandb_history(_log(folder, "fit"))
    assert [r["_step"] for r in rows] == [0, 1, 2, 3]
    assert [r["loss"] for r in rows] == pytest.approx([1.0 / (s + 1) for s in range(4)])
    assert {"loss/fit", "grad_norm", "params/a", "params/b/1"} <= set(rows[-1])


def test_mode_is_checked() -> None:
    """Only W&B's modes are accepted."""
    with pytest.raises(SpecError, match="mode: expected one of offline, online, disabled"):
        WandbCallback(mode="offlin")
