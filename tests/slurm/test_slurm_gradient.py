"""A gradient fit on a real two-node Slurm job: ``raysweep slurm fit.py --nodes 2 --submit``.

The job starts a Ray cluster over both Slurm nodes and runs the script with
``RAY_ADDRESS`` naming it; the script's ``RayOptimizer`` joins that cluster,
its two simulators (each wanting a whole node) run on different nodes, and every
step is stored on the shared filesystem.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from raysweep.store import open_experiment
from tests.slurm.slurm_daemons import SlurmCluster, tail
from tests.slurm.test_slurm_cluster import submit_with_cli, wait_until_gone

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

#: A user's fit script: two simulators, each taking a whole node, record their node.
FIT = """
import sys
import uuid
from pathlib import Path

import numpy as np
import optax
import ray

from raysweep.gradient import (
    Objective, ObjectiveResult, RayOptimizer, SchedulerHints, Simulator,
)

FOLDER = Path(__file__).resolve().parent
CPUS, STEPS = float(sys.argv[1]), int(sys.argv[2])


class NodeSim(Simulator):
    exposes = ("value",)

    def run(self, params, state):
        node = ray.get_runtime_context().get_node_id()
        (FOLDER / "nodes" / uuid.uuid4().hex).write_text(node)
        return {"value": float(np.asarray(params["a"]))}, None


class Quadratic(Objective):
    def compute(self, params, observables):
        mean = float(np.mean(list(observables.values())))
        return ObjectiveResult(loss=(mean - 3.0) ** 2, grads={"a": np.asarray(2 * (mean - 3.0))})


sims = NodeSim.create_n(2, name="sim", scheduler_hints=SchedulerHints(num_cpus=CPUS))
objective = Quadratic(
    name="quad",
    required_observables=[s.observable("value") for s in sims],
    scheduler_hints=SchedulerHints(num_cpus=0),
)
opt = RayOptimizer(
    sims, [objective], optax.sgd(0.1), name="fit", storage="runs", resume="auto"
)
out = opt.run({"a": np.asarray(0.0, dtype=np.float32)}, n_steps=STEPS)
print("fitted a =", float(np.asarray(out.params["a"])))
"""


def test_gradient_fit_script_runs_across_both_nodes(
    slurm_cluster: SlurmCluster, tmp_path: Path
) -> None:
    """The script joins the job's Ray cluster (RAY_ADDRESS), uses both nodes, stores
    every step under the folder it was submitted from, and leaves no process behind."""
    folder = tmp_path / "a fit"
    (folder / "nodes").mkdir(parents=True)
    script = folder / "fit.py"
    script.write_text(textwrap.dedent(FIT))
    before = set(map(int, filter(str.isdigit, (p.name for p in Path("/proc").iterdir()))))

    job_id = submit_with_cli(slurm_cluster, script, str(slurm_cluster.cpus), "3", cwd=folder)
    log = folder / f"fit.slurm-{job_id}.log"

    assert slurm_cluster.wait_for_end(job_id, log) == "COMPLETED", tail(log)
    text = log.read_text()
    assert "Ray is up: 2 of 2 nodes alive" in text
    assert "fitted a = " in text, tail(log)
    store = open_experiment(folder / "runs" / "fit")
    try:
        assert [s.step for s in store.steps()] == [0, 1, 2]
    finally:
        store.close()
    nodes = {p.read_text() for p in (folder / "nodes").iterdir()}
    assert len(nodes) == 2, f"simulators ran on {len(nodes)} Ray node(s): {nodes}"
    wait_until_gone(slurm_cluster, job_id, before)
