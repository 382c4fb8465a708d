"""Real sweeps on the shared local Ray: resources, live reports, time-outs, deaths, crashes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

import raysweep as rs
from raysweep.store import SQLiteStore
from raysweep.trial import Trial, TrialState
from tests.conftest import REPO_ROOT
from tests.sweep.execution import objectives

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_session")]


def test_sweep_on_ray(storage: Path) -> None:
    """A sweep runs every trial as a Ray task and records node, times and attempts."""
    result = rs.run(
        objectives.quadratic,
        {"x": rs.uniform(-1, 1)},
        num_trials=20,
        max_concurrent=4,
        searcher="sobol",
        seed=1,
        name="ray",
        storage=storage,
    )
    assert result.count(TrialState.COMPLETED) == 20
    assert all(t.metrics["pid"] != os.getpid() for t in result.trials)
    trial = result.trials[0]
    assert trial.node
    assert trial.attempts == 1
    assert trial.started_at is not None
    assert trial.ended_at is not None
    assert trial.ended_at >= trial.started_at


def test_runtime_env_vars_reach_trials(storage: Path) -> None:
    """Environment variables in runtime_env are visible inside every trial."""
    result = rs.run(
        objectives.env_value,
        {"x": rs.uniform(0, 1)},
        num_trials=2,
        name="env",
        storage=storage,
        runtime_env={"env_vars": {"RAYSWEEP_PROBE": "42"}},
    )
    assert [t.metrics["loss"] for t in result.trials] == [42.0, 42.0]


def test_working_dir_makes_local_modules_importable(tmp_path: Path) -> None:
    """With runtime_env working_dir, an objective importing a sibling module runs on workers
    (raysweep starts Ray itself here, in a fresh process, as a user script would)."""
    code = tmp_path / "project"
    code.mkdir()
    (code / "helper_mod_wd.py").write_text("def score(x):\n    return x * 2.0\n")
    (code / "objective_mod_wd.py").write_text(
        "import helper_mod_wd\n\ndef objective(config):\n"
        "    return helper_mod_wd.score(config['x'])\n"
    )
    script = (
        "import sys, raysweep as rs\n"
        f"sys.path.insert(0, {str(code)!r})\n"
        "import objective_mod_wd\n"
        "r = rs.run(objective_mod_wd.objective, {'x': rs.uniform(0, 1)}, num_trials=2,\n"
        f"          name='wd', storage={str(tmp_path / 'runs')!r},\n"
        f"          runtime_env={{'working_dir': {str(code)!r}}})\n"
        "print(r.count(rs.TrialState.COMPLETED), r.trials[0].error)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "2 None"


def test_local_working_dir_with_running_ray_fails_at_start(storage: Path, tmp_path: Path) -> None:
    """A local working_dir cannot be attached once Ray runs: a clear error before any write."""
    with pytest.raises(rs.SpecError, match="working_dir"):
        rs.run(
            objectives.quadratic,
            {"x": rs.uniform(0, 1)},
            num_trials=1,
            name="wd",
            storage=storage,
            runtime_env={"working_dir": str(tmp_path)},
        )
    assert not (storage / "wd").exists()


def test_fractional_gpus_limit_concurrency(storage: Path) -> None:
    """Trials asking 0.5 GPU on a 1-GPU cluster never run more than two at once."""
    result = rs.run(
        objectives.sleepy,
        {"x": rs.uniform(0, 1), "sleep": 1.5},
        num_trials=6,
        max_concurrent=4,
        resources={"cpu": 0.5, "gpu": 0.5},
        name="gpu",
        storage=storage,
    )
    spans = [(t.metrics["start"], t.metrics["end"]) for t in result.trials]
    overlap = max(sum(1 for s, e in spans if s <= moment < e) for moment, _ in spans)
    assert overlap == 2


def test_unsatisfiable_resources_fail_at_start(storage: Path) -> None:
    """Asking more GPUs than the cluster has is an error at start, not a hang."""
    with pytest.raises(rs.SpecError, match="GPU"):
        rs.run(
            objectives.quadratic,
            {"x": rs.uniform(0, 1)},
            num_trials=2,
            name="nogpu",
            storage=storage,
            resources={"gpu": 4},
        )
    assert not (storage / "nogpu").exists()


class ReportTimes(rs.Callback):
    """Records when reports and completions reach the driver."""

    def __init__(self) -> None:
        self.reports: dict[int, float] = {}
        self.completed: dict[int, float] = {}

    def on_trial_report(self, trial: Trial, report: Mapping[str, Any]) -> None:
        self.reports.setdefault(trial.trial_id, time.monotonic())

    def on_trial_complete(self, trial: Trial) -> None:
        self.completed[trial.trial_id] = time.monotonic()


def test_reports_reach_driver_while_trial_runs(storage: Path) -> None:
    """An intermediate report arrives at the driver before its trial finishes."""
    times = ReportTimes()
    result = rs.run(
        objectives.report_then_wait,
        {"x": rs.uniform(0, 1)},
        num_trials=2,
        max_concurrent=2,
        name="live",
        storage=storage,
        callbacks=[times],
    )
    assert result.count(TrialState.COMPLETED) == 2
    for trial_id, done in times.completed.items():
        assert times.reports[trial_id] < done - 1.0
    assert result.trials[0].intermediate[0]["loss"] == 5.0


def test_timeout_on_ray(storage: Path) -> None:
    """A trial past timeout_s is cancelled on Ray and FAILED; the run goes on."""
    start = time.monotonic()
    result = rs.run(
        objectives.sleepy,
        {"x": rs.uniform(0, 1), "sleep": rs.choice([0.05, 60.0])},
        num_trials=4,
        seed=2,
        max_concurrent=2,
        timeout_s=2.0,
        name="timeout",
        storage=storage,
    )
    assert time.monotonic() - start < 50
    slow = [t for t in result.trials if t.config["sleep"] == 60.0]
    assert slow
    assert all(t.state is TrialState.FAILED and "timed out" in (t.error or "") for t in slow)


def test_worker_death_is_retried(storage: Path, tmp_path: Path) -> None:
    """A trial whose worker dies is run again and completes, with attempts counted."""
    result = rs.run(
        objectives.dies_once,
        {"x": rs.randint(0, 1000), "marker_dir": str(tmp_path)},
        num_trials=2,
        max_concurrent=2,
        name="death",
        storage=storage,
        resources={"cpu": 1, "max_retries": 2},
    )
    assert [t.state for t in result.trials] == [TrialState.COMPLETED] * 2
    assert [t.attempts for t in result.trials] == [2, 2]
    events = SQLiteStore.open(storage / "death").events("retry")
    assert len(events) == 2


def test_worker_death_past_retries_fails(storage: Path) -> None:
    """A trial that keeps killing its worker FAILS once max_retries is used up."""
    result = rs.run(
        objectives.always_dies,
        {"x": rs.uniform(0, 1)},
        num_trials=1,
        name="dead",
        storage=storage,
        resources={"max_retries": 1},
    )
    trial = result.trials[0]
    assert trial.state is TrialState.FAILED
    assert trial.attempts == 2
    assert "max_retries=1" in (trial.error or "")


@pytest.mark.slow
def test_sigkill_mid_run_then_resume(storage: Path) -> None:
    """After SIGKILL of the driver, resume loses no completed trial, duplicates none, and
    ends with exactly num_trials completed."""
    import ray

    address = ray.get_runtime_context().gcs_address
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "src")])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.sweep.execution.crash_driver", address, str(storage), "24"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    db_dir = storage / "crash"
    deadline = time.monotonic() + 120
    completed: list[Trial] = []
    while time.monotonic() < deadline and proc.poll() is None:
        if SQLiteStore.exists(db_dir):
            completed = SQLiteStore.open(db_dir, readonly=True).trials([TrialState.COMPLETED])
            if len(completed) >= 6:
                break
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = SQLiteStore.open(db_dir, readonly=True).trials()
    done_before = {t.trial_id: t for t in before if t.state is TrialState.COMPLETED}
    running_before = {t.trial_id: t for t in before if t.state is TrialState.RUNNING}
    assert len(done_before) >= 6
    assert len(before) < 24

    result = rs.run(
        objectives.slow_square,
        {"x": rs.uniform(-1.0, 1.0)},
        num_trials=24,
        max_concurrent=2,
        name="crash",
        storage=storage,
        seed=7,
        resume=True,
    )
    assert len(result.trials) == 24
    assert result.count(TrialState.COMPLETED) == 24
    for trial_id, old in done_before.items():
        assert result.get_trial(trial_id) == old  # untouched
    for trial_id, old in running_before.items():
        again = result.get_trial(trial_id)
        assert again.config == old.config
        assert again.attempts == old.attempts + 1
    configs = [t.config["x"] for t in result.trials]
    assert len(set(configs)) == 24  # the searcher did not repeat points
