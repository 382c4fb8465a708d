"""Early stopping and checkpoints on real Ray: the driver -> trial channel, worker
reuse after a prune, and a trial going on from its checkpoint after the driver
was killed."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import ray

import raysweep as rs
from raysweep.store import SQLiteStore
from raysweep.sweep.schedulers import Decision, Scheduler
from raysweep.trial import Trial, TrialState
from tests.conftest import REPO_ROOT, process_ended, wait_until
from tests.sweep.execution import checkpoint_driver, objectives

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_session")]


class PruneOddAtStep2(Scheduler):
    name = "prune_odd"

    def on_trial_result(self, trial: Trial, report: Mapping[str, Any]) -> Decision:
        if trial.trial_id % 2 and report["step"] == 2:
            return Decision.STOP
        return Decision.CONTINUE


def test_a_pruned_trial_hears_trial_pruned_and_its_worker_lives_on(storage: Path) -> None:
    result = rs.run(
        objectives.epochs_until_pruned,
        {"x": rs.uniform(0.0, 1.0), "epochs": 8},
        num_trials=4,
        max_concurrent=2,
        scheduler=PruneOddAtStep2(),
        name="prune",
        storage=storage,
        seed=0,
    )
    for trial in result.trials:
        if trial.trial_id % 2:
            assert trial.state is TrialState.PRUNED
            # Stopped at the report that was judged: nothing after step 2.
            assert [r["step"] for r in trial.intermediate] == [0, 1, 2]
            assert trial.metrics["loss"] == pytest.approx(trial.config["x"] / 3)
            marker = storage / "prune" / "trials" / str(trial.trial_id) / "files" / "pruned"
            pid = int(marker.read_text())  # TrialPruned reached the trial's own code
            assert pid == int(trial.intermediate[-1]["pid"])
            assert not process_ended(pid)  # the worker was not killed
        else:
            assert trial.state is TrialState.COMPLETED
            assert len(trial.intermediate) == 8


def test_asha_by_name_prunes_on_ray(storage: Path) -> None:
    result = rs.run(
        objectives.epochs_until_pruned,
        {"x": rs.uniform(0.0, 1.0), "epochs": 9},
        num_trials=12,
        max_concurrent=2,
        scheduler={"name": "asha", "max_t": 9, "grace_period": 1, "reduction_factor": 3},
        name="asha",
        storage=storage,
        seed=0,
    )
    pruned = [t for t in result.trials if t.state is TrialState.PRUNED]
    assert pruned, "ASHA pruned nothing among 12 trials"
    assert result.count(TrialState.PRUNED) + result.count(TrialState.COMPLETED) == 12
    for trial in pruned:
        assert trial.last_step is not None
        assert trial.last_step < 8
        assert not process_ended(int(trial.intermediate[-1]["pid"]))


def _stored(db_dir: Path) -> list[Trial]:
    store = SQLiteStore.open(db_dir, readonly=True)
    try:
        return store.trials()
    finally:
        store.close()


def test_a_trial_goes_on_from_its_checkpoint_after_the_driver_was_killed(
    storage: Path, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    gate.mkdir()
    hold = checkpoint_driver.HOLD_AT
    address = ray.get_runtime_context().gcs_address
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "src")])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.sweep.execution.checkpoint_driver", address,
         str(storage), str(gate)],
        cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    db_dir = storage / "ckpt"

    def held() -> bool:
        if proc.poll() is not None:
            stderr = proc.stderr.read().decode() if proc.stderr else ""
            pytest.fail(f"the driver exited ({proc.returncode}) before the kill:\n{stderr}")
        trials = _stored(db_dir) if (db_dir / "experiment.db").exists() else []
        return bool(trials) and trials[0].last_step == hold

    try:
        wait_until(held, f"the trial to report step {hold} and hold")
    finally:
        proc.kill()
        proc.wait()
    (before,) = _stored(db_dir)
    assert before.state is TrialState.RUNNING
    # Ray ends the killed driver's task; until it has, that attempt could go on
    # past the gate and save later checkpoints.
    worker = int(before.intermediate[-1]["pid"])
    wait_until(lambda: process_ended(worker), "Ray to end the killed driver's trial")

    (gate / "open").touch()
    result = rs.run(
        objectives.checkpointed_epochs,
        checkpoint_driver.space(str(gate)),
        num_trials=1,
        name="ckpt",
        storage=storage,
        seed=3,
        resume=True,
    )
    (trial,) = result.trials
    assert trial.state is TrialState.COMPLETED
    assert trial.attempts == 2
    # One series: steps 0..hold from the killed run, the rest from the checkpoint
    # it saved before reporting step `hold` (it holds the next epoch).
    assert [r["step"] for r in trial.intermediate] == list(range(10))
    assert {r["start"] for r in trial.intermediate if r["step"] > hold} == {hold + 1}
    assert {r["start"] for r in trial.intermediate if r["step"] <= hold} == {0}


class PruneAtStep1(Scheduler):
    name = "prune_at_1"

    def __init__(self) -> None:
        super().__init__(stop_grace_s=0.5)

    def on_trial_result(self, trial: Trial, report: Mapping[str, Any]) -> Decision:
        return Decision.STOP if report["step"] == 1 else Decision.CONTINUE


@pytest.mark.parametrize("then", ["return", "ignore"])
def test_a_trial_that_catches_trial_pruned_still_ends_pruned(
    storage: Path, tmp_path: Path, then: str
) -> None:
    """Returning a value after the prune keeps that value; going on regardless is
    cancelled after stop_grace_s and recorded PRUNED with the last report."""
    result = rs.run(
        objectives.ignores_pruning,
        {"x": rs.uniform(0.0, 1.0), "then": then, "gate": str(tmp_path)},
        num_trials=1,
        scheduler=PruneAtStep1(),
        name=f"catch-{then}",
        storage=storage,
        seed=0,
    )
    (trial,) = result.trials
    assert trial.state is TrialState.PRUNED
    assert [r["step"] for r in trial.intermediate] == [0, 1]
    if then == "return":
        assert trial.metrics["loss"] == -1.0
    else:
        assert trial.metrics["loss"] == pytest.approx(trial.config["x"] + 0.5)
