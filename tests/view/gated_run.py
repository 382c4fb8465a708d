"""A sweep that runs one trial per gate file, for readers racing a writer in another process.

``python -m tests.view.gated_run STORAGE GATES N`` runs a sweep ``gated`` of ``N``
trials in-process (``GATES`` reaches the objective as ``RAYSWEEP_TEST_GATES``).
Trial ``k`` (in the order they run) reports, then finishes only once the file
``GATES/k`` exists, so a test decides when each trial ends and reads the store
between, without sleeping.
"""

from __future__ import annotations

import itertools
import os
import sys
import time
from pathlib import Path
from typing import Any

import raysweep as rs
from raysweep.sweep.execution import InProcessBackend

#: How long a trial waits for its gate before it fails (a bound on a hung test).
GATE_WAIT_S = 120.0

_calls = itertools.count()


def gated(config: dict[str, Any]) -> float:
    """Report twice, wait for this trial's gate, return (x - 0.5)**2."""
    gates = Path(os.environ["RAYSWEEP_TEST_GATES"])
    k = next(_calls)
    rs.report(step=0, loss=1.0 + config["x"])
    rs.report(step=1, loss=0.5 + config["x"])
    deadline = time.monotonic() + GATE_WAIT_S
    while not (gates / str(k)).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gate {k} never opened")
        time.sleep(0.005)
    return (config["x"] - 0.5) ** 2


def main(storage: Path, gates: Path, n: int) -> None:
    os.environ["RAYSWEEP_TEST_GATES"] = str(gates)
    rs.run(
        gated,
        {"x": rs.uniform(0.0, 1.0)},
        num_trials=n,
        seed=11,
        storage=storage,
        name="gated",
        backend=InProcessBackend(),
        verbose=0,
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]))
