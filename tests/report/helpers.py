"""Experiments for the report and dashboard tests, made on the simulated backend.

The sweeps run the real runner, searcher, scheduler and SQLite store on a
virtual clock (seconds of wall time), with every kind of trial the report draws:
completed ones with intermediate reports, pruned ones (ASHA),
failed ones (the objective raises), on three workers.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import raysweep as rs
from raysweep.sweep.execution import SimulatedBackend, VirtualClock

SPACE = {
    "x": rs.uniform(0.0, 1.0),
    "lr": rs.loguniform(1e-4, 1e-1),
    "act": rs.choice(["relu", "tanh"]),
}
EPOCHS = 5
#: The virtual start of every test sweep (2025-01-01 UTC), so times read as dates.
START = 1_735_689_600.0


def train(config: Mapping[str, Any]) -> dict[str, float]:
    """Loss (x - 0.3)^2 + small terms, reported per epoch; fails for x < 0.08."""
    if config["x"] < 0.08:
        raise ValueError(f"x={config['x']:.3f} is too small to train")
    base = (config["x"] - 0.3) ** 2 + 0.05 * config["lr"] + (0.01 if config["act"] == "tanh" else 0)
    for epoch in range(EPOCHS):
        rs.report(step=epoch, loss=base + 1.0 / (epoch + 1))
    return {"loss": base + 1.0 / EPOCHS, "cost": 1.0 - config["x"]}


def make_sweep(
    storage: Path,
    name: str = "demo",
    *,
    multi: bool = False,
    trials: int = 24,
    scheduler: Any = "asha",
) -> Path:
    """A finished sweep of ``trials`` trials on three simulated workers; its folder."""
    backend = SimulatedBackend(
        workers=3,
        duration=lambda c: 20.0 + 40.0 * c["x"],
        clock=VirtualClock(start=START),
    )
    metric: Any = ["loss", "cost"] if multi else "loss"
    mode: Any = ["min", "min"] if multi else "min"
    if scheduler == "asha" and multi:
        scheduler = "fifo"  # ASHA judges one metric
    elif scheduler == "asha":  # rungs at steps 2 and 4: some trials pruned, most complete
        scheduler = {"name": "asha", "max_t": EPOCHS, "grace_period": 2, "reduction_factor": 2}
    rs.run(
        train, SPACE, metric=metric, mode=mode, num_trials=trials, storage=storage, name=name,
        backend=backend, scheduler=scheduler, seed=3, max_failures=trials, verbose=0,
    )  # fmt: skip
    return storage / name
