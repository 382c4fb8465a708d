"""Small experiments for the reading tests, made in-process (no Ray) in a moment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import raysweep as rs
from raysweep.sweep.execution import InProcessBackend

SPACE = {"x": rs.uniform(0.0, 1.0), "tag": "a"}


def objective(config: dict[str, Any]) -> float:
    """Three reports, then ``(x - 0.25)**2``; fails for x above 0.9."""
    x = config["x"]
    for step in range(3):
        rs.report(step=step, loss=(x - 0.25) ** 2 + 1.0 / (step + 1))
    if x > 0.9:
        raise ValueError(f"x={x} is too large")
    return (x - 0.25) ** 2


def two_metrics(config: dict[str, Any]) -> dict[str, float]:
    """Two metrics that pull ``x`` apart: loss wants 0, latency wants 1."""
    x = config["x"]
    rs.report(step=0, loss=x, latency=1.0 - x)
    return {"loss": x**2, "latency": (1.0 - x) ** 2}


def make_sweep(storage: Path, name: str = "sweep", num_trials: int = 6, seed: int = 3) -> Path:
    """A finished single-metric sweep in ``storage/name``; returns its folder."""
    rs.run(
        objective,
        SPACE,
        num_trials=num_trials,
        seed=seed,
        storage=storage,
        name=name,
        backend=InProcessBackend(),
        verbose=0,
    )
    return storage / name


def make_two_metric_sweep(storage: Path, name: str = "pareto") -> Path:
    """A finished sweep minimizing loss and latency in ``storage/name``."""
    rs.run(
        two_metrics,
        {"x": rs.uniform(0.0, 1.0)},
        metric=["loss", "latency"],
        mode="min",
        num_trials=8,
        seed=5,
        storage=storage,
        name=name,
        backend=InProcessBackend(),
        verbose=0,
    )
    return storage / name
