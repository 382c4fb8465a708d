"""Is the driver of a "running" experiment still there? Its heartbeat, and the judgement.

A driver writes the meta key ``"heartbeat"`` (:func:`heartbeat`) when it starts
and again at least every ``interval_s`` while it runs; a sweep's runner on a
timer, a gradient run after every step. ``raysweep status`` then tells three
cases apart with :func:`judge_driver`, a pure function of what is stored, the
current time and this host:

* the driver ran on this host and its process is gone: *interrupted*;
* its last heartbeat is older than :data:`STALE_AFTER` intervals: *unresponsive*
  (a driver on another host, a hung process, or a reused pid);
* otherwise it is taken as running.

Heartbeat times come from the writer's clock; a clock on another host that is
off by more than ``STALE_AFTER * interval_s`` makes the judgement wrong, which
is why the bound is generous.
"""

from __future__ import annotations

import enum
import math
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "HEARTBEAT_KEY",
    "STALE_AFTER",
    "DriverState",
    "DriverVerdict",
    "heartbeat",
    "judge_driver",
    "process_alive",
]

#: The meta key a running driver refreshes.
HEARTBEAT_KEY = "heartbeat"
#: A heartbeat older than this many of its intervals means an unresponsive driver.
STALE_AFTER = 3.0


def heartbeat(interval_s: float, *, now: float | None = None) -> dict[str, Any]:
    """The value to store under :data:`HEARTBEAT_KEY`: this process, now, and the
    longest the writer promises to wait before the next one.

    Example:
        >>> beat = heartbeat(30.0, now=1000.0)
        >>> (beat["time"], beat["interval_s"], beat["pid"] == os.getpid())
        (1000.0, 30.0, True)
    """
    if not (isinstance(interval_s, int | float) and math.isfinite(interval_s) and interval_s > 0):
        raise ValueError(f"interval_s must be a positive number of seconds, got {interval_s!r}")
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "time": time.time() if now is None else float(now),
        "interval_s": float(interval_s),
    }


def process_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host (one we may not signal counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True
    return True


class DriverState(enum.Enum):
    """What :func:`judge_driver` concluded about the driver of a running experiment."""

    RUNNING = "running"
    INTERRUPTED = "interrupted"
    UNRESPONSIVE = "unresponsive"


@dataclass(frozen=True, slots=True)
class DriverVerdict:
    """The judgement and what it rests on (``None`` where the store did not say)."""

    state: DriverState
    host: str | None = None
    pid: int | None = None
    last_seen: float | None = None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _pid(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def judge_driver(
    driver: Any,
    beat: Any,
    *,
    now: float,
    this_host: str,
    alive: Callable[[int], bool] = process_alive,
) -> DriverVerdict:
    """Judge the driver of an experiment whose stored status is "running".

    Args:
        driver: the stored ``"driver"`` meta (``{"host", "pid"}``) or ``None``.
        beat: the stored :data:`HEARTBEAT_KEY` meta or ``None``; a malformed
            value (a hand-edited store) is ignored, never an error.
        now: Unix time to judge at.
        this_host: ``socket.gethostname()`` of the reader.
        alive: tells whether a pid on this host runs (injectable for tests).

    Example:
        >>> beat = {"host": "n1", "pid": 7, "time": 0.0, "interval_s": 60.0}
        >>> judge_driver(None, beat, now=100.0, this_host="me").state.value
        'running'
        >>> judge_driver(None, beat, now=181.0, this_host="me").state.value
        'unresponsive'
    """
    beat = beat if isinstance(beat, dict) else {}
    who = driver if isinstance(driver, dict) and "pid" in driver else beat
    host, pid = _text(who.get("host")), _pid(who.get("pid"))
    if host is not None and host == this_host and pid is not None and not alive(pid):
        return DriverVerdict(DriverState.INTERRUPTED, host, pid)
    seen, interval = _number(beat.get("time")), _number(beat.get("interval_s"))
    if seen is not None and interval is not None and interval > 0:
        beat_host = _text(beat.get("host")) or host
        beat_pid = _pid(beat.get("pid"))
        beat_pid = pid if beat_pid is None else beat_pid
        if now - seen > STALE_AFTER * interval:
            return DriverVerdict(DriverState.UNRESPONSIVE, beat_host, beat_pid, seen)
        return DriverVerdict(DriverState.RUNNING, beat_host, beat_pid, seen)
    return DriverVerdict(DriverState.RUNNING, host, pid)
