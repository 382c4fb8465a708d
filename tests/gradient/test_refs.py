"""Large observables go from simulator tasks to objective tasks without visiting the driver."""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from typing import Any

import numpy as np
import optax
import pytest
import ray

from raysweep.gradient import (
    NotReady,
    Objective,
    ObjectiveResult,
    RayOptimizer,
    Simulator,
)

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_session")]

PAYLOAD_BYTES = 50 * 1024 * 1024


def _rebuild(data: np.ndarray, driver_pid: int) -> DriverBomb:
    if os.getpid() == driver_pid:
        raise RuntimeError("a large observable was deserialized in the driver process")
    return DriverBomb(data, driver_pid)


class DriverBomb:
    """A payload that refuses to be unpickled in the driver process."""

    def __init__(self, data: np.ndarray, driver_pid: int) -> None:
        self.data = data
        self.driver_pid = driver_pid

    def __reduce__(self) -> tuple[Any, ...]:
        return _rebuild, (self.data, self.driver_pid)


class BigSim(Simulator):
    """Exposes 50 MB wrapped in a DriverBomb."""

    exposes = ("payload",)

    def __init__(self, name: str | None = None, *, driver_pid: int, **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self.driver_pid = driver_pid

    def run(self, params: Any, state: Any) -> tuple[Mapping[str, Any], Any]:
        data = np.full(PAYLOAD_BYTES // 8, float(np.asarray(params["a"])))
        return {"payload": DriverBomb(data, self.driver_pid)}, state


class PayloadObjective(Objective):
    """Reads the payloads and reports how many bytes it saw."""

    def compute(self, params: Any, observables: Mapping[str, Any]) -> ObjectiveResult | NotReady:
        seen = sum(v.data.nbytes for v in observables.values())
        return ObjectiveResult(loss=0.0, grads={"a": np.asarray(1.0)}, aux={"bytes_seen": seen})


def test_large_observables_never_reach_the_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    """The driver fetches only small results while objectives read 50 MB observables."""
    fetched: list[int] = []
    real_get = ray.get

    def recording_get(refs: Any, *args: Any, **kwargs: Any) -> Any:
        value = real_get(refs, *args, **kwargs)
        for item in value if isinstance(refs, list) else [value]:
            fetched.append(len(pickle.dumps(item)))
        return value

    monkeypatch.setattr(ray, "get", recording_get)  # the driver's ray, which _ray_exec uses
    sims = BigSim.create_n(2, name="big", driver_pid=os.getpid())
    obj = PayloadObjective(name="p", required_observables=[s.observable("payload") for s in sims])
    out = RayOptimizer(sims, [obj], optax.sgd(0.1)).run({"a": np.float32(1.0)}, n_steps=2)
    assert [d["aux"]["p"]["bytes_seen"] for d in out.history] == [2 * PAYLOAD_BYTES] * 2
    assert len(fetched) == 2 * (2 + 1)  # per step: one small result per simulator and objective
    assert max(fetched) < 64 * 1024


def test_reading_an_observable_in_the_callback_does_fetch_it() -> None:
    """The guard above is not vacuous: a driver that does fetch the payload trips the bomb."""

    def callback(output: Any, step: int) -> tuple[None, bool]:
        output.observables["big.0"]["payload"]
        return None, True

    sims = BigSim.create_n(1, name="big", driver_pid=os.getpid())
    obj = PayloadObjective(name="p", required_observables=[s.observable("payload") for s in sims])
    with pytest.raises(Exception, match="deserialized in the driver"):
        RayOptimizer(sims, [obj], optax.sgd(0.1)).run({"a": np.float32(1.0)}, 1, callback)
