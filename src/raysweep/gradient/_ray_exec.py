"""Everything the gradient optimizer asks of Ray; the only module here that imports it.

Simulators and objectives run as Ray *tasks* (not actors): a unit is a small
picklable object (pickled once per run) shipped with every call, so any worker on any node can run
any step and a lost worker costs one task, not a stateful actor.

A simulator task has one return per exposed observable plus a last, small
:class:`SimulatorDone` (new state and timing). The driver waits on and fetches
only that last one; the observable refs go to objective tasks nested in a dict,
so Ray does not resolve them on the way, and the objective task fetches them
inside its worker. Large trajectories therefore never travel through the driver.
"""

from __future__ import annotations

import os
import pickle
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import ray
from ray import cloudpickle
from ray.exceptions import RayError, RayTaskError

from raysweep.errors import RaysweepError, SpecError
from raysweep.gradient.units import NotReady, Objective, ObjectiveResult, Simulator
from raysweep.resources import task_env

__all__ = [
    "Launcher",
    "ObjectiveDone",
    "SimulatorDone",
    "TaskFailed",
    "cancel",
    "ensure_ray",
    "fetch",
    "fetch_all",
    "fetch_observable",
    "prepare_objective",
    "prepare_simulator",
    "share",
    "shutdown",
    "submit_objective",
    "submit_simulator",
    "validate_options",
    "wait_any",
]

#: Options raysweep sets itself on every task; users may not override them.
RESERVED_OPTIONS = frozenset({"num_returns", "name"})


@dataclass(frozen=True, slots=True)
class SimulatorDone:
    """The small last return of a simulator task (the driver fetches only this)."""

    state: Any
    elapsed_s: float


@dataclass(frozen=True, slots=True)
class ObjectiveDone:
    """The return of an objective task."""

    result: ObjectiveResult | NotReady
    elapsed_s: float


@dataclass(frozen=True, slots=True)
class TaskFailed:
    """A task that raised (``retryable``: user code raised) or was lost for good."""

    message: str
    retryable: bool


# -- session ----------------------------------------------------------------------------
def ensure_ray(address: str | None, runtime_env: Mapping[str, Any] | None) -> bool:
    """Connect to Ray unless this process already is; True if this call started it."""
    if ray.is_initialized():
        return False
    ray.init(
        address=address or os.environ.get("RAY_ADDRESS") or None,
        runtime_env=dict(runtime_env) if runtime_env else None,
        include_dashboard=False,
    )
    return True


def shutdown() -> None:
    """Disconnect (only called by the run that connected)."""
    ray.shutdown()


def validate_options(options: Mapping[str, Any], unit: str) -> None:
    """Fail before anything runs if a unit's task options are not valid Ray options.

    Raises:
        SpecError: a reserved or unknown option, or a value Ray rejects.
    """
    reserved = sorted(RESERVED_OPTIONS & set(options))
    if reserved:
        raise SpecError(
            f"{unit}: task options {reserved} are set by raysweep (one return per "
            f"observable, the unit name) and cannot be given"
        )
    try:
        _simulator_remote.options(**options, num_returns=2, name=unit)
    except (ValueError, TypeError) as exc:
        raise SpecError(f"{unit}: invalid Ray task options {dict(options)!r}: {exc}") from exc


# -- inside the workers -----------------------------------------------------------------
def _apply_env(env: Mapping[str, str]) -> None:
    # Set per task, not through a per-task runtime_env, which would split the worker pool.
    os.environ.update(env)


def _run_simulator(
    payload: bytes, params: Any, state: Any, env: Mapping[str, str]
) -> tuple[Any, ...]:
    _apply_env(env)
    simulator: Simulator = _thaw(payload)
    start = time.perf_counter()
    answer = simulator.run(params, state)
    if not isinstance(answer, tuple) or len(answer) != 2 or not isinstance(answer[0], Mapping):
        raise TypeError(
            f"simulator {simulator.name!r}: run() must return "
            f"(observables dict, new_state), got {type(answer).__name__}"
        )
    observables, new_state = answer
    exposes = type(simulator).exposes
    if set(observables) != set(exposes):
        raise SpecError(
            f"simulator {simulator.name!r}: run() returned observables "
            f"{sorted(observables)}, but the class exposes {sorted(exposes)}"
        )
    done = SimulatorDone(state=new_state, elapsed_s=time.perf_counter() - start)
    return (*(observables[name] for name in exposes), done)


def _run_objective(
    payload: bytes, params: Any, refs: Mapping[str, Any], env: Mapping[str, str]
) -> ObjectiveDone:
    _apply_env(env)
    objective: Objective = _thaw(payload)
    start = time.perf_counter()
    names = list(refs)
    values = ray.get([refs[name] for name in names])
    result = objective.compute(params, dict(zip(names, values, strict=True)))
    if isinstance(result, ObjectiveResult):
        jax = sys.modules.get("jax")
        if jax is not None:
            # NumPy leaves: the driver need not hold device buffers, and unpickles fast.
            result = ObjectiveResult(
                loss=float(result.loss), grads=jax.device_get(result.grads), aux=result.aux
            )
        else:
            result = ObjectiveResult(loss=float(result.loss), grads=result.grads, aux=result.aux)
    elif not isinstance(result, NotReady):
        raise TypeError(
            f"objective {objective.name!r}: compute() must return ObjectiveResult "
            f"or NotReady, got {type(result).__name__}"
        )
    return ObjectiveDone(result=result, elapsed_s=time.perf_counter() - start)


_simulator_remote = ray.remote(_run_simulator)
_objective_remote = ray.remote(_run_objective)


# -- in the driver ----------------------------------------------------------------------
#: Below this many bytes, values travel inside the task spec (Ray inlines them);
#: a ``ray.put`` costs about 1 ms, more than 18 tiny copies.
_INLINE_BYTES = 32 * 1024


def share(value: Any, nbytes: int) -> Any:
    """What to pass to every task of a step: ``value`` itself when small, else one ref."""
    return value if nbytes < _INLINE_BYTES else ray.put(value)


def _freeze(unit: Simulator | Objective) -> bytes:
    # Pickled once per run: a unit defined in a script (``__main__``) is pickled by
    # value, class and all, which costs the driver ~0.5 ms per task if done per call.
    try:
        return bytes(cloudpickle.dumps(unit))
    except Exception as exc:  # pickling errors come in many types
        raise SpecError(
            f"{unit!r} cannot be pickled to ship it to Ray workers ({exc}); keep "
            f"units to configuration (no open files, locks or live clients)"
        ) from exc


def _thaw(payload: bytes) -> Any:
    return pickle.loads(payload)


@dataclass(frozen=True, slots=True)
class Launcher:
    """A unit pickled once per run, with its task options prepared.

    Prepared once per run rather than per task: pickling the unit and building
    the options wrapper for each of 16 tasks cost the driver ~10 ms per step.
    """

    payload: bytes
    remote: Any
    env: Mapping[str, str]
    exposes: tuple[str, ...] = ()


def prepare_simulator(simulator: Simulator, options: Mapping[str, Any]) -> Launcher:
    """A launcher for a simulator's tasks (one return per observable, plus one)."""
    exposes = tuple(type(simulator).exposes)
    remote = _simulator_remote.options(**options, num_returns=len(exposes) + 1, name=simulator.name)
    return Launcher(_freeze(simulator), remote, task_env(options), exposes)


def prepare_objective(objective: Objective, options: Mapping[str, Any]) -> Launcher:
    """A launcher for an objective's tasks."""
    remote = _objective_remote.options(**options, name=objective.name)
    return Launcher(_freeze(objective), remote, task_env(options))


def submit_simulator(launcher: Launcher, params: Any, state: Any) -> tuple[dict[str, Any], Any]:
    """Start a simulator task; ``({observable: ref}, done_ref)``.

    ``params`` is the value or a ref from :func:`share`; Ray resolves a top-level ref.
    """
    refs = launcher.remote.remote(launcher.payload, params, state, launcher.env)
    return dict(zip(launcher.exposes, refs[:-1], strict=True)), refs[-1]


def submit_objective(launcher: Launcher, params: Any, refs: Mapping[str, Any]) -> Any:
    """Start an objective task; the observable refs travel nested in a dict, unresolved."""
    return launcher.remote.remote(launcher.payload, params, dict(refs), launcher.env)


def wait_any(refs: Sequence[Any]) -> list[Any]:
    """Block until at least one ref is ready; return every ref ready by then."""
    ready, rest = ray.wait(list(refs), num_returns=1)
    if rest:
        more, _ = ray.wait(rest, num_returns=len(rest), timeout=0)
        ready.extend(more)
    return list(ready)


def fetch(ref: Any) -> Any:
    """The value of a finished task's small result, or :class:`TaskFailed`."""
    try:
        return ray.get(ref)
    except RayTaskError as exc:
        cause = exc.cause if isinstance(exc.cause, BaseException) else exc
        return TaskFailed(message=f"{type(cause).__name__}: {cause}", retryable=True)
    except RayError as exc:
        return TaskFailed(message=f"{type(exc).__name__}: {exc}", retryable=False)


def fetch_all(refs: Sequence[Any]) -> list[Any]:
    """:func:`fetch` of finished refs, in one call to Ray unless one of them failed."""
    try:
        return list(ray.get(list(refs)))
    except RayError:
        return [fetch(ref) for ref in refs]


def fetch_observable(ref: Any) -> Any:
    """An observable's value, for the callback that asked for it."""
    if not ray.is_initialized():
        raise RaysweepError(
            "simulator observables can only be read while the run is going "
            "(in the callback): Ray was shut down when run() returned"
        )
    return ray.get(ref)


def cancel(refs: Sequence[Any]) -> None:
    """Best-effort cancel of tasks still running when a step fails."""
    for ref in refs:
        try:
            ray.cancel(ref)
        except Exception:  # cancelling is a courtesy; a finished or lost task is fine
            continue
