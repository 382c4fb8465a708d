"""``raysweep status`` and ``raysweep export`` on stored experiments, without Ray:
sweeps with running and failed trials, gradient runs, and a database being written."""

from __future__ import annotations

import io
import json
import math
import time
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from rich.console import Console

from raysweep.cli import cli
from raysweep.cli.status import render_status
from raysweep.store import NewTrial, SQLiteStore, TrialUpdate
from raysweep.sweep.space import SearchSpace
from raysweep.trial import TrialState

SPACE = SearchSpace.from_any({"x": {"type": "uniform", "low": 0.0, "high": 2.0}, "tag": "a"})


def sweep_store(directory: Path) -> SQLiteStore:
    """A sweep with one completed, one failed (NaN metric) and one running trial; left open."""
    store = SQLiteStore.create(
        directory,
        {
            "kind": "sweep",
            "name": "hand",
            "objective": "objective:train",
            "metric": "loss",
            "mode": "min",
            "num_trials": 5,
            "space": SPACE.to_json(),
            "constraints": [],
            "searcher": {"name": "random", "options": {}},
        },
    )
    now = time.time()
    store.commit(
        new=[
            NewTrial(i, {"x": 0.25 * (i + 1), "tag": "a"}, TrialState.RUNNING, now)
            for i in range(3)
        ],
        updates=[
            TrialUpdate(
                0,
                state=TrialState.COMPLETED,
                metrics={"loss": 0.125},
                started_at=now - 9,
                ended_at=now - 5,
                node="10.0.0.1",
                attempts=1,
                reports=[{"step": 0, "loss": 0.5}],
            ),
            TrialUpdate(
                1,
                state=TrialState.FAILED,
                metrics={"loss": math.nan},
                error="Traceback (most recent call last):\nValueError: x too big",
                started_at=now - 8,
                ended_at=now - 4,
                node="10.0.0.2",
                attempts=1,
            ),
            TrialUpdate(
                2,
                started_at=now - 30,
                node="10.0.0.3",
                attempts=2,
                reports=[{"step": 7, "loss": 0.75, "time": now}],
            ),
        ],
        meta={"status": "running", "started_at": now - 60},
    )
    return store


def gradient_store(directory: Path) -> None:
    """A gradient run of 10 planned steps with 3 recorded."""
    store = SQLiteStore.create(
        directory,
        {
            "kind": "gradient",
            "name": "grad",
            "simulators": ["sim.0", "sim.1"],
            "objectives": ["energy", "rdf"],
            "n_steps": 10,
        },
    )
    for step in range(3):
        store.record_step(
            step,
            {
                "loss": 1.0 / (step + 1),
                "losses": {"energy": 0.5 / (step + 1), "rdf": 0.25},
                "grad_norm": 0.1 * step,
                "timings": {"step_s": 2.5, "simulate_s": 2.0},
                "params": {"eps": 1.0 + step, "sigma": [0.5, 0.25], "table": list(range(100))},
                "simulators_run": ["sim.0", "sim.1"],
            },
            checkpoint={"opt_state": [1, 2]},
        )
    store.set_meta("status", "running")
    store.close()


def invoke(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_status_of_a_sweep_being_written(tmp_path: Path) -> None:
    """status reads a sweep while the writer holds it open: counts, best, running, last error."""
    directory = tmp_path / "hand"
    writer = sweep_store(directory)
    try:
        text = invoke("status", str(directory))
    finally:
        writer.close()
    assert text.splitlines()[0] == "hand (sweep): running"
    assert "3 of 5: 1 running, 1 completed, 1 failed" in text
    assert "trial 0: loss=0.125" in text
    assert "x=0.25, tag=a" in text
    assert "last error  trial 1: ValueError: x too big" in text
    running = next(line for line in text.splitlines() if line.strip().startswith("2 "))
    assert "30.0s" in running
    assert "10.0.0.3" in running
    assert "step=7, loss=0.75" in running


def test_status_tells_creation_from_the_latest_resume(tmp_path: Path) -> None:
    """A fresh run shows when it started; a resumed one when it was created and how
    often and when last it was resumed (not the resume as its start)."""
    directory = tmp_path / "hand"
    sweep_store(directory).close()
    text = invoke("status", str(directory))
    assert any(line.startswith("started ") for line in text.splitlines())
    assert "created" not in text
    assert "resumed" not in text
    store = SQLiteStore.open(directory)
    try:
        for _ in range(2):
            store.add_event("resumed")
    finally:
        store.close()
    lines = invoke("status", str(directory)).splitlines()
    assert not any(line.startswith("started ") for line in lines)
    assert any(line.startswith("created ") and " ago)" in line for line in lines)
    assert any(line.startswith("resumed ") and "2 times, last " in line for line in lines)


def test_status_tells_queued_trials_from_running_ones(tmp_path: Path) -> None:
    """Trials dispatched but still waiting for resources (no start yet) are counted and
    listed as queued, apart from the running ones, with how long they have waited."""
    store = sweep_store(tmp_path / "hand")
    now = time.time()
    store.commit(
        new=[
            NewTrial(
                i, {"x": 0.5, "tag": "a"}, TrialState.RUNNING, now - 50, queued_at=now - 10 * i
            )
            for i in (3, 4)
        ]
    )
    out = io.StringIO()
    try:
        render_status(store, Console(file=out, width=200), tmp_path / "hand", now=now)
    finally:
        store.close()
    lines = out.getvalue().splitlines()
    counts = next(line for line in lines if line.startswith("trials "))
    assert counts.endswith("5 of 5: 1 running, 2 queued, 1 completed, 1 failed")
    running = lines.index(next(line for line in lines if line.startswith("running ")))
    assert lines[running].split() == ["running", "1", "trial(s)"]
    assert lines[running + 2].split()[0] == "2"  # the table: its header, then trial 2 alone
    assert lines[running + 3].startswith("queued ")
    assert lines[running + 3].split(None, 1)[1] == (
        "2 trial(s) waiting for resources, the longest for 40.0s: trial 3, 4"
    )


def test_status_accepts_the_db_file(tmp_path: Path) -> None:
    """status DIR/experiment.db works like status DIR."""
    sweep_store(tmp_path / "hand").close()
    assert "hand (sweep)" in invoke("status", str(tmp_path / "hand" / "experiment.db"))


def test_status_of_a_storage_folder_lists_experiments(tmp_path: Path) -> None:
    """Pointing at the storage folder instead of an experiment says which ones it holds."""
    sweep_store(tmp_path / "runs" / "hand").close()
    result = CliRunner().invoke(cli, ["status", str(tmp_path / "runs")])
    assert result.exit_code == 2
    assert "holds experiments" in result.stderr
    assert "runs/hand" in result.stderr


def test_export_json_is_strict(tmp_path: Path) -> None:
    """export --format json is valid JSON with the spec, status and every trial; NaN is null."""
    sweep_store(tmp_path / "hand").close()
    data = json.loads(invoke("export", str(tmp_path / "hand"), "--format", "json"))
    assert data["experiment"]["name"] == "hand"
    assert data["experiment"]["status"] == "running"
    assert data["experiment"]["counts"] == {"COMPLETED": 1, "FAILED": 1, "RUNNING": 1}
    assert [t["state"] for t in data["trials"]] == ["COMPLETED", "FAILED", "RUNNING"]
    assert data["trials"][1]["metrics"] == {"loss": None}
    assert data["trials"][0]["intermediate"] == [{"step": 0, "loss": 0.5}]


def test_export_csv_to_a_file(tmp_path: Path) -> None:
    """--output x.csv writes one row per trial with config/ and metrics/ columns."""
    sweep_store(tmp_path / "hand").close()
    out = tmp_path / "trials.csv"
    invoke("export", str(tmp_path / "hand"), "--output", str(out))
    frame = pd.read_csv(out)
    assert list(frame["trial_id"]) == [0, 1, 2]
    assert list(frame["config/x"]) == [0.25, 0.5, 0.75]
    assert frame.loc[0, "metrics/loss"] == 0.125
    assert frame.loc[1, "error"] == "ValueError: x too big"


def test_export_of_an_empty_sweep_has_a_header(tmp_path: Path) -> None:
    """A sweep without trials exports a CSV header and an empty JSON trial list."""
    SQLiteStore.create(tmp_path / "empty", {"kind": "sweep", "name": "empty"}).close()
    assert invoke("export", str(tmp_path / "empty"), "--format", "csv").startswith("trial_id,")
    assert json.loads(invoke("export", str(tmp_path / "empty")))["trials"] == []


def test_status_of_a_gradient_run(tmp_path: Path) -> None:
    """A gradient run shows steps of n_steps, losses, grad norm, params and step time."""
    gradient_store(tmp_path / "grad")
    text = invoke("status", str(tmp_path / "grad"))
    assert text.splitlines()[0] == "grad (gradient): running"
    assert "steps       3 / 10" in text
    assert "loss        0.3333" in text
    assert "losses      energy=0.1667, rdf=0.25" in text
    assert "grad norm   0.2" in text
    assert "eps = 3" in text
    assert "sigma = [0.5, 0.25]" in text
    assert "table = [100 values, min 0, max 99]" in text
    assert "step time   2.5s (simulate_s=2.0s)" in text


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_export_of_a_gradient_run(tmp_path: Path, fmt: str) -> None:
    """A gradient run exports its steps: JSON as a list, CSV with flat scalar columns."""
    gradient_store(tmp_path / "grad")
    text = invoke("export", str(tmp_path / "grad"), "--format", fmt)
    if fmt == "json":
        data = json.loads(text)
        assert data["experiment"]["n_steps"] == 10
        assert [s["step"] for s in data["steps"]] == [0, 1, 2]
        assert data["steps"][2]["params"]["table"] == list(range(100))
        return
    frame = pd.read_csv(io.StringIO(text))
    assert list(frame["step"]) == [0, 1, 2]
    assert frame.loc[2, "losses/rdf"] == 0.25
    assert frame.loc[2, "params/eps"] == 3.0
    assert frame.loc[0, "params/sigma/1"] == 0.25
    assert frame.loc[1, "timings/step_s"] == 2.5
    assert frame.loc[0, "simulators_run"] == "sim.0;sim.1"
    assert not any(column.startswith("params/table") for column in frame.columns)


def test_status_shows_interrupted_when_driver_is_gone(tmp_path: Path) -> None:
    """A 'running' experiment whose driver process died (e.g. SIGKILL) shows as interrupted."""
    import socket
    import subprocess
    import sys

    store = sweep_store(tmp_path / "exp")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    store.commit(
        meta={"status": "running", "driver": {"pid": dead.pid, "host": socket.gethostname()}}
    )
    out = CliRunner().invoke(cli, ["status", str(tmp_path / "exp")])
    assert out.exit_code == 0, out.output
    assert out.output.splitlines()[0].startswith("hand (sweep): interrupted")
    assert "--resume" in out.output.splitlines()[0]
    store.commit(meta={"driver": {"pid": __import__("os").getpid(), "host": socket.gethostname()}})
    out = CliRunner().invoke(cli, ["status", str(tmp_path / "exp")])
    assert out.output.splitlines()[0] == "hand (sweep): running"


def test_status_shows_an_unresponsive_driver(tmp_path: Path) -> None:
    """A running sweep whose heartbeat is older than 3 intervals names its host, pid and age."""
    store = sweep_store(tmp_path / "exp")
    beat_time = time.time() - 1000.0
    store.commit(
        meta={
            "driver": {"host": "node-7.cluster", "pid": 4242},
            "heartbeat": {
                "host": "node-7.cluster",
                "pid": 4242,
                "time": beat_time,
                "interval_s": 60.0,
            },
        }
    )
    store.close()
    title = invoke("status", str(tmp_path / "exp")).splitlines()[0]
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(beat_time))
    assert title.startswith(f"hand (sweep): running, driver unresponsive since {stamp} (16m")
    assert title.endswith(" ago, host node-7.cluster pid 4242)")


def test_status_shows_a_fresh_heartbeat(tmp_path: Path) -> None:
    """A running sweep with a recent heartbeat stays 'running' and shows where its driver is."""
    store = sweep_store(tmp_path / "exp")
    store.commit(
        meta={
            "heartbeat": {
                "host": "node-7.cluster",
                "pid": 4242,
                "time": time.time() - 5.0,
                "interval_s": 30.0,
            }
        }
    )
    store.close()
    text = invoke("status", str(tmp_path / "exp"))
    assert text.splitlines()[0] == "hand (sweep): running"
    driver = next(line for line in text.splitlines() if line.startswith("driver"))
    assert "host node-7.cluster pid 4242, heartbeat 5." in driver
    assert driver.endswith("ago, every 30.0s")


def test_status_of_a_gradient_run_whose_driver_died(tmp_path: Path) -> None:
    """A gradient run's heartbeat alone shows a dead driver on this host as interrupted."""
    import socket
    import subprocess
    import sys

    gradient_store(tmp_path / "grad")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    store = SQLiteStore.open(tmp_path / "grad")
    store.set_meta(
        "heartbeat",
        {"host": socket.gethostname(), "pid": dead.pid, "time": time.time(), "interval_s": 60.0},
    )
    store.close()
    title = invoke("status", str(tmp_path / "grad")).splitlines()[0]
    assert (
        title
        == "grad (gradient): interrupted, its driver is no longer running; continue with --resume"
    )
