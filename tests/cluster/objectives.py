"""Objectives of the cluster tests (module level: Ray workers import them by name).

A trial writes what the test needs to see from outside into the folder
``config["gate"]``: where each attempt ran (the Ray node id, which tells the two
nodes of one machine apart where their IP cannot) and its worker's pid. Trials
that must line up with each other or with the test wait for files there, never
for a fixed time; every wait is bounded by :data:`WAIT_S`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import raysweep
from raysweep.trial import Trial
from tests.sweep.execution.objectives import WAIT_S, trial_id, wait_for_file

__all__ = ["AckReports", "held_at_step", "read_marks"]


#: How long a resumed trial waits for the driver to hear its report, then fails
#: (shorter than the test's wait for the driver, so the failure is the trial's).
ACK_S = 60.0


def _node_id() -> str:
    import ray

    return str(ray.get_runtime_context().get_node_id())


def _write(path: Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` as JSON; readers never see the file half written."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)


def read_marks(gate: Path, prefix: str) -> dict[int, dict[str, Any]]:
    """The marks ``<prefix>-<trial id>`` written so far, by trial id."""
    marks = {}
    for path in gate.glob(f"{prefix}-*"):
        if not path.name.endswith(".tmp"):
            marks[int(path.name.rsplit("-", 1)[1])] = json.loads(path.read_text())
    return marks


def _wait_for_marks(gate: Path, count: int) -> None:
    """Return once ``count`` trials have written their ``held`` mark."""
    deadline = time.monotonic() + WAIT_S
    while len([p for p in gate.glob("held-*") if not p.name.endswith(".tmp")]) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {WAIT_S:g} s for {count} trials to run at once")
        time.sleep(0.01)


def held_at_step(config: Mapping[str, Any]) -> dict[str, float]:
    """Steps ``0 .. steps-1``, each checkpointed and reported, going on from the last
    checkpoint. Trials below ``config["together"]`` that reach step ``hold_at`` in
    this attempt mark themselves (``held-<id>``: node id, pid), wait until that many
    trials are held at once, and, with ``config["gate_open"]``, for the file ``open``
    too. With ``config["ack_resumed"]``, an attempt that went on from a checkpoint
    waits after its first report until the driver has heard it (``ack-<id>-<step>``,
    written by the driver's :class:`AckReports` callback). Every attempt marks
    where it ended (``ended-<id>``). ``start`` is the step this attempt began at."""
    gate = Path(config["gate"])
    tid = trial_id()
    start = int((raysweep.load_checkpoint() or {"step": 0})["step"])
    for step in range(start, int(config["steps"])):
        if step == config["hold_at"] and start < step and tid < config["together"]:
            _write(gate / f"held-{tid}", {"node_id": _node_id(), "pid": os.getpid()})
            _wait_for_marks(gate, int(config["together"]))
            if config["gate_open"]:
                wait_for_file(gate / "open", "the test to open the gate")
        raysweep.report(step=step, loss=float(config["x"]) / (step + 1), start=start)
        if config["ack_resumed"] and step == start > 0:
            # The first report of an attempt that went on from a checkpoint.
            wait_for_file(gate / f"ack-{tid}-{step}", "the driver to hear a report", ACK_S)
        raysweep.save_checkpoint({"step": step + 1})
    _write(gate / f"ended-{tid}", {"node_id": _node_id(), "pid": os.getpid()})
    return {"loss": float(config["x"]), "start": float(start)}


class AckReports(raysweep.Callback):
    """Driver side: writes ``ack-<trial id>-<step>`` into ``gate`` for each live report."""

    def __init__(self, gate: str) -> None:
        self.gate = Path(gate)

    def on_trial_report(self, trial: Trial, report: Mapping[str, Any]) -> None:
        (self.gate / f"ack-{trial.trial_id}-{report['step']}").touch()
