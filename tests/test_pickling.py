"""Everything that crosses a process boundary survives a pickle round trip."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

import raysweep as rs
from raysweep.sweep.execution import TrialFinished, TrialLost, TrialReported, TrialStarted
from raysweep.sweep.execution._worker import execute_trial
from raysweep.sweep.space import SearchSpace
from raysweep.trial import Trial, TrialState


def objective(config: dict[str, Any]) -> float:
    rs.report(step=0, loss=2.0)
    return float(config["x"])


@pytest.mark.parametrize(
    "value",
    [
        Trial(
            trial_id=3,
            state=TrialState.COMPLETED,
            config={"x": 1.0},
            metrics={"loss": 1.0},
            intermediate=({"step": 0, "loss": 2.0},),
            attempts=2,
        ),
        TrialState.ABANDONED,
        rs.SchedulerHints(num_cpus=1, num_gpus=0.25, custom={"ray": {"max_calls": 1}}),
        rs.Stop(target=0.1, patience=3),
        SearchSpace.from_any(
            {
                "lr": rs.loguniform(1e-4, 1e-1),
                "act": rs.choice(["a", "b"]),
                "n": rs.randint(1, 4),
                "q": rs.quniform(0, 1, 0.1),
                "fixed": 0,
            }
        ),
        TrialFinished(1, {"ok": True, "metrics": {"loss": 1.0}}),
        TrialLost(1, "WorkerCrashedError: gone"),
        TrialReported(1, {"step": 0, "loss": 1.0}),
        TrialStarted(1, 1700000000.0, "10.0.0.7"),
    ],
    ids=lambda v: type(v).__name__,
)
def test_round_trip(value: object) -> None:
    """The value pickles and unpickles to an equal value."""
    assert pickle.loads(pickle.dumps(value)) == value


def test_trial_payload_pickles() -> None:
    """The payload a worker returns (metrics, reports, times) pickles unchanged."""
    payload = execute_trial(objective, 0, {"x": 0.5}, "loss")
    assert payload["ok"]
    assert payload["reports"][0]["loss"] == 2.0
    assert pickle.loads(pickle.dumps(payload)) == payload
