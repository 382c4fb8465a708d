"""Objectives used by the Ray integration tests (module level, so workers import them).

An objective that must line up with something outside its trial (the driver, the
test, another trial) waits for a marker file in ``config["gate"]``, never for a
fixed time: a loaded machine only makes it wait longer. Every wait is bounded by
:data:`WAIT_S` and then fails the trial saying what it waited for.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import raysweep
from raysweep.sweep.reporting import current_trial

#: The longest an objective waits for a marker before it fails (under pytest's 300 s).
WAIT_S = 120.0


def wait_for_file(path: Path, what: str, timeout_s: float = WAIT_S) -> None:
    """Return once ``path`` exists; raise TimeoutError naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout_s:g} s for {what} ({path} never appeared)")
        time.sleep(0.01)


def trial_id() -> int:
    """The id of the trial this objective runs as."""
    ctx = current_trial()
    if ctx is None:
        raise RuntimeError("not called inside a raysweep trial")
    return ctx.trial_id


def quadratic(config: Mapping[str, Any]) -> dict[str, float]:
    return {"loss": (config["x"] - 0.3) ** 2, "pid": float(os.getpid())}


def env_value(config: Mapping[str, Any]) -> float:
    return float(os.environ.get("RAYSWEEP_PROBE", "nan"))


def held_until_released(config: Mapping[str, Any]) -> dict[str, float]:
    """Marks itself running, counts the trials running with it, and holds until the
    test writes ``release``; ``inside`` is that count (this trial included)."""
    gate = Path(config["gate"])
    mine = gate / f"running-{trial_id()}"
    mine.touch()
    inside = len(list(gate.glob("running-*")))
    try:
        wait_for_file(gate / "release", "the test to release the trials")
    finally:
        mine.unlink()
    return {"loss": config["x"], "inside": float(inside)}


def report_then_wait_for_ack(config: Mapping[str, Any]) -> float:
    """Reports once, then finishes only after the driver has seen that report
    (its callback writes ``ack-<trial id>``)."""
    raysweep.report(step=0, loss=5.0)
    wait_for_file(Path(config["gate"]) / f"ack-{trial_id()}", "the driver to see the report")
    return 1.0


def quick_or_stuck(config: Mapping[str, Any]) -> float:
    """Returns at once, or (``stuck``) writes its pid and waits for a ``release`` the
    test never writes; ``finished-<trial id>`` records that the wait ran out."""
    if config["stuck"]:
        gate, tid = Path(config["gate"]), trial_id()
        (gate / f"pid-{tid}.tmp").write_text(str(os.getpid()))
        (gate / f"pid-{tid}.tmp").replace(gate / f"pid-{tid}")  # never seen half written
        try:
            wait_for_file(gate / "release", "a release that never comes")
        except TimeoutError:  # not on cancellation: that kills the worker or interrupts
            (gate / f"finished-{tid}").touch()
            raise
    return float(config["x"])


def dies_once(config: Mapping[str, Any]) -> float:
    """Kills its own worker process on the first attempt (marker file), then succeeds."""
    marker = Path(config["marker_dir"]) / f"attempt-{trial_id()}"
    if not marker.exists():
        marker.write_text("died")
        os._exit(1)
    return 0.5


def always_dies(config: Mapping[str, Any]) -> float:
    os._exit(1)


def square_then_gate(config: Mapping[str, Any]) -> float:
    """Trials below ``config["free"]`` return at once; later ones wait for the file
    ``open`` in ``config["gate"]``, so a driver killed meanwhile has exactly
    ``free`` completed trials and the gated ones running."""
    if trial_id() >= config["free"]:
        wait_for_file(Path(config["gate"]) / "open", "the test to open the gate")
    return float(config["x"]) ** 2


def epochs_until_pruned(config: Mapping[str, Any]) -> dict[str, float]:
    """Reports ``x / (epoch + 1)`` and its worker's pid for ``config["epochs"]`` epochs;
    on ``TrialPruned`` it leaves a marker in its trial folder, then lets it go."""
    try:
        for epoch in range(int(config["epochs"])):
            raysweep.report(step=epoch, loss=config["x"] / (epoch + 1), pid=os.getpid())
    except raysweep.TrialPruned:
        (raysweep.trial_dir() / "pruned").write_text(str(os.getpid()))
        raise
    return {"loss": config["x"] / int(config["epochs"]), "pid": os.getpid()}


def checkpointed_epochs(config: Mapping[str, Any]) -> float:
    """Ten epochs with a checkpoint before each report; reports carry the epoch this
    run started from. After epoch ``config["hold_at"]`` it waits for ``gate/open``."""
    state = raysweep.load_checkpoint() or {"epoch": 0}
    start = int(state["epoch"])
    for epoch in range(start, 10):
        raysweep.save_checkpoint({"epoch": epoch + 1})
        raysweep.report(step=epoch, loss=1.0 / (epoch + 1), start=start, pid=os.getpid())
        if epoch == config["hold_at"]:
            wait_for_file(Path(config["gate"]) / "open", "the test to open the gate")
    return 0.1


def ignores_pruning(config: Mapping[str, Any]) -> float:
    """Reports, and when pruned either returns a final value (``config["then"] ==
    "return"``) or goes on as if nothing happened until ``gate/open`` appears."""
    for epoch in range(10):
        try:
            raysweep.report(step=epoch, loss=config["x"] + 1.0 / (epoch + 1))
        except raysweep.TrialPruned:
            if config["then"] == "return":
                return -1.0
            wait_for_file(Path(config["gate"]) / "open", "a gate nobody opens")
    return config["x"]
