"""``raysweep submit``: a sweep file run as a Ray job, checked before anything is sent.

The checks of the file, the storage and the address run without a cluster. The
jobs run on the package's two-node cluster (``two_nodes``), submitted from a
subprocess that has the cluster's environment, as a user's shell would.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from raysweep import jobs
from raysweep.cli.main import _Group
from raysweep.cli.submit import submit_command
from raysweep.jobs import dashboard_url, follow, plan_job
from raysweep.store import SQLiteStore
from raysweep.trial import TrialState
from tests.cluster.ray_nodes import LocalRayCluster
from tests.conftest import REPO_ROOT, wait_until

#: The ``raysweep`` command with ``submit`` in it, as the console script runs it.
CLI = (
    "import sys; from raysweep.cli.main import cli; from raysweep.cli.submit import "
    "submit_command; cli.add_command(submit_command); cli.main(sys.argv[1:], prog_name='raysweep')"
)

OBJECTIVE = """\
import os


def train(config):
    return {"loss": (config["x"] - 0.2) ** 2, "probe": float(os.environ["RAYSWEEP_PROBE"])}


def broken(config):
    raise RuntimeError("broken on purpose")
"""


def _project(tmp_path: Path, *, objective: str = "train", storage: str | None = "runs") -> Path:
    """A sweep file with its objective module next to it; the file's path."""
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "objective.py").write_text(OBJECTIVE)
    lines = [
        f"objective: objective:{objective}",
        "space:",
        "  x: {type: uniform, low: 0.0, high: 1.0}",
        "num_trials: 4",
        "max_concurrent: 2",
        "seed: 3",
        "runtime_env:",
        "  env_vars: {RAYSWEEP_PROBE: '7'}",
    ]
    if storage is not None:
        lines.append(f"storage: {storage}")
    (folder / "sweep.yaml").write_text("\n".join(lines) + "\n")
    return folder / "sweep.yaml"


def _invoke(*args: str) -> tuple[int, str, str]:
    """``raysweep submit ARGS`` in this process: exit code, stdout, stderr."""
    group = _Group("raysweep")
    group.add_command(submit_command)
    result = CliRunner().invoke(group, ["submit", *args])
    return result.exit_code, result.stdout, result.stderr


def _one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    return lines[0]


# -- checked here, before anything is sent --------------------------------------------


def test_relative_storage_is_refused(tmp_path: Path) -> None:
    """A relative storage (here the default, 'runs') would live in the job's temporary
    working_dir: exit 2 with one line naming --storage, before any address is tried."""
    config = _project(tmp_path, storage=None)
    code, out, err = _invoke(str(config), "--address", "http://127.0.0.1:9")
    assert code == 2
    line = _one_error_line(err)
    assert "'runs' is relative" in line
    assert "--storage" in line
    assert out == ""


def test_relative_storage_option_is_refused(tmp_path: Path) -> None:
    """--storage must be absolute too (relative to what, on the cluster?)."""
    config = _project(tmp_path, storage="/abs/runs")
    code, _, err = _invoke(str(config), "--address", "http://127.0.0.1:9", "--storage", "runs")
    assert code == 2
    assert "--storage: 'runs' is relative" in _one_error_line(err)


def test_bad_sweep_file_fails_before_submitting(tmp_path: Path) -> None:
    """A typo in the sweep file fails as `raysweep run` would, naming the file."""
    config = _project(tmp_path)
    config.write_text(config.read_text() + "num_trails: 5\n")
    code, _, err = _invoke(str(config), "--address", "http://127.0.0.1:9", "--storage", "/x")
    assert code == 2
    line = _one_error_line(err)
    assert str(config) in line
    assert "'num_trails'" in line
    assert "num_trials" in line  # did you mean


@pytest.mark.parametrize("address", ["ray://127.0.0.1:10001", "http://host:port", "http://"])
def test_non_dashboard_address_is_refused(tmp_path: Path, address: str) -> None:
    """An address that is not http(s)://host[:port] is bad input (exit 2)."""
    config = _project(tmp_path)
    code, _, err = _invoke(str(config), "--address", address, "--storage", str(tmp_path))
    assert code == 2
    assert "is not a dashboard address" in _one_error_line(err)


def test_dashboard_url_forms() -> None:
    """host, host:port and URLs all name the dashboard; http's port defaults to 8265."""
    assert dashboard_url("head") == "http://head:8265"
    assert dashboard_url("10.0.0.1:9000") == "http://10.0.0.1:9000"
    assert dashboard_url("https://head.example/") == "https://head.example"  # a proxy
    assert dashboard_url(" http://[::1]:8265 ") == "http://[::1]:8265"


def test_unreachable_address_fails_in_bounded_time(tmp_path: Path) -> None:
    """Nothing listening at the address: exit 1 with one line once the connect
    time-out is spent, nothing submitted."""
    with socket.socket() as sock:  # a port that was just free: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = _project(tmp_path)
    code, out, err = _invoke(
        str(config),
        "--address",
        f"http://127.0.0.1:{port}",
        "--storage",
        str(tmp_path / "runs"),
        "--connect-timeout-s",
        "1",
    )
    assert code == 1
    assert f"cannot connect to Ray at http://127.0.0.1:{port}" in _one_error_line(err)
    assert out == ""


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts connections and never answers; its number."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    server.close()


def test_silent_address_fails_in_bounded_time(tmp_path: Path, silent_server: int) -> None:
    """A port that accepts and never answers HTTP: exit 1 with one line saying it is not
    the Jobs API, after the connect time-out (Ray's client alone would wait forever)."""
    config = _project(tmp_path)
    code, _, err = _invoke(
        str(config),
        "--address",
        f"127.0.0.1:{silent_server}",
        "--storage",
        str(tmp_path / "runs"),
        "--connect-timeout-s",
        "1",
    )
    assert code == 1
    line = _one_error_line(err)
    assert "cannot reach the Jobs API at http://127.0.0.1" in line
    assert "dashboard port" in line


def test_plan_uploads_the_folder_and_passes_the_storage(tmp_path: Path) -> None:
    """The job runs `raysweep run` on the file's name in its folder (the working_dir),
    with the absolute storage and the name, the runtime_env merged; experiment
    folders inside the folder are not uploaded."""
    config = _project(tmp_path, storage="/abs/runs")
    plan = plan_job(config, storage=str(config.parent / "runs"), name="exp1", resume=True)
    folder = str(config.parent.resolve())
    assert plan.runtime_env == {
        "env_vars": {"RAYSWEEP_PROBE": "7"},
        "working_dir": folder,
        "excludes": ["/runs/"],
    }
    assert plan.entrypoint == (
        f"RAY_OVERRIDE_JOB_RUNTIME_ENV=1 raysweep run sweep.yaml --name exp1 "
        f"--storage {config.parent / 'runs'} --resume"
    )
    assert plan.submission_id.startswith("raysweep-exp1-")
    assert plan.experiment == f"{config.parent / 'runs'}/exp1"
    assert plan_job(config).storage == "/abs/runs"  # the file's, when absolute
    # By default the job continues a stored experiment, else starts it.
    assert plan_job(config).entrypoint.endswith("--storage /abs/runs --resume auto")
    # The file's own (relative) storage holds local runs: not uploaded either.
    config.write_text(config.read_text().replace("/abs/runs", "local/runs"))
    assert plan_job(config, storage="/abs/runs").runtime_env["excludes"] == ["/local/runs/"]


class _FakeJobs:
    """A Jobs API client that streams ``chunks`` (then breaks, if told to) and reports
    ``statuses`` one call after the other."""

    def __init__(self, chunks: list[str], statuses: list[str], *, broken: bool = False) -> None:
        self.chunks = chunks
        self.statuses = iter(statuses)
        self.broken = broken

    async def tail_job_logs(self, job_id: str) -> AsyncIterator[str]:
        for chunk in self.chunks:
            yield chunk
        if self.broken:
            raise RuntimeError("WebSocket connection closed unexpectedly with close code 1006")

    def get_job_info(self, job_id: str) -> SimpleNamespace:
        return SimpleNamespace(status=next(self.statuses), message=f"{job_id} message")


def test_follow_streams_output_then_returns_the_end() -> None:
    """follow() hands over the output as it comes and returns the job's final status."""
    out: list[str] = []
    assert follow(_FakeJobs(["a\n", "b\n"], ["SUCCEEDED"]), "j1", out.append) == (
        "SUCCEEDED",
        "j1 message",
    )
    assert out == ["a\n", "b\n"]


def test_follow_outlives_a_broken_log_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    """A log stream that breaks mid-job (a dashboard restart) does not end the follow:
    the job's status is asked until it is final."""
    monkeypatch.setattr(jobs, "_POLL_S", 0.0)
    out: list[str] = []
    client = _FakeJobs(["a\n"], ["RUNNING", "RUNNING", "FAILED"], broken=True)
    assert follow(client, "j2", out.append) == ("FAILED", "j2 message")
    assert out == ["a\n"]


def test_follow_passes_on_write_errors() -> None:
    """An error writing the output (a closed pipe) is the caller's, not swallowed."""

    def write(text: str) -> None:
        raise BrokenPipeError(32, "Broken pipe")

    with pytest.raises(BrokenPipeError):
        follow(_FakeJobs(["a\n"], ["SUCCEEDED"]), "j3", write)


# -- jobs on the cluster --------------------------------------------------------------


def _submit(cluster: LocalRayCluster, *args: str) -> subprocess.CompletedProcess[str]:
    """``raysweep submit ARGS --address <the cluster's dashboard>`` in a subprocess."""
    return subprocess.run(
        [sys.executable, "-c", CLI, "submit", *args, "--address", cluster.dashboard_url],
        cwd=REPO_ROOT,
        env=cluster.env(),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def _stored(directory: Path) -> list[TrialState]:
    store = SQLiteStore.open(directory, readonly=True)
    try:
        return [t.state for t in store.trials()]
    finally:
        store.close()


@pytest.mark.cluster
@pytest.mark.slow
def test_followed_job_runs_the_sweep_on_the_cluster(
    two_nodes: LocalRayCluster, tmp_path: Path
) -> None:
    """`submit --follow` prints the job id, streams the job's output and exits 0 once the
    job succeeded; the store at the absolute storage holds every trial, which saw
    the file's runtime_env."""
    config = _project(tmp_path)
    storage = tmp_path / "store"
    proc = _submit(two_nodes, str(config), "--storage", str(storage), "--name", "job", "--follow")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    job_id = proc.stdout.splitlines()[0]
    assert job_id.startswith("raysweep-job-")
    assert "best trial" in proc.stdout  # the output of `raysweep run` on the head
    assert f"job {job_id} SUCCEEDED" in proc.stderr
    store = SQLiteStore.open(storage / "job", readonly=True)
    try:
        trials = store.trials()
    finally:
        store.close()
    assert [t.state for t in trials] == [TrialState.COMPLETED] * 4
    assert {t.metrics["probe"] for t in trials} == {7.0}


@pytest.mark.cluster
@pytest.mark.slow
def test_failing_job_exits_1(two_nodes: LocalRayCluster, tmp_path: Path) -> None:
    """A job whose sweep completes no trial fails, and `submit --follow` exits 1 with one
    line naming the job; the failed trials are stored."""
    config = _project(tmp_path, objective="broken", storage=str(tmp_path / "store"))
    proc = _submit(two_nodes, str(config), "--follow")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    job_id = proc.stdout.splitlines()[0]
    line = _one_error_line(proc.stderr)
    assert f"job {job_id} FAILED" in line
    assert "broken on purpose" in proc.stdout  # the job's output: the trials' error
    assert _stored(tmp_path / "store" / "sweep") == [TrialState.FAILED] * 4


@pytest.mark.cluster
@pytest.mark.slow
def test_submit_returns_at_once_and_the_job_goes_on(
    two_nodes: LocalRayCluster, tmp_path: Path
) -> None:
    """Without --follow, submit prints the job id and returns while the job runs; the
    sweep then completes on the cluster on its own."""
    config = _project(tmp_path)
    storage = tmp_path / "store"
    proc = _submit(two_nodes, str(config), "--storage", str(storage))
    assert proc.returncode == 0, proc.stderr
    job_id = proc.stdout.strip()
    assert job_id.startswith("raysweep-sweep-")
    assert f"--follow {job_id}" in proc.stderr  # how to follow it
    wait_until(
        lambda: _job_status(two_nodes, job_id) == "SUCCEEDED",
        "the submitted job to succeed",
        poll_s=0.2,
    )
    assert _stored(storage / "sweep") == [TrialState.COMPLETED] * 4


def _job_status(cluster: LocalRayCluster, job_id: str) -> str:
    """The job's status from the Jobs API (plain HTTP: this process joins no cluster)."""
    url = f"{cluster.dashboard_url}/api/jobs/{job_id}"
    with urllib.request.urlopen(url, timeout=30) as response:
        status = str(json.load(response)["status"])
    if status in ("FAILED", "STOPPED"):
        pytest.fail(f"job {job_id} ended {status}")
    return status
