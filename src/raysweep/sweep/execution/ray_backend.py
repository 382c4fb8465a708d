"""Trials as Ray tasks: the only module of the sweep runner that imports Ray.

Each trial is one plain Ray task (measured here: streaming-generator tasks cost
25-45 % of the throughput of plain tasks on trivial trials, so intermediate
reports do not ride on the task's return channel). A report travels through a
small per-experiment *inbox* actor instead, and only when the objective calls
:func:`raysweep.report`: the driver keeps one long-poll call to the inbox among
the references it waits on, so reports arrive event-driven, with no polling.

Ray's own task retries are off (``max_retries=0``): the runner retries lost
trials itself, so every attempt is counted and stored.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from types import ModuleType
from typing import Any

import ray
import ray.exceptions as rex

from raysweep.errors import SpecError
from raysweep.resources import Resources, task_env
from raysweep.sweep.execution._base import Backend, Event, TrialFinished, TrialLost, TrialReported
from raysweep.sweep.execution._worker import execute_trial

__all__ = ["RayBackend", "ensure_ray", "register_by_value"]

#: Errors that mean the worker or node running a trial died, not the trial itself.
_LOST = (
    rex.WorkerCrashedError,
    rex.NodeDiedError,
    rex.ObjectLostError,
    rex.OwnerDiedError,
    rex.OutOfMemoryError,
    rex.LocalRayletDiedError,
)


def ensure_ray(address: str | None, runtime_env: Mapping[str, Any] | None) -> bool:
    """Connect to Ray; return True if this call started it (and should stop it).

    An already initialized Ray in this process is used as it is. Otherwise
    ``address`` (or ``RAY_ADDRESS``) is joined, or a local instance is started.
    """
    if ray.is_initialized():
        return False
    ray.init(
        address=address or os.environ.get("RAY_ADDRESS") or None,
        runtime_env=dict(runtime_env) if runtime_env else None,
        include_dashboard=None if address else False,
        logging_level=logging.WARNING,
        configure_logging=False,
    )
    return True


def register_by_value(module: ModuleType) -> None:
    """Ship ``module``'s functions to workers by value (no file needed there).

    Used for an objective loaded from a file next to a sweep YAML: workers
    would otherwise try to import the module by name and fail.
    """
    ray.cloudpickle.register_pickle_by_value(module)


@ray.remote(num_cpus=0)
class _ReportInbox:
    """Collects live reports from trials; the driver long-polls :meth:`drain`."""

    def __init__(self) -> None:
        self._items: list[tuple[int, dict[str, Any]]] = []
        self._ready = asyncio.Event()

    async def push(self, trial_id: int, report: dict[str, Any]) -> None:
        self._items.append((trial_id, report))
        self._ready.set()

    async def drain(self) -> list[tuple[int, dict[str, Any]]]:
        await self._ready.wait()
        items, self._items = self._items, []
        self._ready.clear()
        return items


_inbox_handles: dict[str, Any] = {}


def _send_report(inbox_name: str, trial_id: int, report: Mapping[str, Any]) -> None:
    """Forward one report from a worker to the inbox actor, fire and forget."""
    handle = _inbox_handles.get(inbox_name)
    if handle is None:
        handle = _inbox_handles[inbox_name] = ray.get_actor(inbox_name)
    handle.push.remote(trial_id, dict(report))


def _node_ip() -> str:
    return str(ray.util.get_node_ip_address())


def _make_entry(
    objective: Callable[[dict[str, Any]], Any], metric: str, inbox_name: str, env: Mapping[str, str]
) -> Callable[[int, dict[str, Any]], dict[str, Any]]:
    """The task body for this experiment; the objective travels inside it, so Ray
    exports it once per experiment rather than pickling it with every trial."""

    def run_trial(trial_id: int, config: dict[str, Any]) -> dict[str, Any]:
        return execute_trial(
            objective,
            trial_id,
            config,
            metric,
            env=env,
            sink=lambda tid, rep: _send_report(inbox_name, tid, rep),
            node=_node_ip(),
        )

    run_trial.__name__ = run_trial.__qualname__ = "raysweep_trial"
    return run_trial


def _check_task_runtime_env(runtime_env: Mapping[str, Any]) -> None:
    """Ray uploads a local ``working_dir``/``py_modules`` only at ``ray.init``; say so
    at start instead of failing on the first trial."""
    for key in ("working_dir", "py_modules"):
        values = runtime_env.get(key)
        for value in values if isinstance(values, list) else [values]:
            if isinstance(value, str) and "://" not in value:
                raise SpecError(
                    f"runtime_env.{key}={value!r}: Ray uploads a local folder only when it "
                    f"starts; Ray is already initialized in this process, so pass this "
                    f"runtime_env to your ray.init(...) (or let raysweep start Ray)"
                )


def _check_fits(options: Mapping[str, Any]) -> None:
    """Refuse at start a trial no node of the cluster could ever run (Ray would
    otherwise leave it pending forever)."""
    total = ray.cluster_resources()
    wanted = {
        "CPU": options.get("num_cpus", 1) or 0,
        "GPU": options.get("num_gpus", 0) or 0,
        "memory": options.get("memory", 0) or 0,
    }
    for key, amount in {**wanted, **dict(options.get("resources") or {})}.items():
        if amount and float(total.get(key, 0.0)) < float(amount):
            raise SpecError(
                f"resources: each trial needs {amount:g} {key} but the Ray cluster has "
                f"{float(total.get(key, 0.0)):g} in all; lower the request or add nodes"
            )


class RayBackend(Backend):
    """Runs each trial as a Ray task with the experiment's resource hints.

    Args:
        address: a Ray cluster to join (``None``: ``RAY_ADDRESS`` or a local Ray).
        runtime_env: passed to ``ray.init`` when this backend starts Ray, or to
            every task when Ray was already running.
    """

    def __init__(
        self, address: str | None = None, runtime_env: Mapping[str, Any] | None = None
    ) -> None:
        if ray.is_initialized() and runtime_env:
            _check_task_runtime_env(runtime_env)
        self._started_ray = ensure_ray(address, runtime_env)
        self._task_runtime_env = None if self._started_ray or not runtime_env else dict(runtime_env)
        self._refs: dict[Any, int] = {}
        self._by_trial: dict[int, Any] = {}
        self._remote: Any = None
        self._inbox: Any = None
        self._inbox_name = f"raysweep-inbox-{uuid.uuid4().hex[:12]}"
        self._poll: Any = None

    def prepare(
        self, objective: Callable[[dict[str, Any]], Any], *, metric: str, hints: Resources
    ) -> None:
        options = hints.to_ray_options({"num_cpus": 1})
        options["max_retries"] = 0  # the runner retries lost trials itself, counting attempts
        if self._task_runtime_env is not None:
            options["runtime_env"] = self._task_runtime_env
        _check_fits(options)
        entry = _make_entry(objective, metric, self._inbox_name, task_env(options))
        try:
            ray.cloudpickle.dumps(entry)
        except Exception as exc:
            raise SpecError(
                f"objective {getattr(objective, '__qualname__', objective)!r} cannot be sent to "
                f"Ray workers ({type(exc).__name__}: {exc}); define it at module level and keep "
                f"unpicklable objects (open files, locks, clients) out of its closure"
            ) from None
        self._remote = ray.remote(entry).options(**options)
        self._inbox = _ReportInbox.options(name=self._inbox_name).remote()  # type: ignore[attr-defined]
        self._poll = self._inbox.drain.remote()

    def submit(self, trial_id: int, config: Mapping[str, Any]) -> None:
        if self._remote is None:
            raise RuntimeError("RayBackend.prepare() was not called")
        ref = self._remote.remote(trial_id, dict(config))
        self._refs[ref] = trial_id
        self._by_trial[trial_id] = ref

    def wait(self, timeout: float | None) -> Sequence[Event]:
        waiting = [*self._refs, *([self._poll] if self._poll is not None else [])]
        ready, rest = ray.wait(waiting, num_returns=1, timeout=timeout)
        if ready and rest:
            more, _ = ray.wait(rest, num_returns=len(rest), timeout=0)
            ready += more
        events: list[Event] = []
        for ref in ready:
            if ref is self._poll:
                events[:0] = self._drain(ref)
                continue
            trial_id = self._refs.pop(ref)
            del self._by_trial[trial_id]
            events.append(self._outcome(trial_id, ref))
        return events

    def _drain(self, ref: Any) -> list[Event]:
        try:
            items = ray.get(ref)
        except rex.RayError:
            # The inbox died: live reports stop, but each trial's full series still
            # arrives with its result, so nothing stored is lost.
            self._poll = None
            return []
        self._poll = self._inbox.drain.remote()
        return [TrialReported(tid, rep) for tid, rep in items]

    @staticmethod
    def _outcome(trial_id: int, ref: Any) -> Event:
        try:
            return TrialFinished(trial_id, ray.get(ref))
        except _LOST as exc:
            return TrialLost(trial_id, f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
        except rex.RayError as exc:
            # The task body itself failed: e.g. the objective does not unpickle on
            # the worker (a module that is not importable there).
            message = f"{type(exc).__name__}: {exc}"
            return TrialFinished(
                trial_id,
                {
                    "ok": False,
                    "metrics": {},
                    "error": message,
                    "reports": [],
                    "started_at": None,
                    "ended_at": None,
                    "node": None,
                },
            )

    def cancel(self, trial_id: int) -> None:
        ref = self._by_trial.pop(trial_id, None)
        if ref is None:
            return
        del self._refs[ref]
        ray.cancel(ref, force=True)

    def default_concurrency(self, hints: Resources) -> int:
        cpus = float(ray.cluster_resources().get("CPU", 1.0))
        per_trial = hints.num_cpus if hints.num_cpus is not None else 1.0
        if per_trial <= 0:
            return max(1, int(cpus))
        return max(1, int(cpus // per_trial))

    def shutdown(self) -> None:
        for trial_id in list(self._by_trial):
            self.cancel(trial_id)
        if self._inbox is not None:
            ray.kill(self._inbox)
            self._inbox = None
        if self._started_ray:
            ray.shutdown()
