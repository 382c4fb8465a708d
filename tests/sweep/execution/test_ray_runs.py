"""Real sweeps on the shared local Ray: resources, live reports, time-outs, deaths, crashes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import ray

import raysweep as rs
from raysweep.store import SQLiteStore
from raysweep.trial import Trial, TrialState
from tests.conftest import REPO_ROOT, process_ended, wait_until
from tests.sweep.execution import crash_driver, objectives

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


def _held_back_for_a_gpu_share() -> bool:
    """Whether Ray reports tasks waiting for 0.5 GPU (the demand ``ray status`` lists)."""
    from ray.autoscaler.v2.sdk import get_cluster_status

    status = get_cluster_status(ray.get_runtime_context().gcs_address)
    return any(
        request.bundle.get("GPU") == 0.5
        for demand in status.resource_demands.ray_task_actor_demand
        for request in demand.bundles_by_count
    )


def test_fractional_gpus_limit_concurrency(storage: Path, tmp_path: Path) -> None:
    """Trials asking 0.5 GPU on a 1-GPU cluster never run more than two at once."""
    gate = tmp_path / "gate"
    gate.mkdir()

    def release_once_two_run_and_the_rest_wait() -> None:
        # The first trials hold until Ray has declined to start the others for lack of
        # a GPU share: a third would have started by then, were the limit not kept.
        try:
            wait_until(
                lambda: len(list(gate.glob("running-*"))) >= 2 and _held_back_for_a_gpu_share(),
                "two trials running while Ray holds the others back for a GPU share",
            )
        finally:
            (gate / "release").touch()

    with ThreadPoolExecutor(1) as pool:
        released = pool.submit(release_once_two_run_and_the_rest_wait)
        try:
            result = rs.run(
                objectives.held_until_released,
                {"x": rs.uniform(0, 1), "gate": str(gate)},
                num_trials=6,
                max_concurrent=4,
                resources={"cpu": 0.5, "gpu": 0.5},
                name="gpu",
                storage=storage,
            )
        finally:
            (gate / "release").touch()
        released.result()
    assert result.count(TrialState.COMPLETED) == 6, [t.error for t in result.trials]
    assert max(t.metrics["inside"] for t in result.trials) == 2


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


class AckReports(rs.Callback):
    """Logs reports and completions as they reach the driver and acknowledges each
    report to its trial (``ack-<trial id>`` in ``gate``)."""

    def __init__(self, gate: Path) -> None:
        self.gate = gate
        self.log: list[tuple[int, str]] = []

    def on_trial_report(self, trial: Trial, report: Mapping[str, Any]) -> None:
        self.log.append((trial.trial_id, "report"))
        (self.gate / f"ack-{trial.trial_id}").touch()

    def on_trial_complete(self, trial: Trial) -> None:
        self.log.append((trial.trial_id, "complete"))


def test_reports_reach_driver_while_trial_runs(storage: Path, tmp_path: Path) -> None:
    """An intermediate report arrives at the driver before its trial finishes."""
    acks = AckReports(tmp_path)
    result = rs.run(
        objectives.report_then_wait_for_ack,
        {"x": rs.uniform(0, 1), "gate": str(tmp_path)},
        num_trials=2,
        max_concurrent=2,
        name="live",
        storage=storage,
        callbacks=[acks],
    )
    # Each trial finishes only once the driver acknowledged its report, so a report
    # that travelled with the result instead fails the trial (after its wait ran out).
    assert result.count(TrialState.COMPLETED) == 2, [t.error for t in result.trials]
    for trial in result.trials:
        assert [event for tid, event in acks.log if tid == trial.trial_id] == [
            "report",
            "complete",
        ]
    assert result.trials[0].intermediate[0]["loss"] == 5.0


def test_timeout_on_ray(storage: Path, tmp_path: Path) -> None:
    """A trial past timeout_s is cancelled on Ray and FAILED; the run goes on."""
    result = rs.run(
        objectives.quick_or_stuck,
        {"x": rs.uniform(0, 1), "stuck": rs.choice([False, True]), "gate": str(tmp_path)},
        num_trials=4,
        seed=2,
        max_concurrent=2,
        timeout_s=2.0,
        name="timeout",
        storage=storage,
    )
    stuck = [t for t in result.trials if t.config["stuck"]]
    assert stuck
    assert all(t.state is TrialState.FAILED and "timed out" in (t.error or "") for t in stuck)
    # A stuck trial cannot end by itself before its wait runs out (minutes): the run
    # returned without waiting for one, and each that had started lost its worker.
    assert not list(tmp_path.glob("finished-*"))
    pids = [int(path.read_text()) for path in tmp_path.glob("pid-*")]
    wait_until(lambda: all(map(process_ended, pids)), f"the stuck trials' workers {pids} to end")


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


def _stored_trials(directory: Path) -> list[Trial]:
    """The trials stored so far (none while the experiment does not exist yet)."""
    if not SQLiteStore.exists(directory):
        return []
    store = SQLiteStore.open(directory, readonly=True)
    try:
        return store.trials()
    finally:
        store.close()


@pytest.mark.slow
def test_sigkill_mid_run_then_resume(storage: Path, tmp_path: Path) -> None:
    """After SIGKILL of the driver, resume loses no completed trial, duplicates none, and
    ends with exactly num_trials completed."""
    gate = tmp_path / "gate"
    gate.mkdir()
    free = crash_driver.FREE_TRIALS
    address = ray.get_runtime_context().gcs_address
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "src")])}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.sweep.execution.crash_driver",
            address,
            str(storage),
            "24",
            str(gate),
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    db_dir = storage / "crash"

    def gated_trials_running() -> bool:
        if proc.poll() is not None:
            stderr = proc.stderr.read().decode() if proc.stderr else ""
            pytest.fail(f"the driver exited ({proc.returncode}) before the kill:\n{stderr}")
        states = [t.state for t in _stored_trials(db_dir)]
        return states.count(TrialState.COMPLETED) == free and states.count(TrialState.RUNNING) == 2

    try:
        # Trials from `free` on wait for the gate, so the driver is killed mid-run.
        wait_until(gated_trials_running, f"{free} completed trials and 2 waiting at the gate")
    finally:
        proc.kill()
        proc.wait()
    before = _stored_trials(db_dir)
    done_before = {t.trial_id: t for t in before if t.state is TrialState.COMPLETED}
    running_before = {t.trial_id: t for t in before if t.state is TrialState.RUNNING}
    assert sorted(done_before) == list(range(free))
    assert sorted(running_before) == [free, free + 1]
    assert len(before) < 24

    (gate / "open").touch()
    result = rs.run(
        objectives.square_then_gate,
        crash_driver.crash_space(str(gate)),
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
