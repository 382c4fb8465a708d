"""A gradient run that joins the test cluster from a subprocess, as a user's script would.

Usage: python -m tests.cluster.gradient_driver ADDRESS STORAGE GATE N_SIMS N_STEPS

Its simulators observe the parameter ``a`` (so the result does not depend on
where or how often they ran) and, on their :data:`HOLD_RUN`-th run, write a
``held-<index>`` mark (Ray node id, pid) into GATE and wait until ``GATE/open``
exists, so the test can kill a node while calls run on it.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from raysweep.gradient import (
    NotReady,
    Objective,
    ObjectiveResult,
    RayOptimizer,
    SchedulerHints,
    Simulator,
)
from tests.cluster.objectives import _node_id, _write
from tests.sweep.execution.objectives import wait_for_file

#: The run (1-based, per simulator) on which every simulator waits at the gate.
HOLD_RUN = 2
#: The minimum of the loss: ``(mean observed a - TARGET)**2``.
TARGET = 3.0
LEARNING_RATE = 0.1
#: Retries of a call lost with its node or process.
MAX_RETRIES = 2


class GatedSim(Simulator):
    """Observes ``a``; its state counts its runs; waits at the gate on run HOLD_RUN."""

    exposes = ("value",)

    def __init__(self, name: str | None = None, *, gate: str, **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self.gate = gate

    def run(self, params: Any, state: Any) -> tuple[Mapping[str, Any], Any]:
        import os

        runs = (0 if state is None else int(state)) + 1
        gate = Path(self.gate)
        if runs == HOLD_RUN and not (gate / "open").exists():
            index = self.name.rsplit(".", 1)[1]
            _write(gate / f"held-{index}", {"node_id": _node_id(), "pid": os.getpid()})
            wait_for_file(gate / "open", "the test to open the gate")
        return {"value": float(np.asarray(params["a"]))}, runs


class Quadratic(Objective):
    """``(mean observed a - TARGET)**2`` and its exact gradient."""

    def compute(self, params: Any, observables: Mapping[str, Any]) -> ObjectiveResult | NotReady:
        mean = float(np.mean(list(observables.values())))
        return ObjectiveResult(
            loss=(mean - TARGET) ** 2, grads={"a": np.asarray(2.0 * (mean - TARGET))}
        )


def expected_a(n_steps: int) -> float:
    """``a`` after ``n_steps`` of SGD from 0 on this loss (no node loss changes it)."""
    a = np.float32(0.0)
    for _ in range(n_steps):
        a = np.float32(a - np.float32(LEARNING_RATE) * np.float32(2.0 * (a - TARGET)))
    return float(a)


if __name__ == "__main__":
    import optax

    address, storage, gate, n_sims, n_steps = sys.argv[1:6]
    hints = SchedulerHints(num_cpus=1, max_retries=MAX_RETRIES)
    sims = GatedSim.create_n(int(n_sims), name="sim", gate=gate, scheduler_hints=hints)
    objective = Quadratic(
        name="quad",
        required_observables=[s.observable("value") for s in sims],
        scheduler_hints=SchedulerHints(num_cpus=0, max_retries=MAX_RETRIES),
    )
    opt = RayOptimizer(
        sims, [objective], optax.sgd(LEARNING_RATE), name="fit", storage=storage, address=address
    )
    out = opt.run({"a": np.asarray(0.0, dtype=np.float32)}, n_steps=int(n_steps))
    print("fitted a =", float(np.asarray(out.params["a"])), flush=True)
