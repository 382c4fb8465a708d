"""What runs inside a host: the worker process that serves some units for a whole run.

A host (a Ray actor made from :class:`UnitHost` by ``_executor``) unpickles each
of its units once and calls it step after step, so the unit's imports and
compiled code stay warm. It checks what user code returned, so a wrong answer
is reported with the unit's name, and returns small results the driver fetches:
:class:`SimulatorDone` after a simulator's observables, :class:`ObjectiveDone`.
Every value that matters between steps comes with the call and goes back with
the result; the host keeps caches only.
"""

from __future__ import annotations

import os
import pickle
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from raysweep.errors import SpecError
from raysweep.gradient.units import NotReady, Objective, ObjectiveResult, Simulator, takes_state
from raysweep.resources import limit_torch_memory

__all__ = ["ObjectiveDone", "SimulatorDone", "UnitHost"]


@dataclass(frozen=True, slots=True)
class SimulatorDone:
    """The small last return of a simulator call (the driver fetches only this)."""

    state: Any
    elapsed_s: float


@dataclass(frozen=True, slots=True)
class ObjectiveDone:
    """The return of an objective call."""

    result: ObjectiveResult | NotReady
    elapsed_s: float


class UnitHost:
    """A worker process that runs some units of one run, call after call.

    It keeps the units unpickled and whatever they cache at module level
    (compiled functions, imported libraries); every value that matters between
    steps comes with the call and goes back to the driver.
    """

    def __init__(self, label: str, payloads: Mapping[str, bytes], env: Mapping[str, str]) -> None:
        # Before any unit is unpickled, so libraries read it when they load.
        os.environ.update(env)
        limit_torch_memory(env)
        self._label = label
        self._payloads = dict(payloads)
        self._units: dict[str, Any] = {}
        self._stateful: dict[str, bool] = {}

    def __repr__(self) -> str:
        return self._label  # Ray prefixes the host's output with it: "(s.0, s.2 pid=...)"

    def _unit(self, name: str) -> Any:
        unit = self._units.get(name)
        if unit is None:
            unit = self._units[name] = pickle.loads(self._payloads[name])
        return unit

    def ping(self) -> int:
        return os.getpid()

    def node(self) -> str:
        """The Ray node id this host runs on (asked once, when it starts)."""
        import ray

        return str(ray.get_runtime_context().get_node_id())

    def adopt(self, payloads: Mapping[str, bytes]) -> None:
        """Take on more units: those of a host lost with its node."""
        self._payloads.update(payloads)

    def simulate(self, name: str, params: Any, state: Any) -> tuple[Any, ...]:
        simulator: Simulator = self._unit(name)
        start = time.perf_counter()
        answer = simulator.run(params, state)
        if not isinstance(answer, tuple) or len(answer) != 2 or not isinstance(answer[0], Mapping):
            raise TypeError(
                f"simulator {name!r}: run() must return "
                f"(observables dict, new_state), got {type(answer).__name__}"
            )
        observables, new_state = answer
        exposes = type(simulator).exposes
        if set(observables) != set(exposes):
            raise SpecError(
                f"simulator {name!r}: run() returned observables "
                f"{sorted(observables)}, but the class exposes {sorted(exposes)}"
            )
        done = SimulatorDone(state=new_state, elapsed_s=time.perf_counter() - start)
        return (*(observables[obs] for obs in exposes), done)

    def compute(
        self, name: str, params: Any, refs: Mapping[str, Any], state: Any = None
    ) -> ObjectiveDone:
        objective: Objective = self._unit(name)
        if name not in self._stateful:
            self._stateful[name] = takes_state(objective)
        start = time.perf_counter()
        import ray  # loaded in every Ray worker already; the driver side never needs it here

        names = list(refs)
        values = ray.get([refs[q] for q in names])
        observables = dict(zip(names, values, strict=True))
        if self._stateful[name]:
            result = objective.compute(params, observables, state=state)  # type: ignore[call-arg]
        else:
            result = objective.compute(params, observables)
        if isinstance(result, ObjectiveResult):
            jax = sys.modules.get("jax")
            # NumPy leaves: the driver need not hold device buffers, and unpickles fast.
            grads = jax.device_get(result.grads) if jax is not None else result.grads
            result = ObjectiveResult(
                loss=float(result.loss), grads=grads, aux=result.aux, state=result.state
            )
        elif not isinstance(result, NotReady):
            raise TypeError(
                f"objective {name!r}: compute() must return ObjectiveResult "
                f"or NotReady, got {type(result).__name__}"
            )
        return ObjectiveDone(result=result, elapsed_s=time.perf_counter() - start)
