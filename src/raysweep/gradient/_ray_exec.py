"""What the gradient optimizer asks of Ray between and around calls: the connection,
option checks, sharing a step's params, waiting; with ``_executor`` (the hosts and
their calls, re-exported here) the gradient half's only modules importing Ray
(``raysweep._ray``, shared with the sweep half, joins or starts Ray).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import ray

from raysweep.errors import RaysweepError, SpecError
from raysweep.gradient._executor import (
    Executor,
    ObjectiveDone,
    SimulatorDone,
    TaskFailed,
    host_options,
    host_remote,
)

__all__ = [
    "Executor",
    "ObjectiveDone",
    "SimulatorDone",
    "TaskFailed",
    "connected",
    "ensure_ray",
    "fetch_observable",
    "share",
    "shutdown",
    "validate_options",
    "wait_any",
]

#: Options raysweep sets itself on every call; users may not override them.
RESERVED_OPTIONS = frozenset({"num_returns", "name"})
#: Task options that mean nothing to a process that serves the whole run.
_TASK_ONLY = frozenset(
    {"max_calls", "_generator_backpressure_num_objects", "_num_objects_per_yield"}
)


# -- session ----------------------------------------------------------------------------
def ensure_ray(address: str | None, runtime_env: Mapping[str, Any] | None) -> bool:
    """Connect to Ray unless this process already is; True if this call started it.

    Joined or started as the sweep half does it (``raysweep._ray.connect``): an
    address that does not answer fails in bounded time, and neither Ray's
    progress lines (INFO) nor JAX's fork warning reach the terminal.

    Raises:
        RayConnectError: the cluster at ``address`` (or ``RAY_ADDRESS``) did not answer.
    """
    from raysweep._ray import connect

    return connect(address, runtime_env)


def connected() -> bool:
    """Whether this process is connected to Ray (the user may have shut it down)."""
    return bool(ray.is_initialized())


def shutdown() -> None:
    """Disconnect (only called by the run that connected)."""
    ray.shutdown()


def _validate_task(*args: Any) -> None:  # only ever given options, never run
    return None


_task_check = ray.remote(_validate_task)


def validate_options(options: Mapping[str, Any], unit: str) -> None:
    """Fail before anything runs if a unit's options are not valid Ray task options.

    Raises:
        SpecError: a reserved, inapplicable or unknown option, or a value Ray rejects.
    """
    reserved = sorted(RESERVED_OPTIONS & set(options))
    if reserved:
        raise SpecError(
            f"{unit}: task options {reserved} are set by raysweep (one return per "
            f"observable, the unit name) and cannot be given"
        )
    inapplicable = sorted(_TASK_ONLY & set(options))
    if inapplicable:
        raise SpecError(
            f"{unit}: task options {inapplicable} do not apply: units run in worker "
            f"processes that serve the whole run"
        )
    try:
        _task_check.options(**options, num_returns=2, name=unit)
        host_remote.options(**host_options(options))
    except (ValueError, TypeError) as exc:
        raise SpecError(f"{unit}: invalid Ray task options {dict(options)!r}: {exc}") from exc


# -- in the driver ----------------------------------------------------------------------
#: Below this many bytes, values travel inside the call (Ray inlines them);
#: a ``ray.put`` costs about 1 ms, more than 18 tiny copies.
_INLINE_BYTES = 32 * 1024


def share(value: Any, nbytes: int) -> Any:
    """What to pass to every call of a step: ``value`` itself when small, else one ref."""
    return value if nbytes < _INLINE_BYTES else ray.put(value)


def wait_any(refs: Sequence[Any]) -> list[Any]:
    """Block until at least one ref is ready; return every ref ready by then."""
    ready, rest = ray.wait(list(refs), num_returns=1)
    if rest:
        more, _ = ray.wait(rest, num_returns=len(rest), timeout=0)
        ready.extend(more)
    return list(ready)


def fetch_observable(ref: Any) -> Any:
    """An observable's value, for the callback that asked for it."""
    if not ray.is_initialized():
        raise RaysweepError(
            "simulator observables can only be read while the run is going "
            "(in the callback): Ray was shut down when run() returned"
        )
    return ray.get(ref)
