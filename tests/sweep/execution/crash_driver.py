"""A sweep driver the crash test runs in a subprocess and kills with SIGKILL.

Usage: python -m tests.sweep.execution.crash_driver GCS_ADDRESS STORAGE NUM_TRIALS GATE
It joins the test session's Ray as a second driver, so killing it leaves no Ray
processes of its own behind. Trials from :data:`FREE_TRIALS` on wait for the
file ``open`` in GATE, which the test writes only after the kill: the driver is
always killed with that many trials completed and the next ones running.
"""

from __future__ import annotations

import sys
from typing import Any

import ray

import raysweep as rs
from tests.sweep.execution.objectives import square_then_gate

#: Trials that complete before the gate; the later ones wait for it.
FREE_TRIALS = 6


def crash_space(gate: str) -> dict[str, Any]:
    """The search space of the crashed run and of its resume (they must match)."""
    return {"x": rs.uniform(-1.0, 1.0), "gate": gate, "free": FREE_TRIALS}


if __name__ == "__main__":
    address, storage, num_trials, gate = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    ray.init(address=address, logging_level="ERROR", log_to_driver=False)
    rs.run(
        square_then_gate,
        crash_space(gate),
        num_trials=num_trials,
        max_concurrent=2,
        name="crash",
        storage=storage,
        seed=7,
    )
