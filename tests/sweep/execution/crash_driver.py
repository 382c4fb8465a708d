"""A sweep driver the crash test runs in a subprocess and kills with SIGKILL.

Usage: python crash_driver.py GCS_ADDRESS STORAGE NUM_TRIALS [--resume]
It joins the test session's Ray as a second driver, so killing it leaves no Ray
processes of its own behind.
"""

from __future__ import annotations

import sys

import ray

import raysweep as rs
from tests.sweep.execution.objectives import slow_square

if __name__ == "__main__":
    address, storage, num_trials = sys.argv[1], sys.argv[2], int(sys.argv[3])
    ray.init(address=address, logging_level="ERROR", log_to_driver=False)
    rs.run(
        slow_square,
        {"x": rs.uniform(-1.0, 1.0)},
        num_trials=num_trials,
        max_concurrent=2,
        name="crash",
        storage=storage,
        seed=7,
        resume="--resume" in sys.argv,
    )
