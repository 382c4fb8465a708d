"""Sweeps on a real two-node Ray cluster: trials spread over both nodes, and a node
lost mid-run costs no trial (each lost attempt is run again, from its checkpoint)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from raysweep.store import SQLiteStore
from raysweep.trial import Trial, TrialState
from tests.cluster import sweep_driver
from tests.cluster.objectives import read_marks
from tests.cluster.ray_nodes import LocalRayCluster
from tests.conftest import REPO_ROOT, process_ended, wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

#: Steps of each trial; the trials held together wait at HOLD_AT, checkpointed up to it.
STEPS = 5
HOLD_AT = 3


class Driver:
    """``tests.cluster.sweep_driver`` running in a subprocess, output kept in a file."""

    def __init__(
        self, cluster: LocalRayCluster, tmp: Path, name: str, num_trials: int, **fixed: Any
    ) -> None:
        self.storage = tmp / "runs"
        self.gate = tmp / "gate"
        self.gate.mkdir()
        self.name = name
        self.log = tmp / "driver.log"
        space = {"steps": STEPS, "hold_at": HOLD_AT, **fixed}
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.cluster.sweep_driver",
                    cluster.address,
                    str(self.storage),
                    name,
                    str(self.gate),
                    str(num_trials),
                    json.dumps(space),
                ],
                cwd=REPO_ROOT,
                env=cluster.env(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def check_running(self) -> None:
        """Fail the test if the driver ended before it should have."""
        if self.process.poll() is not None:
            pytest.fail(f"the driver exited ({self.process.returncode}) early:\n{self.output()}")

    def held(self) -> dict[int, dict[str, Any]]:
        """Trials held at step HOLD_AT: trial id -> node id and worker pid."""
        return read_marks(self.gate, "held")

    def finish(self) -> list[Trial]:
        """Wait for the driver to end well; the stored trials."""
        wait_until(lambda: self.process.poll() is not None, "the sweep driver to end")
        assert self.process.returncode == 0, self.output()
        store = SQLiteStore.open(self.storage / self.name, readonly=True)
        try:
            return store.trials()
        finally:
            store.close()

    def retries(self) -> list[dict[str, Any]]:
        store = SQLiteStore.open(self.storage / self.name, readonly=True)
        try:
            return store.events("retry")
        finally:
            store.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


def _errors(trials: list[Trial]) -> str:
    return "\n".join(f"trial {t.trial_id} {t.state.value}: {t.error}" for t in trials if t.error)


def _node_ids(cluster: LocalRayCluster) -> tuple[str, str]:
    """The Ray node ids of the head and of the live worker node."""
    assert cluster.head is not None
    head, worker = cluster.head.node_id, cluster.worker.node_id
    assert head is not None
    assert worker is not None
    return head, worker


def test_sweep_runs_trials_on_both_nodes(two_nodes: LocalRayCluster, tmp_path: Path) -> None:
    """A sweep joining the cluster by address runs trials on the head and the worker
    node at once (four held together need both nodes' two CPUs), and stores them all."""
    head_id, worker_id = _node_ids(two_nodes)
    driver = Driver(
        two_nodes, tmp_path, "spread", 8, together=4, gate_open=False, ack_resumed=False
    )
    try:
        trials = driver.finish()
    finally:
        driver.stop()
    assert [t.state for t in trials] == [TrialState.COMPLETED] * 8, _errors(trials)
    assert all(t.attempts == 1 for t in trials)
    held = driver.held()
    assert sorted(held) == [0, 1, 2, 3]
    nodes = sorted(mark["node_id"] for mark in held.values())
    assert nodes == sorted([head_id, head_id, worker_id, worker_id])
    ended = read_marks(driver.gate, "ended")
    assert {mark["node_id"] for mark in ended.values()} <= {head_id, worker_id}
    assert {t.node for t in trials} == {two_nodes.host}  # one machine: one IP for both


def test_node_loss_reruns_lost_trials_from_checkpoints(
    two_nodes: LocalRayCluster, tmp_path: Path
) -> None:
    """SIGKILL of the worker node's raylet while two trials run there loses no trial:
    both are run again on the head, going on from the checkpoint they saved before
    the kill, the driver still hears their live reports (each waits until it did),
    and every trial of the sweep completes."""
    head_id, worker_id = _node_ids(two_nodes)
    worker = two_nodes.worker
    driver = Driver(two_nodes, tmp_path, "loss", 4, together=4, gate_open=True, ack_resumed=True)
    try:

        def all_held() -> bool:
            driver.check_running()
            return len(driver.held()) == 4

        wait_until(all_held, "four trials held at the gate, two on each node")
        held = driver.held()
        lost = sorted(tid for tid, mark in held.items() if mark["node_id"] == worker_id)
        kept = sorted(tid for tid, mark in held.items() if mark["node_id"] == head_id)
        assert len(lost) == 2, held
        assert len(kept) == 2, held

        two_nodes.kill_raylet(worker)
        # Their worker processes end with the raylet; only then may the held trials
        # go on, so that none of the lost attempts can finish after all.
        for tid in lost:
            pid = held[tid]["pid"]
            wait_until(lambda pid=pid: process_ended(pid), f"worker {pid} to end with its node")
        (driver.gate / "open").touch()
        trials = driver.finish()
    finally:
        driver.stop()

    assert [t.state for t in trials] == [TrialState.COMPLETED] * 4, _errors(trials)
    by_id = {t.trial_id: t for t in trials}
    ended = read_marks(driver.gate, "ended")
    for tid in kept:
        assert by_id[tid].attempts == 1
        assert by_id[tid].metrics["start"] == 0
    for tid in lost:
        trial = by_id[tid]
        assert trial.attempts >= 2
        assert trial.attempts <= 1 + sweep_driver.MAX_RETRIES
        assert trial.metrics["start"] == HOLD_AT  # went on from its checkpoint
        assert ended[tid]["node_id"] == head_id  # the worker node is gone
        # The stored series is whole: the steps before the kill, then the rest.
        assert [r["step"] for r in trial.intermediate] == list(range(STEPS))
    retried = sorted({event["trial_id"] for event in driver.retries()})
    assert retried == lost
