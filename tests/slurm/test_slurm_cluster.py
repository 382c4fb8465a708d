"""Real Slurm jobs on the two-node test cluster (see ``conftest.py``).

A sweep submitted with ``raysweep slurm --nodes 2 --submit`` must run on a Ray
cluster spanning both Slurm nodes, finish every trial, and leave no process of
the job behind; a job cancelled midway and submitted again must finish the
experiment. Trials wait on events (both nodes busy at once, a gate file), never
on a fixed time.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

import raysweep.slurm
from raysweep.store import open_experiment
from raysweep.trial import Trial, TrialState
from tests.conftest import wait_until
from tests.slurm.slurm_daemons import SlurmCluster, tail

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

#: The trial: records the Ray node it runs on, then waits to be released.
OBJECTIVE = """
import time
import uuid
from pathlib import Path


def train(config):
    import ray

    folder = Path(config["folder"])
    node = ray.get_runtime_context().get_node_id()
    (folder / "starts" / uuid.uuid4().hex).write_text(node)
    deadline = time.monotonic() + 120
    while not released(config["release"], folder):
        if time.monotonic() > deadline:
            raise TimeoutError(f"not released ({config['release']}) within 120 s")
        time.sleep(0.05)
    return {"loss": float(config["x"])}


def released(how, folder):
    if how == "pair":  # two trials at once: each takes a whole node, so both nodes are in use
        return len(list((folder / "starts").iterdir())) >= 2
    return (folder / "gate").exists()
"""


def sweep_file(folder: Path, release: str, cpus: int) -> Path:
    """A four-trial sweep whose trials each take a whole node, two at a time; in a
    folder with a blank, which the script and sbatch's --output must quote."""
    (folder / "starts").mkdir(parents=True)
    (folder / "gated.py").write_text(textwrap.dedent(OBJECTIVE))
    doc = {
        "name": "onslurm",
        "objective": "gated:train",
        "searcher": "random",
        "seed": 1,
        "num_trials": 4,
        "max_concurrent": 2,
        "resources": {"cpu": cpus},
        "storage": "runs",
        "space": {
            "x": {"type": "uniform", "low": 0.0, "high": 1.0},
            "folder": str(folder),
            "release": release,
        },
    }
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def submit_with_cli(
    cluster: SlurmCluster, config: Path, *script_args: str, cwd: Path | None = None
) -> str:
    """``raysweep slurm CONFIG --nodes 2 --submit [-- SCRIPT_ARGS]``; returns the job id
    it prints."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from raysweep.cli.slurm import slurm_command; slurm_command()",
            str(config),
            "--nodes",
            "2",
            "--submit",
            *(("--", *script_args) if script_args else ()),
        ],
        env=cluster.env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    job_id = done.stdout.strip()
    assert job_id.isdigit(), done.stdout
    cluster.jobs.append(job_id)
    return job_id


def log_of(config: Path, job_id: str) -> Path:
    return config.parent / "runs" / f"onslurm.slurm-{job_id}.log"


def stored_trials(config: Path) -> list[Trial]:
    store = open_experiment(config.parent / "runs" / "onslurm")
    try:
        return store.trials()
    finally:
        store.close()


def job_processes(job_id: str) -> dict[int, str]:
    """Processes of the job: with its SLURM_JOB_ID, or using its Ray temp dirs."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile
            continue
        if f"SLURM_JOB_ID={job_id}".encode() in environ or f"/tmp/rs-{job_id}-" in cmdline:
            found[int(entry.name)] = cmdline[:160]
    return found


def wait_until_gone(cluster: SlurmCluster, job_id: str, before: set[int]) -> None:
    """Every process the job started ends (those alive before it, and the daemons, aside)."""

    def left() -> dict[int, str]:
        return {
            pid: cmd
            for pid, cmd in job_processes(job_id).items()
            if pid not in before and pid not in cluster.daemon_pids
        }

    try:
        wait_until(lambda: not left(), f"the processes of job {job_id} to end", timeout_s=60)
    except pytest.fail.Exception:
        pytest.fail(f"job {job_id} left processes behind: {left()}")


def test_two_node_job_runs_every_trial_on_both_nodes(
    slurm_cluster: SlurmCluster, tmp_path: Path
) -> None:
    """A submitted sweep runs on a Ray cluster of both Slurm nodes, completes every trial,
    and no process of the job outlives it."""
    config = sweep_file(tmp_path / "a sweep", "pair", slurm_cluster.cpus)
    before = set(map(int, filter(str.isdigit, (p.name for p in Path("/proc").iterdir()))))

    job_id = submit_with_cli(slurm_cluster, config)
    log = log_of(config, job_id)
    state = slurm_cluster.wait_for_end(job_id, log)

    assert state == "COMPLETED", tail(log)
    assert [t.state for t in stored_trials(config)] == [TrialState.COMPLETED] * 4
    assert "Ray is up: 2 of 2 nodes alive" in log.read_text()
    nodes = {p.read_text() for p in (config.parent / "starts").iterdir()}
    assert len(nodes) == 2, f"trials ran on {len(nodes)} Ray node(s): {nodes}"
    wait_until_gone(slurm_cluster, job_id, before)


def test_cancelled_job_resumes_when_submitted_again(
    slurm_cluster: SlurmCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job cancelled while its trials run leaves no process behind, and the same script
    submitted again (through the Python API) resumes and finishes the experiment."""
    config = sweep_file(tmp_path / "a sweep", "gate", slurm_cluster.cpus)
    before = set(map(int, filter(str.isdigit, (p.name for p in Path("/proc").iterdir()))))
    job_id = submit_with_cli(slurm_cluster, config)
    log = log_of(config, job_id)
    starts = config.parent / "starts"

    def two_running() -> bool:
        if slurm_cluster.job_state(job_id) not in ("PENDING", "RUNNING"):
            pytest.fail(f"job {job_id} ended before its trials started:\n{tail(log)}")
        return len(list(starts.iterdir())) >= 2

    wait_until(two_running, "two trials running in the job", timeout_s=180, poll_s=0.2)
    slurm_cluster.command("scancel", job_id)
    assert slurm_cluster.wait_for_end(job_id, log) == "CANCELLED"
    wait_until_gone(slurm_cluster, job_id, before)
    assert TrialState.COMPLETED not in {t.state for t in stored_trials(config)}

    (config.parent / "gate").touch()
    monkeypatch.setenv("SLURM_CONF", str(slurm_cluster.conf))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    again = raysweep.slurm.submit(raysweep.slurm.default_script_path(config))
    slurm_cluster.jobs.append(again)
    log = log_of(config, again)

    assert slurm_cluster.wait_for_end(again, log) == "COMPLETED", tail(log)
    trials = stored_trials(config)
    assert [t.state for t in trials] == [TrialState.COMPLETED] * 4
    # The two trials interrupted by the cancel ran again: 2 + 4 starts in all.
    assert len(list(starts.iterdir())) == 6
    wait_until_gone(slurm_cluster, again, before)
