"""Where trials run: the backend interface, in-process and simulated backends, and Ray.

``raysweep.sweep.execution.ray_backend`` is imported lazily, so the rest of raysweep
(and its unit tests) works without starting or even importing Ray.
"""

from __future__ import annotations

from types import ModuleType

from raysweep.sweep.execution._base import (
    NO_TRIAL_IO,
    QUEUED_AFTER_S,
    Backend,
    Clock,
    Event,
    TrialFinished,
    TrialIO,
    TrialLost,
    TrialReported,
    TrialStarted,
    WallClock,
    capacity_note,
)
from raysweep.sweep.execution.local import FakeClock, InProcessBackend
from raysweep.sweep.execution.simulated import SimulatedBackend, VirtualClock

__all__ = [
    "NO_TRIAL_IO",
    "QUEUED_AFTER_S",
    "Backend",
    "Clock",
    "Event",
    "FakeClock",
    "InProcessBackend",
    "SimulatedBackend",
    "TrialFinished",
    "TrialIO",
    "TrialLost",
    "TrialReported",
    "TrialStarted",
    "VirtualClock",
    "WallClock",
    "capacity_note",
    "register_by_value",
]


def register_by_value(module: ModuleType) -> None:
    """Ship ``module`` to Ray workers by value (see :mod:`raysweep.sweep.execution.ray_backend`)."""
    from raysweep.sweep.execution.ray_backend import register_by_value as _register

    _register(module)
