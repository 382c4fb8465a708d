"""What a reader makes of an experiment's stored meta: its spec, objectives and status.

The spec is checked before anything is shown from it: a hand-edited spec (a
``mode`` of ``'up'``, a space that is not a mapping) becomes one line naming the
file rather than a traceback half-way through a notebook cell or a status
table. The status is the stored one, except that a "running" experiment whose
driver is gone reads as "interrupted" (:func:`raysweep.store.judge_driver`).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from raysweep._text import format_duration
from raysweep.errors import SpecError, StoreError
from raysweep.objectives import Objectives
from raysweep.store import HEARTBEAT_KEY, DriverState, DriverVerdict, judge_driver

__all__ = ["META_KEYS", "Standing", "check_spec", "spec_objectives", "standing"]

#: The meta keys a reader holds (and reads again on each refresh).
META_KEYS = (
    "spec",
    "status",
    "stop_reason",
    "started_at",
    "driver",
    HEARTBEAT_KEY,
    "searcher_summary",
)


def check_spec(spec: Any, where: str) -> dict[str, Any]:
    """The stored spec (meta ``spec``), checked for what readers take from it.

    Raises:
        StoreError: ``"<where>: stored spec: <problem>"``, or none is stored.
    """
    if spec is None:
        raise StoreError(f"{where} holds no experiment specification (meta 'spec')")
    if not isinstance(spec, dict):
        raise StoreError(f"{where}: the stored spec is {type(spec).__name__}, expected an object")
    try:
        _check(spec)
    except (SpecError, TypeError, ValueError) as exc:
        raise StoreError(f"{where}: stored spec: {exc}") from None
    return spec


def spec_objectives(spec: Mapping[str, Any]) -> Objectives:
    """What a stored sweep optimizes, as the run saw it: its metric(s) and mode(s)
    (a single string from older versions, or lists) and the primary metric
    ``stop.metric`` named. Call it on a :func:`check_spec`-ed spec."""
    stop = spec.get("stop")
    primary = stop.get("metric") if isinstance(stop, Mapping) else None
    objectives = Objectives.parse(spec.get("metric", "loss"), spec.get("mode", "min"))
    return objectives.with_primary(primary if primary in objectives.names else None)


def _check(spec: Mapping[str, Any]) -> None:
    kind = spec.get("kind", "sweep")
    if kind not in ("sweep", "gradient"):
        raise SpecError(f"kind: expected 'sweep' or 'gradient', got {kind!r}")
    if not isinstance(spec.get("name", ""), str):
        raise SpecError(f"name: expected a string, got {spec['name']!r}")
    if kind == "gradient":
        for key in ("simulators", "objectives"):
            names = spec.get(key)
            if names is not None and not (
                isinstance(names, list) and all(isinstance(n, str) for n in names)
            ):
                raise SpecError(f"{key}: expected a list of names, got {names!r}")
        steps = spec.get("n_steps")
        if steps is not None and (
            isinstance(steps, bool) or not isinstance(steps, int) or steps < 0
        ):
            raise SpecError(f"n_steps: expected a whole number >= 0, got {steps!r}")
        return
    from raysweep.sweep.config import SweepConfig

    SweepConfig.check_stored(spec)  # the rules the values were given under


@dataclass(frozen=True, slots=True)
class Standing:
    """An experiment's status as ``raysweep status`` shows it.

    Attributes:
        status: the stored status ("running", "completed", "failed", "stopped",
            "unknown" when none is stored), or "interrupted" for a running one
            whose driver process is gone.
        reason: why it stopped, or what is wrong with its driver, or ``None``.
        verdict: the driver judgement of a stored "running" experiment.
    """

    status: str
    reason: str | None
    verdict: DriverVerdict | None


def standing(meta: Mapping[str, Any], now: float, host: str | None = None) -> Standing:
    """Judge the stored ``status`` (and for "running", the driver) at Unix time ``now``.

    Args:
        meta: the experiment's meta values (:data:`META_KEYS`).
        host: this machine's name (default ``socket.gethostname()``); a driver on
            this host is checked by its pid.
    """
    status = meta.get("status")
    status = "unknown" if status is None else str(status)
    reason = meta.get("stop_reason")
    reason = None if reason is None else str(reason)
    if status != "running":
        return Standing(status, reason, None)
    verdict = judge_driver(
        meta.get("driver"), meta.get(HEARTBEAT_KEY), now=now, this_host=host or socket.gethostname()
    )
    if verdict.state is DriverState.INTERRUPTED:
        return Standing(
            "interrupted", "its driver is no longer running; continue with --resume", verdict
        )
    if verdict.state is DriverState.UNRESPONSIVE:
        return Standing(status, _unresponsive(verdict, now), verdict)
    return Standing(status, reason, verdict)


def _unresponsive(verdict: DriverVerdict, now: float) -> str:
    seen = verdict.last_seen if verdict.last_seen is not None else now
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seen))
    pid = "?" if verdict.pid is None else verdict.pid
    return (
        f"driver unresponsive since {stamp} ({format_duration(now - seen)} ago, "
        f"host {verdict.host or '?'} pid {pid})"
    )
