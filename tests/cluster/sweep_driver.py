"""A sweep driver that joins the test cluster from a subprocess.

Usage: python -m tests.cluster.sweep_driver ADDRESS STORAGE NAME GATE NUM_TRIALS JSON
where JSON holds the fixed values of the space (``x`` is drawn). The test
process may already be a driver of the session's local Ray, so the cluster is
joined from here, as a user's script would join it: ``rs.run(address=...)``.
"""

from __future__ import annotations

import json
import sys

import raysweep as rs
from tests.cluster.objectives import AckReports, held_at_step

#: Trials in flight at once: one per CPU of the two nodes.
CONCURRENCY = 4
#: Retries of a trial lost with its node (raysweep's, not Ray's).
MAX_RETRIES = 2


if __name__ == "__main__":
    address, storage, name, gate, num_trials, fixed = sys.argv[1:7]
    rs.run(
        held_at_step,
        {"x": rs.uniform(0.0, 1.0), "gate": gate, **json.loads(fixed)},
        num_trials=int(num_trials),
        max_concurrent=CONCURRENCY,
        resources={"cpu": 1, "max_retries": MAX_RETRIES},
        name=name,
        storage=storage,
        address=address,
        seed=11,
        verbose=0,
        callbacks=[AckReports(gate)],
    )
