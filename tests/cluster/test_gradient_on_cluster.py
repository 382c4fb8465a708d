"""A gradient run on the real two-node Ray cluster: its simulators spread over both
nodes, and losing the worker node mid-step costs no step (its calls run again on
the head) and does not change the result."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from raysweep.store import SQLiteStore
from tests.cluster import gradient_driver
from tests.cluster.objectives import read_marks
from tests.cluster.ray_nodes import LocalRayCluster
from tests.conftest import REPO_ROOT, process_ended, wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

SIMS = 4
STEPS = 4


def test_node_loss_mid_step_reruns_its_calls_and_the_run_finishes(
    two_nodes: LocalRayCluster, tmp_path: Path
) -> None:
    """Four one-CPU simulators (two per node) are held in step 2; the worker node's
    raylet is SIGKILLed; the two calls lost with it run again on the head, and the
    run stores every step and ends with the same parameters as without the loss."""
    assert two_nodes.head is not None
    head_id, worker_id = two_nodes.head.node_id, two_nodes.worker.node_id
    gate = tmp_path / "gate"
    gate.mkdir()
    storage = tmp_path / "runs"
    log = tmp_path / "driver.log"
    with open(log, "wb") as out:
        driver = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.cluster.gradient_driver",
                two_nodes.address,
                str(storage),
                str(gate),
                str(SIMS),
                str(STEPS),
            ],
            cwd=REPO_ROOT,
            env=two_nodes.env(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:

        def all_held() -> bool:
            if driver.poll() is not None:
                pytest.fail(f"the driver exited ({driver.returncode}):\n{log.read_text()}")
            return len(read_marks(gate, "held")) == SIMS

        wait_until(all_held, "every simulator held at the gate in step 2")
        held = read_marks(gate, "held")
        on_worker = [m for m in held.values() if m["node_id"] == worker_id]
        assert len(on_worker) == 2, held
        assert len([m for m in held.values() if m["node_id"] == head_id]) == 2, held

        two_nodes.kill_raylet(two_nodes.worker)
        for mark in on_worker:
            pid = mark["pid"]
            wait_until(lambda pid=pid: process_ended(pid), f"simulator process {pid} to end")
        (gate / "open").touch()
        wait_until(lambda: driver.poll() is not None, "the gradient run to end")
    finally:
        if driver.poll() is None:
            driver.kill()
        driver.wait()

    output = log.read_text(errors="replace")
    assert driver.returncode == 0, output
    store = SQLiteStore.open(storage / "fit", readonly=True)
    try:
        steps = store.steps()
        retries = store.events("retry")
    finally:
        store.close()
    assert [s.step for s in steps] == list(range(STEPS))
    lost = sorted(f"sim.{i}" for i, m in held.items() if m["node_id"] == worker_id)
    moved = [e for e in retries if "moved to the surviving nodes" in e["data"]["error"]]
    assert sorted(e["data"]["unit"] for e in moved) == lost, retries
    assert f"fitted a = {gradient_driver.expected_a(STEPS)}" in output
