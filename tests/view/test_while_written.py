"""Reading an experiment while another process runs it: consistent snapshots, refresh
sees what happens, and status --watch ends when the run ends."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import raysweep as rs
from raysweep.trial import TrialState
from tests.conftest import REPO_ROOT, wait_until

N = 4


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "RAYSWEEP_DEBUG"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "src")])
    return env


@pytest.fixture
def gated(tmp_path: Path) -> Iterator[tuple[Path, Path, subprocess.Popen[str]]]:
    """A sweep of N trials running in another process, each ending when its gate opens."""
    storage, gates = tmp_path / "runs", tmp_path / "gates"
    gates.mkdir()
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.view.gated_run", str(storage), str(gates), str(N)],
        cwd=REPO_ROOT,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield storage / "gated", gates, child
    finally:
        for k in range(N):
            (gates / str(k)).touch()
        try:
            child.wait(timeout=120)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()


def _alive(child: subprocess.Popen[str]) -> bool:
    if child.poll() is not None and child.returncode != 0:
        out = child.stdout.read() if child.stdout else ""
        pytest.fail(f"the writer exited with {child.returncode}: {out}")
    return True


def _consistent(exp: rs.Experiment) -> None:
    """What one read shows fits together: ids 0..n-1, counts add up, finished trials
    have their metrics and end, at most one trial in flight (one in-process worker)."""
    trials = exp.trials
    assert [t.trial_id for t in trials] == list(range(len(trials)))
    assert sum(exp.counts().values()) == len(trials) == len(exp.trials_dataframe())
    for t in trials:
        if t.state is TrialState.COMPLETED:
            assert "loss" in t.metrics
            assert t.ended_at is not None
    assert exp.counts().get(TrialState.RUNNING, 0) <= 1


def test_refresh_follows_a_run_in_another_process(
    gated: tuple[Path, Path, subprocess.Popen[str]],
) -> None:
    """A reader loads mid-run; each refresh is consistent, picks up each trial finished
    after the load, and ends up equal to a fresh complete read."""
    folder, gates, child = gated
    wait_until(lambda: _alive(child) and (folder / "experiment.db").exists(), "the store")
    exp = rs.load(folder)
    try:
        for k in range(N):

            def running(k: int = k) -> bool:
                _alive(child)
                exp.refresh()
                _consistent(exp)
                return len(exp.trials) > k and exp.trials[k].state is TrialState.RUNNING

            wait_until(running, f"trial {k} running")
            assert exp.status == "running"
            (gates / str(k)).touch()

            def finished(k: int = k) -> bool:
                _alive(child)
                exp.refresh()
                _consistent(exp)
                return exp.trials[k].state is TrialState.COMPLETED

            wait_until(finished, f"trial {k} completed")
            assert len(exp.trials[k].intermediate) == 2
        wait_until(lambda: _alive(child) and (exp.refresh() or exp.status != "running"), "end")
        wait_until(lambda: exp.refresh() or exp.status == "completed", "completed")
        with rs.load(folder) as fresh:
            assert fresh.trials == exp.trials
            assert fresh.events() == exp.events()
            assert fresh.meta == exp.meta
        assert not exp.refresh()
    finally:
        exp.close()
    assert child.wait(timeout=120) == 0
    assert sorted(p.name for p in folder.iterdir() if p.is_file()) == ["experiment.db"]


def test_status_watch_ends_when_the_run_ends(
    gated: tuple[Path, Path, subprocess.Popen[str]],
) -> None:
    """status --watch keeps refreshing while the run goes on and exits 0 once it ended,
    showing the final state."""
    folder, gates, child = gated
    wait_until(lambda: _alive(child) and (folder / "experiment.db").exists(), "the store")
    watch = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "raysweep.cli",
            "status",
            str(folder),
            "--watch",
            "--interval",
            "0.05",
        ],
        cwd=REPO_ROOT,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with rs.load(folder) as exp:
            wait_until(
                lambda: _alive(child) and exp.refresh() is not None and len(exp.trials) >= 1,
                "the first trial",
            )
        assert watch.poll() is None  # the run goes on, so does the watch
        for k in range(N):
            (gates / str(k)).touch()
        assert child.wait(timeout=120) == 0
        out, err = watch.communicate(timeout=120)
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.wait()
    assert watch.returncode == 0, err
    assert "gated (sweep): completed" in out
    assert f"{N} of {N}: {N} completed" in out
