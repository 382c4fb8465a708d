"""A real Hydra app run with --multirun through the raysweep sweeper and launcher.

Each run is a subprocess (``tests/hydra/app/app.py``) that joins the test
session's small local Ray by address, as a user's app joins a cluster.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

pytestmark = [pytest.mark.ray, pytest.mark.slow]

APP = Path(__file__).parent / "app" / "app.py"


@pytest.fixture
def address(ray_session: None) -> str:
    """The GCS address of the session's Ray, for the app to join."""
    import ray

    return str(ray.get_runtime_context().gcs_address)


def multirun(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python app.py --multirun ARGS`` in ``cwd``, as a user runs it."""
    environ = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "FAIL_ON_X")}
    environ["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "src")])
    return subprocess.run(
        [sys.executable, str(APP), "--multirun", *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def trials(experiment: Path) -> list[dict[str, object]]:
    """The stored trials of an experiment, as ``raysweep.load`` gives them."""
    import raysweep

    return [t.to_dict() for t in raysweep.load(experiment).trials]


def test_sweeper_runs_each_job_as_a_stored_trial(tmp_path: Path, address: str) -> None:
    """A grid multirun stores one completed trial per job, with its config, metric,
    overrides, and Hydra's job folder with its .hydra snapshot."""
    done = multirun(
        tmp_path,
        "hydra/sweeper=raysweep",
        f"hydra.sweeper.address={address}",
        "hydra.sweeper.verbose=0",
        "x=0,1",
        "model=small,large",
        "lr=0.5",
    )
    assert done.returncode == 0, done.stderr
    stored = trials(tmp_path / "runs" / "app")
    assert len(stored) == 4
    assert all(t["state"] == "COMPLETED" for t in stored)
    sizes = {"small": 1, "large": 3}
    seen = set()
    for trial in stored:
        config = trial["config"]
        assert isinstance(config, dict)
        seen.add((config["x"], config["model"]))
        expected = (config["x"] - 1.0) ** 2 + sizes[config["model"]] * 0.5
        assert trial["metrics"] == {"loss": pytest.approx(expected)}
        record = json.loads(
            (
                tmp_path / "runs/app/trials" / str(trial["trial_id"]) / "files/hydra_job.json"
            ).read_text()
        )
        assert record["overrides"] == [f"x={config['x']}", f"model={config['model']}", "lr=0.5"]
        snapshot = Path(record["output_dir"]) / ".hydra" / "overrides.yaml"
        assert snapshot.read_text().split() == [t for o in record["overrides"] for t in ("-", o)]
        assert Path(record["output_dir"]).parents[2] == tmp_path / "multirun"
    assert seen == {(0, "small"), (0, "large"), (1, "small"), (1, "large")}


def test_resumed_multirun_runs_only_jobs_not_completed(tmp_path: Path, address: str) -> None:
    """Running the multirun again with a larger budget continues the experiment:
    completed jobs are not run again, only the new trials run."""
    args = (
        "hydra/sweeper=raysweep",
        f"hydra.sweeper.address={address}",
        "hydra.sweeper.verbose=0",
        "hydra.sweeper.searcher=random",
        "hydra.sweeper.num_trials=3",
        "hydra.sweeper.seed=1",
        "x=choice(0.0,1.0,2.0)",
    )
    # The workers belong to the session's Ray: the variable travels in the runtime env.
    first = multirun(tmp_path, *args, "hydra.sweeper.runtime_env={env_vars: {FAIL_ON_X: '1.0'}}")
    assert first.returncode == 0, first.stderr
    before = {t["trial_id"]: t for t in trials(tmp_path / "runs" / "app")}
    assert len(before) == 3
    done_before = {i for i, t in before.items() if t["state"] == "COMPLETED"}
    assert any(t["state"] == "FAILED" for t in before.values())
    second = multirun(tmp_path, *args[:4], "hydra.sweeper.num_trials=5", *args[5:])
    assert second.returncode == 0, second.stderr
    after = {t["trial_id"]: t for t in trials(tmp_path / "runs" / "app")}
    assert len(after) == 5
    for trial_id in done_before:
        assert after[trial_id]["ended_at"] == before[trial_id]["ended_at"]
        assert after[trial_id]["attempts"] == before[trial_id]["attempts"]
    assert all(t["state"] == "COMPLETED" for i, t in after.items() if i not in before)


def test_launcher_runs_a_grid_of_overrides_as_trials(tmp_path: Path, address: str) -> None:
    """Hydra's basic sweeper with the raysweep launcher: each job of the grid is a
    trial with its overrides; a failing job fails the multirun, naming it."""
    args = (
        "hydra/launcher=raysweep",
        f"hydra.launcher.address={address}",
        "hydra.launcher.verbose=0",
        "hydra.launcher.name=grid",
        "hydra.launcher.resources={cpu: 1}",
        "x=0,1,2",
        "model=small,large",
    )
    done = multirun(tmp_path, *args)
    assert done.returncode == 0, done.stderr
    stored = trials(tmp_path / "runs" / "grid")
    assert len(stored) == 6
    assert {(t["config"]["x"], t["config"]["model"]) for t in stored} == {  # type: ignore[index]
        (x, m) for x in (0, 1, 2) for m in ("small", "large")
    }
    assert all(t["metrics"]["completed"] == 1.0 for t in stored)  # type: ignore[index]

    failed = multirun(
        tmp_path,
        *args[:3],
        "hydra.launcher.name=fails",
        "hydra.launcher.runtime_env={env_vars: {FAIL_ON_X: '1'}}",
        *args[4:],
    )
    assert failed.returncode == 1
    assert "told to fail on x=1" in failed.stderr
    assert "job 2 (trial 2) is FAILED" in failed.stderr


def test_misspelled_sweeper_option_is_one_line_before_anything_runs(tmp_path: Path) -> None:
    """A typo in a sweeper option exits 1 with one line naming it and the option
    meant; nothing is stored and no job runs."""
    done = multirun(tmp_path, "hydra/sweeper=raysweep", "hydra.sweeper.num_trails=3", "x=0,1")
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if "num_trails" in line]
    assert len(lines) == 1
    assert "hydra.sweeper: unknown option 'num_trails' (did you mean 'num_trials'?)" in lines[0]
    assert not (tmp_path / "runs").exists()
    assert not (tmp_path / "multirun").exists()


def test_misspelled_launcher_option_is_one_line(tmp_path: Path) -> None:
    """A typo in a launcher option exits 1 with one line naming it, before any job runs."""
    done = multirun(tmp_path, "hydra/launcher=raysweep", "hydra.launcher.adress=auto", "x=0,1")
    assert done.returncode == 1
    assert "hydra.launcher: unknown option 'adress' (did you mean 'address'?)" in done.stderr
    assert not (tmp_path / "runs").exists()
