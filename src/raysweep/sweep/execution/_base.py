"""The backend interface: *where* trials run, separate from what to try and when to stop.

A backend starts trials and reports what happened to them as events; the runner
decides everything else (retries, time-outs, stopping). That keeps the runner's
logic testable in-process with a fake clock, and keeps Ray in one module.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from raysweep.resources import Resources

__all__ = ["Backend", "Clock", "Event", "TrialFinished", "TrialLost", "TrialReported", "WallClock"]


@dataclass(frozen=True, slots=True)
class TrialFinished:
    """The trial's task returned; ``payload`` is :func:`execute_trial`'s dict."""

    trial_id: int
    payload: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class TrialLost:
    """The trial's worker or node died (not the trial's own fault): retryable."""

    trial_id: int
    reason: str


@dataclass(frozen=True, slots=True)
class TrialReported:
    """A running trial called :func:`raysweep.report`."""

    trial_id: int
    report: Mapping[str, Any]


Event = TrialFinished | TrialLost | TrialReported


class Clock:
    """Source of time for the runner; tests inject a fake one."""

    def now(self) -> float:
        raise NotImplementedError


class WallClock(Clock):
    """``time.time()``."""

    def now(self) -> float:
        return time.time()


class Backend(abc.ABC):
    """Runs trials. ``submit`` and ``wait`` are required; the rest are no-ops."""

    def start(self, notify: Callable[[str], None]) -> None:  # noqa: B027 - optional hook
        """Acquire where trials run (connect to or start a cluster), before
        :meth:`prepare`; say what is happening through ``notify`` (one short line
        each, e.g. "starting Ray (2 CPUs) ..."), which reaches the display."""

    def prepare(  # noqa: B027 - optional hook, a no-op by default
        self,
        objective: Callable[[dict[str, Any]], Any],
        *,
        metric: str,
        hints: Resources,
    ) -> None:
        """Receive what every trial of the experiment shares, before the first submit."""

    @abc.abstractmethod
    def submit(self, trial_id: int, config: Mapping[str, Any]) -> None:
        """Start running one trial (returns at once)."""

    @abc.abstractmethod
    def wait(self, timeout: float | None) -> Sequence[Event]:
        """Block until at least one event or ``timeout`` seconds; return all events
        available now (an empty list on time-out)."""

    def cancel(self, trial_id: int) -> None:  # noqa: B027 - optional hook
        """Stop a running trial; no event for it follows."""

    def clock(self) -> Clock | None:
        """The backend's own time source, or ``None`` for the wall clock.

        A backend that keeps its own time, such as the simulator's virtual clock,
        returns it here, and the runner must read that clock: time-outs, the time
        budget and stored times are then measured in the backend's time.
        """
        return None

    def default_concurrency(self, hints: Resources) -> int:
        """How many trials fit at once when the user did not say."""
        return 1

    def shutdown(self) -> None:  # noqa: B027 - optional hook
        """Release what :meth:`prepare` acquired."""
