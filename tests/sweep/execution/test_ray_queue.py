"""Trials that wait in Ray's queue on the shared local Ray: queued is not running, and
``timeout_s`` counts from the start on a worker; what the cluster holds at once."""

from __future__ import annotations

import io
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import ray
from rich.console import Console

import raysweep as rs
from raysweep.cli.status import render_status
from raysweep.resources import Resources
from raysweep.store import open_experiment
from raysweep.sweep.execution import capacity_note
from raysweep.sweep.execution.ray_backend import RayBackend
from raysweep.sweep.progress import ProgressCallback
from raysweep.trial import Trial, TrialState
from tests.conftest import RAY_TEST_CPUS, wait_until
from tests.sweep.execution import objectives
from tests.sweep.execution.test_ray_runs import _stored_trials

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_session")]


@ray.remote(num_cpus=1)
def _hold_a_cpu(gate: str, index: int) -> None:
    """Keeps one CPU of the cluster busy until the test writes ``free-<index>``."""
    (Path(gate) / f"hog-{index}").touch()
    objectives.wait_for_file(Path(gate) / f"free-{index}", "the test to free this CPU")


def _views(directory: Path, progress: ProgressCallback) -> tuple[list[str], str]:
    """``raysweep status`` of the experiment (lines, spaces collapsed) and the progress frame."""
    store = open_experiment(directory)
    try:
        out = io.StringIO()
        render_status(store, Console(file=out, width=200), directory, now=time.time())
    finally:
        store.close()
    recorder = Console(record=True, width=200, file=io.StringIO())
    recorder.print(progress.renderable())
    return [" ".join(line.split()) for line in out.getvalue().splitlines()], recorder.export_text()


def test_queued_trials_are_not_running_and_do_not_time_out(storage: Path, tmp_path: Path) -> None:
    """With every CPU busy, dispatched trials show as queued (status and progress) for longer
    than timeout_s, then run and complete: the time-out counts from their start."""
    gate = tmp_path / "gate"
    gate.mkdir()
    # The test counts CPUs: work an earlier test left on the shared Ray (an actor
    # still being created, a task still queued) would take the CPU freed below.
    wait_until(
        lambda: ray.available_resources().get("CPU", 0) >= RAY_TEST_CPUS,
        "every CPU of the shared Ray to be free of earlier tests' work",
    )
    hogs = [_hold_a_cpu.remote(str(gate), i) for i in range(RAY_TEST_CPUS)]
    directory = storage / "queue"
    progress = ProgressCallback(Console(file=io.StringIO()), live=False)
    timeout_s = 3.0
    seen: dict[str, Any] = {}

    def stored() -> tuple[list[Trial], list[Trial]]:
        trials = [t for t in _stored_trials(directory) if t.state is TrialState.RUNNING]
        return (
            [t for t in trials if t.started_at is not None],
            [t for t in trials if t.started_at is None],
        )

    def watch() -> None:
        try:
            # Both trials wait while every CPU is held, longer than their time-out.
            def queued_past_the_timeout() -> bool:
                running, queued = stored()
                now = time.time()
                # The store holds a trial before it is dispatched (and the first
                # dispatch of a run can take seconds), so wait for the display too.
                return (
                    not running
                    and len(queued) == 2
                    and all(now > (t.queued_at or now) + timeout_s for t in queued)
                    and "queued 2" in _views(directory, progress)[1]
                )

            wait_until(queued_past_the_timeout, "two trials queued for longer than timeout_s")
            seen["queued"] = _views(directory, progress)
            (gate / "free-0").touch()  # one CPU: one trial runs, the other still waits
            wait_until(
                lambda: (
                    [len(group) for group in stored()] == [1, 1]
                    and len(list(gate.glob("running-*"))) == 1
                ),
                "one trial running and one queued",
            )
            seen["one running"] = _views(directory, progress)
        finally:
            (gate / "release").touch()
            for i in range(RAY_TEST_CPUS):
                (gate / f"free-{i}").touch()

    wait_until(lambda: len(list(gate.glob("hog-*"))) == RAY_TEST_CPUS, "every CPU to be held")
    with ThreadPoolExecutor(1) as pool:
        watched = pool.submit(watch)
        try:
            result = rs.run(
                objectives.held_until_released,
                {"x": rs.uniform(0, 1), "gate": str(gate)},
                num_trials=2,
                max_concurrent=2,
                timeout_s=timeout_s,
                name="queue",
                storage=storage,
                callbacks=[progress],
            )
        finally:
            for i in range(RAY_TEST_CPUS):
                (gate / f"free-{i}").touch()
            (gate / "release").touch()
        watched.result()
    ray.get(hogs)
    assert result.count(TrialState.COMPLETED) == 2, [t.error for t in result.trials]
    for trial in result.trials:
        assert trial.queued_at is not None
        assert trial.started_at is not None
        assert trial.started_at > trial.queued_at + timeout_s  # queued past its time-out
    status, frame = seen["queued"]
    assert "trials 2 of 2: 2 queued" in status
    assert not any(line.startswith("running ") for line in status)
    assert "running 0 · queued 2 · completed 0" in frame
    status, frame = seen["one running"]
    assert "trials 2 of 2: 1 running, 1 queued" in status
    assert "running 1 · queued 1 · completed 0" in frame


def test_capacity_counts_every_resource_on_each_node() -> None:
    """What fits at once is bounded by the scarcest resource a trial asks for, and a note says
    when max_concurrent asks for more."""
    backend = RayBackend()
    notes: list[str] = []
    backend.start(notes.append)
    assert notes == [f"using the Ray this process already joined ({RAY_TEST_CPUS} CPUs, 1 GPU)"]
    assert backend.default_concurrency(Resources()) == RAY_TEST_CPUS
    assert backend.default_concurrency(Resources(num_cpus=2)) == RAY_TEST_CPUS // 2
    assert backend.default_concurrency(Resources(num_cpus=0.5, num_gpus=0.5)) == 2
    assert backend.default_concurrency(Resources(num_cpus=0.1)) == 10 * RAY_TEST_CPUS
    capacity = backend.default_concurrency(Resources(num_cpus=2))
    note = capacity_note(4, capacity)
    assert note is not None
    assert note.startswith("max_concurrent=4 but 2 trials fit at once on the cluster now")
    assert capacity_note(2, capacity) is None
    backend.shutdown()  # Ray was running before: it keeps running
    assert ray.is_initialized()
