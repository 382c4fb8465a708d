"""A sweep driver the checkpoint test kills with SIGKILL mid-trial.

Usage: python -m tests.sweep.execution.checkpoint_driver GCS_ADDRESS STORAGE GATE
It joins the test session's Ray as a second driver. Its one trial saves a
checkpoint per epoch and holds after epoch :data:`HOLD_AT` until the test opens
the gate, which it does only after the kill.
"""

from __future__ import annotations

import sys
from typing import Any

import ray

import raysweep as rs
from tests.sweep.execution.objectives import checkpointed_epochs

#: The epoch after which the trial waits for the gate.
HOLD_AT = 4


def space(gate: str) -> dict[str, Any]:
    """The search space of the killed run and of its resume (they must match)."""
    return {"x": rs.uniform(0.0, 1.0), "gate": gate, "hold_at": HOLD_AT}


if __name__ == "__main__":
    address, storage, gate = sys.argv[1], sys.argv[2], sys.argv[3]
    ray.init(address=address, logging_level="ERROR", log_to_driver=False)
    rs.run(checkpointed_epochs, space(gate), num_trials=1, name="ckpt", storage=storage, seed=3)
