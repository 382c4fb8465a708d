"""The hosts of one optimizer and the calls in flight on them (imports Ray, like
``_ray_exec``, the session-level side; these two are the gradient half's only
modules that do).

Units run in *hosts*: Ray actors created once per run (see ``_placement`` for how
many, with which resources, and which units each runs). A unit therefore runs
in the same process every step, so its imports and JIT-compiled code are paid
for once, whatever its resource hints. Hosts hold caches only: the driver keeps
params, optimizer state and simulator states, so a host that dies is simply
started again and its calls re-run. A host lost with its *node* is not started
again (the plan counted on that node's resources, and a new host would wait for
them forever): its units move to the live hosts of its group, see
:meth:`Executor._lost`.

A call to a unit is an actor call named after the unit (the name the Ray
dashboard shows). A simulator call has one return per exposed observable plus a
last, small :class:`SimulatorDone` (new state and timing). The driver waits on
and fetches only that last one; the observable refs go to objective calls
nested in a dict, so Ray does not resolve them on the way, and the objective
fetches them inside its host. Large trajectories never travel through the driver.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import ray
from ray import cloudpickle
from ray.exceptions import RayActorError, RayError, RayTaskError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from raysweep.errors import SpecError
from raysweep.gradient._host import ObjectiveDone, SimulatorDone, UnitHost
from raysweep.gradient._placement import HostPlan, plan_hosts
from raysweep.gradient.units import Objective, Simulator
from raysweep.resources import task_env

__all__ = [
    "Executor",
    "ObjectiveDone",
    "SimulatorDone",
    "TaskFailed",
    "host_options",
    "host_remote",
]

#: Task options raysweep acts on itself: it re-runs failed units, Ray must not.
_RETRY_OPTIONS = frozenset({"max_retries", "retry_exceptions"})
#: How long closing a run waits for its hosts to end and their resources to show free.
_CLOSE_WAIT_S = 5.0
_SETTLE_S = 1.0


@dataclass(frozen=True, slots=True)
class TaskFailed:
    """A call that raised or was lost.

    Attributes:
        message: one line: the exception type and message.
        retryable: user code raised, or the host died (it has been started again);
            False for anything else Ray reports (the step fails).
        counts: whether this failure uses up one of the unit's retries. A call
            that only waited behind the call that took its host down does not.
    """

    message: str
    retryable: bool
    counts: bool = True


def host_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Actor options for a host running a unit with these task options.

    A task without ``num_cpus`` takes one CPU; a host does too (an actor would hold none).
    """
    out = {k: v for k, v in options.items() if k not in _RETRY_OPTIONS}
    out.setdefault("num_cpus", 1)
    return out


host_remote = ray.remote(UnitHost)


def _freeze(unit: Simulator | Objective) -> bytes:
    # Once per run: a unit defined in a script (``__main__``) is pickled by value.
    try:
        return bytes(cloudpickle.dumps(unit))
    except Exception as exc:  # pickling errors come in many types
        raise SpecError(
            f"{unit!r} cannot be pickled to ship it to Ray workers ({exc}); keep "
            f"units to configuration (no open files, locks or live clients)"
        ) from exc


def _label(units: Sequence[str]) -> str:
    shown = ", ".join(units[:3])
    return shown if len(units) <= 3 else f"{shown} +{len(units) - 3}"


def _free_resources() -> dict[str, dict[str, float]]:
    """Node id -> resources free now (what the hosts of a run may take)."""
    try:  # a DeveloperAPI: the per-node view the public API lacks
        from ray._private.state import available_resources_per_node

        free = available_resources_per_node()
    except Exception:  # moved or failing: fall back to the nodes' totals
        free = None
    if not free:
        free = {n["NodeID"]: n["Resources"] for n in ray.nodes() if n.get("Alive")}
    return {str(k): {r: float(v) for r, v in res.items()} for k, res in free.items()}


@dataclass(frozen=True, slots=True)
class _Lost:
    """A call whose host died under it."""

    message: str


@ray.remote(num_cpus=0, max_retries=0)
def _probe() -> bool:
    return True


def _node_alive(node_id: str) -> bool:
    """Whether a node still runs: a probe pinned to it returns, or fails once Ray
    declares the node dead (within its health-check time-out; no guess here)."""
    strategy = NodeAffinitySchedulingStrategy(node_id, soft=False)
    try:
        return bool(ray.get(_probe.options(scheduling_strategy=strategy).remote()))
    except RayError:
        return False


@dataclass(slots=True)
class _Host:
    plan: HostPlan
    label: str
    group: str = ""  # hosts made with the same options share it
    gpu_memory: str | None = None  # the units' gpu_memory hint, part of the group
    handle: Any = None
    node: Any = None  # a ref to the Ray node id the host runs on, once it is up
    incarnation: int = 0
    culprits: dict[int, int] = field(default_factory=dict)  # dead incarnation -> running call
    methods: dict[str, Any] = field(default_factory=dict)  # unit -> bound, named method


@dataclass(frozen=True, slots=True)
class _Call:
    seq: int
    unit: str
    host: _Host
    incarnation: int
    siblings: tuple[Any, ...]  # a simulator call's observable refs


class Executor:
    """The hosts of one run and every call in flight on them.

    Args:
        units: every simulator and objective of the run.
        options: unit name -> Ray task options (hints over the defaults).
        gpu_memory: unit name -> its ``gpu_memory`` hint: how JAX and PyTorch in
            its host take memory of a GPU it shares (see ``resources.task_env``).
    """

    def __init__(
        self,
        units: Sequence[Simulator | Objective],
        options: Mapping[str, Mapping[str, Any]],
        gpu_memory: Mapping[str, str | None] | None = None,
    ) -> None:
        self._payloads = {unit.name: _freeze(unit) for unit in units}
        self._exposes = {u.name: tuple(type(u).exposes) for u in units if isinstance(u, Simulator)}
        self._namespace = f"raysweep-{uuid.uuid4().hex[:12]}"  # host names differ across runs
        memory = dict(gpu_memory or {})
        groups: dict[str, tuple[dict[str, Any], list[str]]] = {}
        policy: dict[str, str | None] = {}
        for unit in units:
            unit_options = host_options(options[unit.name])
            key = _group_key(unit_options, memory.get(unit.name))
            groups.setdefault(key, (unit_options, []))[1].append(unit.name)
            policy[key] = memory.get(unit.name)
        self._free = _free_resources()
        self.hosts = []
        for plan in plan_hosts(list(groups.values()), self._free):
            key = _group_key(plan.options, memory.get(plan.units[0]))
            self.hosts.append(_Host(plan, _label(plan.units), key, policy[key]))
        self._home = {name: host for host in self.hosts for name in host.plan.units}
        self._calls: dict[Any, _Call] = {}
        self._seq = 0
        for host in self.hosts:
            self._start(host)

    def _start(self, host: _Host) -> None:
        options = dict(host.plan.options)
        name = host.label if not host.incarnation else f"{host.label} (restart {host.incarnation})"
        host.handle = host_remote.options(**options, name=name, namespace=self._namespace).remote(
            host.label,
            {u: self._payloads[u] for u in host.plan.units},
            task_env(options, host.gpu_memory),
        )
        host.node = host.handle.node.remote()
        host.methods = {}
        for unit in host.plan.units:
            self._bind(host, unit)

    def _bind(self, host: _Host, unit: str) -> None:
        if unit in self._exposes:
            returns = len(self._exposes[unit]) + 1
            host.methods[unit] = host.handle.simulate.options(name=unit, num_returns=returns)
        else:
            host.methods[unit] = host.handle.compute.options(name=unit)

    def _track(self, ref: Any, unit: str, siblings: Sequence[Any] = ()) -> None:
        host = self._home[unit]
        self._seq += 1
        self._calls[ref] = _Call(self._seq, unit, host, host.incarnation, tuple(siblings))

    def simulate(self, unit: str, params: Any, state: Any) -> tuple[dict[str, Any], Any]:
        """Start a simulator call; ``({observable: ref}, done_ref)``.

        ``params`` is the value or a ref from :func:`share`; Ray resolves a top-level ref.
        """
        refs = self._home[unit].methods[unit].remote(unit, params, state)
        self._track(refs[-1], unit, refs[:-1])
        return dict(zip(self._exposes[unit], refs[:-1], strict=True)), refs[-1]

    def compute(self, unit: str, params: Any, refs: Mapping[str, Any], state: Any = None) -> Any:
        """Start an objective call; the observable refs travel nested in a dict, unresolved.

        ``state`` is a stateful objective's own state (ignored by the others).
        """
        ref = self._home[unit].methods[unit].remote(unit, params, dict(refs), state)
        self._track(ref, unit)
        return ref

    def collect(self, refs: Iterable[Any]) -> list[tuple[Any, Any]]:
        """``(ref, value or TaskFailed)`` for finished calls, in the order they were made.

        In that order, a host's lost calls are told apart: the first was running
        when it died, the others only waited. The host is started again at once.
        """
        ordered = sorted(refs, key=lambda ref: self._calls[ref].seq)
        try:
            values = list(ray.get(ordered))
        except RayError:
            values = [self._fetch(ref) for ref in ordered]
        out = []
        for ref, value in zip(ordered, values, strict=True):
            call = self._calls.pop(ref)
            if isinstance(value, _Lost):
                value = self._lost(call, value.message)
            if isinstance(value, TaskFailed):
                _consume(call.siblings)  # failed too; Ray would print them as unhandled
            out.append((ref, value))
        return out

    def _fetch(self, ref: Any) -> Any:
        try:
            return ray.get(ref)
        except RayTaskError as exc:
            cause = exc.cause if isinstance(exc.cause, BaseException) else exc
            return TaskFailed(f"{type(cause).__name__}: {cause}", retryable=True)
        except RayActorError as exc:
            unit = self._calls[ref].unit
            if getattr(exc, "actor_init_failed", False):  # will fail the same way again
                return TaskFailed(
                    f"{type(exc).__name__}: the worker process for {unit!r} could not "
                    f"start: {_lines(exc)[-1]}",
                    retryable=False,
                )
            pid = re.search(r"\bpid: (\d+)", str(exc))
            where = f" (pid {pid.group(1)})" if pid else ""
            return _Lost(f"{type(exc).__name__}: the worker process running {unit!r}{where} died")
        except RayError as exc:
            lines = _lines(exc)
            text = lines[0] if len(lines) < 2 else f"{lines[0]} … {lines[-1]}"
            return TaskFailed(f"{type(exc).__name__}: {text}", retryable=False)

    def _lost(self, call: _Call, message: str) -> TaskFailed:
        host = call.host
        if host.incarnation == call.incarnation:  # the first news of this death
            # Calls run in the order they were made: the earliest still open was running.
            host.culprits[call.incarnation] = min(
                [call.seq]
                + [
                    c.seq
                    for c in self._calls.values()
                    if c.host is host and c.incarnation == call.incarnation
                ]
            )
            _kill(host.handle)
            host.incarnation += 1
            node = self._lost_node(host)
            others = [
                h
                for h in self.hosts
                if h is not host and h.group == host.group and h.plan.units and h.handle
            ]
            if node is not None:
                others = [h for h in others if self._node_of(h) != node]
            if node is not None and others:
                self._move_units(host, others)
            else:
                self._start(host)
        counts = call.seq == host.culprits[call.incarnation]
        again = "started again" if host.plan.units else "moved to the surviving nodes"
        return TaskFailed(f"{message}; {again}", retryable=True, counts=counts)

    def _node_of(self, host: _Host) -> str | None:
        """The node a host runs on, if it said so already."""
        ready, _ = ray.wait([host.node], timeout=0) if host.node is not None else ([], [])
        if not ready:
            return None
        try:
            return str(ray.get(ready[0]))
        except RayError:
            return None

    def _lost_node(self, host: _Host) -> str | None:
        """The node of a dead host, if that node is gone too; ``None`` if it lives or
        the host died before it said where it ran."""
        node = self._node_of(host)
        return None if node is None or _node_alive(node) else node

    def _move_units(self, host: _Host, others: Sequence[_Host]) -> None:
        """Deal a host's units over ``others`` (live hosts of its group), for good."""
        for i, unit in enumerate(host.plan.units):
            target = others[i % len(others)]
            target.handle.adopt.remote({unit: self._payloads[unit]})
            target.plan = HostPlan(target.plan.options, (*target.plan.units, unit))
            self._bind(target, unit)
            self._home[unit] = target
        host.plan = HostPlan(host.plan.options, ())
        host.handle = None
        host.methods = {}

    def close(self, settle: bool) -> None:
        """End every host; let no failed call print "Unhandled error" later.

        Args:
            settle: also wait (briefly) until Ray shows the hosts' resources free
                again, so a run started next sees them (not needed before shutdown).
        """
        hosts = [host for host in self.hosts if host.handle is not None]
        for host in hosts:
            _kill(host.handle)
        calls = list(self._calls.items())
        self._calls.clear()
        try:
            refs = [ref for ref, _ in calls]
            if refs:
                ray.wait(refs, num_returns=len(refs), timeout=_CLOSE_WAIT_S)
            for ref, call in calls:
                try:
                    ray.get(ref, timeout=0)
                except Exception:  # failed, or killed with its host: its siblings are errors
                    _consume(call.siblings)
            pings = [host.handle.ping.remote() for host in hosts]
            ray.wait(pings, num_returns=len(pings), timeout=_CLOSE_WAIT_S)  # fail once dead
            if settle:
                self._settle()
        except Exception:  # Ray itself failing: the hosts end with it; the run's error matters
            return

    def _settle(self) -> None:
        # Ray's view of free resources lags the hosts' end by ~0.1 s.
        wanted = {k: sum(n.get(k, 0.0) for n in self._free.values()) for k in ("CPU", "GPU")}
        deadline = time.monotonic() + _SETTLE_S
        while time.monotonic() < deadline:
            free = _free_resources().values()
            if all(sum(n.get(k, 0.0) for n in free) >= v - 1e-6 for k, v in wanted.items()):
                return
            time.sleep(0.01)


def _group_key(options: Mapping[str, Any], gpu_memory: str | None) -> str:
    """Hosts made with equal options (and GPU memory policy) are one group: they can
    run each other's units."""
    return repr((sorted((k, repr(v)) for k, v in options.items()), gpu_memory))


def _lines(exc: BaseException) -> list[str]:
    """The non-empty lines of an error's message (Ray's span many, with tracebacks)."""
    return [line.strip() for line in str(exc).splitlines() if line.strip()] or [""]


def _kill(handle: Any) -> None:
    try:
        ray.kill(handle, no_restart=True)
    except Exception:  # already gone
        return


def _consume(refs: Sequence[Any]) -> None:
    """Read refs that hold errors, so Ray counts them as handled."""
    for ref in refs:
        try:
            ray.get(ref, timeout=0)
        except Exception:  # the error is the point; it was reported through its call
            continue
