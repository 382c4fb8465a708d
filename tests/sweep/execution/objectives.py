"""Objectives used by the Ray integration tests (module level, so workers import them)."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import raysweep


def quadratic(config: Mapping[str, Any]) -> dict[str, float]:
    return {"loss": (config["x"] - 0.3) ** 2, "pid": float(os.getpid())}


def env_value(config: Mapping[str, Any]) -> float:
    return float(os.environ.get("RAYSWEEP_PROBE", "nan"))


def sleepy(config: Mapping[str, Any]) -> dict[str, float]:
    start = time.time()
    time.sleep(config["sleep"])
    return {"loss": config["x"], "start": start, "end": time.time()}


def report_then_wait(config: Mapping[str, Any]) -> float:
    raysweep.report(step=0, loss=5.0)
    time.sleep(3.0)  # well above the inbox actor's start-up, even on a loaded machine
    return 1.0


def dies_once(config: Mapping[str, Any]) -> float:
    """Kills its own worker process on the first attempt (marker file), then succeeds."""
    marker = Path(config["marker_dir"]) / f"attempt-{config['x']}"
    if not marker.exists():
        marker.write_text("died")
        os._exit(1)
    return 0.5


def always_dies(config: Mapping[str, Any]) -> float:
    os._exit(1)


def slow_square(config: Mapping[str, Any]) -> float:
    time.sleep(0.25)
    return float(config["x"]) ** 2
