"""A gradient run's store: opened by path or URL, with a heartbeat at start and after each step."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from raysweep.errors import ExperimentExistsError
from raysweep.gradient.checkpoint import (
    FIRST_STEP_BOUND_S,
    MIN_HEARTBEAT_S,
    RunStatus,
    RunStore,
    build_spec,
)
from raysweep.store import HEARTBEAT_KEY, DriverState, judge_driver, open_experiment

jnp = pytest.importorskip("jax.numpy")


class FakeClock:
    """A Unix clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _spec(name: str = "grad") -> dict[str, object]:
    return build_spec(name, ["sim"], ["obj"], 10, {})


def _record(run: RunStore, step: int) -> None:
    params = {"w": jnp.asarray([1.0, 2.0])}
    run.record(step, {"loss": 1.0 / (step + 1)}, params, params, {"sim": None})


def test_heartbeat_follows_the_steps(tmp_path: Path) -> None:
    """Start promises the first-step bound; each step renews it at max(60 s, 3x that step)."""
    clock = FakeClock()
    run = RunStore.create(tmp_path, _spec(), clock=clock)
    run.set_status(RunStatus.RUNNING)
    beats = [run.store.get_meta(HEARTBEAT_KEY)]
    clock.now += 5.0
    _record(run, 0)
    beats.append(run.store.get_meta(HEARTBEAT_KEY))
    clock.now += 100.0
    _record(run, 1)
    beats.append(run.store.get_meta(HEARTBEAT_KEY))
    run.close()
    assert [b["interval_s"] for b in beats] == [FIRST_STEP_BOUND_S, MIN_HEARTBEAT_S, 300.0]
    assert [b["time"] for b in beats] == [1_000_000.0, 1_000_005.0, 1_000_105.0]
    assert {(b["host"], b["pid"]) for b in beats} == {(socket.gethostname(), os.getpid())}


def test_status_reads_the_gradient_heartbeat(tmp_path: Path) -> None:
    """The stored heartbeat lets status tell a live gradient run from one that stopped stepping."""
    clock = FakeClock()
    run = RunStore.create(tmp_path, _spec(), clock=clock)
    run.set_status(RunStatus.RUNNING)
    clock.now += 10.0
    _record(run, 0)
    run.close()
    reader = open_experiment(tmp_path / "grad")
    beat = reader.get_meta(HEARTBEAT_KEY)
    assert reader.get_meta("status") == "running"
    reader.close()
    here = socket.gethostname()
    fresh = judge_driver(None, beat, now=clock.now + 3 * MIN_HEARTBEAT_S - 1, this_host=here)
    stale = judge_driver(None, beat, now=clock.now + 3 * MIN_HEARTBEAT_S + 1, this_host=here)
    assert (fresh.state, stale.state) == (DriverState.RUNNING, DriverState.UNRESPONSIVE)


def test_run_store_by_url_and_resume(tmp_path: Path) -> None:
    """A run created under a file:// storage URL is refused a second time and resumes."""
    storage = tmp_path.as_uri()
    RunStore.create(storage, _spec()).close()
    with pytest.raises(ExperimentExistsError):
        RunStore.create(storage, _spec())
    run = RunStore.resume(storage, _spec())
    assert run.store.read_spec()["name"] == "grad"
    run.close()
    assert (tmp_path / "grad" / "experiment.db").is_file()
