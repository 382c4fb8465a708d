"""Trials as Ray tasks: the only module of the sweep runner that imports Ray.

Each trial is one plain Ray task (measured here: streaming-generator tasks cost
25-45 % of the throughput of plain tasks on trivial trials, so intermediate
reports do not ride on the task's return channel). What a trial says while it
runs travels through a small per-experiment *inbox* actor instead: that it
started (so a task that waited for resources is told apart from one that runs,
and ``timeout_s`` counts from the start), and each :func:`raysweep.report`. The
start is told only once a trial has run for :data:`NOTICE_AFTER_S`, by a thread
of the worker, with the time it began: a trial that ends sooner needs no notice
(its result carries its start), and trivial trials keep the throughput of plain
tasks (``bench/overhead.py``). The driver keeps one long-poll
call to the inbox among the references it waits on, so both arrive
event-driven, with no polling.

When a scheduler judges reports the channel runs both ways: a trial's
``report()`` calls the inbox's :meth:`_Inbox.ask`, which holds the call until the
driver's decision on that report arrives (:meth:`RayBackend.answer`, sent as
soon as the scheduler decided), so a pruned trial stops at the report that
pruned it, its task returns normally and its worker process runs the next trial
(a force-cancel would kill the process). A decision that does not come within
:data:`ANSWER_WAIT_S` lets the trial go on; a "stop" or "pause" is kept by the
inbox, so every later report of that attempt raises.

Ray's own task retries are off (``max_retries=0``): the runner retries lost
trials itself, so every attempt is counted and stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from types import ModuleType
from typing import Any

import ray
import ray.exceptions as rex
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from raysweep._ray import connect
from raysweep.errors import SpecError
from raysweep.resources import Resources, task_env
from raysweep.sweep.execution._base import (
    NO_TRIAL_IO,
    Backend,
    Event,
    TrialFinished,
    TrialIO,
    TrialLost,
    TrialReported,
    TrialStarted,
)
from raysweep.sweep.execution._worker import MetricNames, execute_trial

__all__ = ["NOTICE_AFTER_S", "RayBackend", "register_by_value"]

#: A trial still running this long after its start tells the driver it started.
NOTICE_AFTER_S = 0.1
#: How long a trial's ``report()`` waits for the driver's decision before going on.
ANSWER_WAIT_S = 30.0

#: Errors that mean the worker or node running a trial died, not the trial itself.
_LOST = (
    rex.WorkerCrashedError,
    rex.NodeDiedError,
    rex.ObjectLostError,
    rex.OwnerDiedError,
    rex.OutOfMemoryError,
    rex.LocalRayletDiedError,
)


def register_by_value(module: ModuleType) -> None:
    """Ship ``module``'s functions to workers by value (no file needed there).

    Used for an objective loaded from a file next to a sweep YAML: workers
    would otherwise try to import the module by name and fail.
    """
    ray.cloudpickle.register_pickle_by_value(module)


#: A decision and the bound below which the trial's next reports need not wait.
Answer = tuple[str, "tuple[str, float] | None"]


@ray.remote(num_cpus=0)
class _Inbox:
    """Collects what running trials say (starts, live reports); the driver
    long-polls :meth:`drain`. Items are ``("started", trial id, attempt token,
    time, node)`` and ``("report", trial id, report, attempt token, waited)``, in
    arrival order. Reports that wait for a decision are held in :meth:`ask`."""

    def __init__(self) -> None:
        self._items: list[tuple[Any, ...]] = []
        self._ready = asyncio.Event()
        self._waiting: dict[tuple[int, int], asyncio.Future[Answer]] = {}
        self._verdicts: dict[tuple[int, int], str] = {}  # "stop"/"pause", kept

    async def ask(self, trial_id: int, token: int, report: dict[str, Any]) -> Answer:
        """Queue a report and return the driver's decision on it with the bound below
        which later reports need not wait (``("continue", None)`` after
        :data:`ANSWER_WAIT_S` without one)."""
        key = (trial_id, token)
        if key in self._verdicts:
            return self._verdicts[key], None
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._waiting[key] = future
        self._items.append(("report", trial_id, report, token, True))
        self._ready.set()
        try:
            return await asyncio.wait_for(future, ANSWER_WAIT_S)
        except TimeoutError:
            return "continue", None
        finally:
            if self._waiting.get(key) is future:
                del self._waiting[key]

    async def answer(self, answers: list[tuple[int, int, str, tuple[str, float] | None]]) -> None:
        for trial_id, token, decision, until in answers:
            key = (trial_id, token)
            if decision in ("stop", "pause"):
                self._verdicts[key] = decision
            future = self._waiting.pop(key, None)
            if future is not None and not future.done():
                future.set_result((decision, until))

    async def forget(self, keys: list[tuple[int, int]]) -> None:
        """Drop the kept verdicts of attempts that ended."""
        for key in keys:
            self._verdicts.pop(tuple(key), None)  # type: ignore[arg-type]

    async def started(self, trial_id: int, token: int, when: float, node: str) -> None:
        self._items.append(("started", trial_id, token, when, node))
        self._ready.set()

    async def push(self, trial_id: int, report: dict[str, Any], token: int | None = None) -> None:
        self._items.append(("report", trial_id, report, token, False))
        self._ready.set()

    async def drain(self) -> list[tuple[Any, ...]]:
        await self._ready.wait()
        items, self._items = self._items, []
        self._ready.clear()
        return items


_inbox_handles: dict[str, Any] = {}


def _inbox(inbox_name: str) -> Any:
    """The experiment's inbox, looked up once per worker process."""
    handle = _inbox_handles.get(inbox_name)
    if handle is None:
        handle = _inbox_handles[inbox_name] = ray.get_actor(inbox_name)
    return handle


def _send_report(inbox_name: str, trial_id: int, report: Mapping[str, Any]) -> None:
    """Forward one report from a worker to the inbox actor, fire and forget."""
    _inbox(inbox_name).push.remote(trial_id, dict(report))


def below(report: Mapping[str, Any], until: tuple[str, float] | None) -> bool:
    """Whether ``report`` lies below the bound ``until = (time_attr, bound)``, so the
    scheduler will answer it "continue" and the trial need not wait: its
    ``time_attr`` is a number below ``bound`` (less a relative 1e-9, the
    schedulers' tolerance for reaching a level), or the bound is infinite."""
    if until is None:
        return False
    attr, bound = until
    value = report.get(attr)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return bound == math.inf or value < bound - 1e-9 * max(1.0, abs(bound))


class _Asker:
    """A trial's report sink when a scheduler judges reports.

    A report waits for the driver's decision (:meth:`_Inbox.ask`) unless the last
    answer said its ``time_attr`` is below the scheduler's next possible decision
    (an ASHA rung, a PBT perturbation point): such a report is sent fire and
    forget, so a trial waits only where it may be stopped. With the inbox gone
    (the driver ended) the trial goes on; the driver's end ends it anyway.
    """

    def __init__(self, inbox_name: str, token: int, until: tuple[str, float] | None) -> None:
        self.inbox_name = inbox_name
        self.token = token
        self.until = until

    def __call__(self, trial_id: int, report: Mapping[str, Any]) -> str | None:
        if below(report, self.until):
            _inbox(self.inbox_name).push.remote(trial_id, dict(report), self.token)
            return None
        try:
            decision, until = ray.get(
                _inbox(self.inbox_name).ask.remote(trial_id, self.token, dict(report)),
                timeout=ANSWER_WAIT_S + 5.0,
            )
        except Exception:
            return "continue"
        self.until = tuple(until) if until is not None else None
        return str(decision)


def _send_started(inbox_name: str, trial_id: int, token: int, when: float, node: str) -> None:
    """Tell the driver this attempt runs since ``when``, fire and forget.

    Never fails the trial: with the inbox gone, the driver already counts every
    trial as started (see :meth:`RayBackend._drain`).
    """
    with contextlib.suppress(Exception):  # a lost notice must not cost the trial
        _inbox(inbox_name).started.remote(trial_id, token, when, node)


class _Notices:
    """Sends a trial's start notice once it has run for :data:`NOTICE_AFTER_S`, from one
    daemon thread per worker process, unless the trial ended first.

    A worker runs one task at a time, so at most one notice is pending. The thread
    wakes at the earliest time a notice may be due, not on every trial, so a
    stream of trivial trials costs a lock and an assignment each.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._pending: tuple[float, Callable[[], None]] | None = None
        self._wakes_at: float | None = None  # when the waiting thread looks again; None: never
        self._thread: threading.Thread | None = None

    def arm(self, send: Callable[[], None]) -> None:
        due = time.monotonic() + NOTICE_AFTER_S
        with self._cond:
            self._pending = (due, send)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="raysweep-start-notices", daemon=True
                )
                self._thread.start()
            elif self._wakes_at is None or self._wakes_at > due:
                self._cond.notify()

    def disarm(self) -> None:
        with self._cond:
            self._pending = None  # the thread finds nothing when it wakes

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._pending is None:
                        self._wakes_at = None
                        self._cond.wait()
                        continue
                    due, send = self._pending
                    left = due - time.monotonic()
                    if left <= 0:
                        self._pending = None
                        break
                    self._wakes_at = due
                    self._cond.wait(left)
            send()


_notices = _Notices()


def _announce(send: Callable[[], None]) -> None:
    """Arm this worker's start notice (a module function: the task body, pickled by
    value, refers to it by name instead of carrying the thread along)."""
    _notices.arm(send)


def _ended() -> None:
    _notices.disarm()


def _node_ip() -> str:
    return str(ray.util.get_node_ip_address())


def _make_entry(
    objective: Callable[[dict[str, Any]], Any],
    metric: MetricNames,
    inbox_name: str,
    env: Mapping[str, str],
    io: TrialIO,
) -> Callable[..., dict[str, Any]]:
    """The task body for this experiment; the objective travels inside it, so Ray
    exports it once per experiment rather than pickling it with every trial."""

    def run_trial(
        trial_id: int,
        config: dict[str, Any],
        token: int,
        until: tuple[str, float] | None = None,
    ) -> dict[str, Any]:
        node = _node_ip()
        began = time.time()
        _announce(lambda: _send_started(inbox_name, trial_id, token, began, node))
        if io.answered:
            sink: Callable[[int, Mapping[str, Any]], str | None] = _Asker(inbox_name, token, until)
        else:

            def sink(tid: int, rep: Mapping[str, Any]) -> str | None:
                _send_report(inbox_name, tid, rep)
                return None

        try:
            return execute_trial(
                objective,
                trial_id,
                config,
                metric,
                env=env,
                sink=sink,
                node=node,
                files=io.files(trial_id),
                log_output=io.log_output,
            )
        finally:
            _ended()

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


def _per_trial(options: Mapping[str, Any]) -> dict[str, float]:
    """The Ray resources one trial's task holds (only those it needs some of)."""
    wanted = {
        "CPU": options.get("num_cpus", 1) or 0,
        "GPU": options.get("num_gpus", 0) or 0,
        "memory": options.get("memory", 0) or 0,
        **dict(options.get("resources") or {}),
    }
    return {key: float(amount) for key, amount in wanted.items() if amount and amount > 0}


def _node_totals() -> list[dict[str, float]]:
    """The resources of each live node of the cluster."""
    return [
        {key: float(value) for key, value in (node.get("Resources") or {}).items()}
        for node in ray.nodes()
        if node.get("Alive")
    ]


def _fits_on(node: Mapping[str, float], need: Mapping[str, float]) -> int:
    """How many trials needing ``need`` one node runs at once."""
    # The small slack keeps float shares exact: 0.3 / 0.1 is 2.9999999999999996.
    return min(math.floor(node.get(key, 0.0) / amount + 1e-9) for key, amount in need.items())


def _check_fits(options: Mapping[str, Any]) -> None:
    """Refuse at start a trial no node of the cluster could ever run (Ray would
    otherwise leave it pending forever)."""
    nodes = _node_totals()
    need = _per_trial(options)
    if not need or any(_fits_on(node, need) for node in nodes):
        return
    total = ray.cluster_resources()
    for key, amount in need.items():
        largest = max((node.get(key, 0.0) for node in nodes), default=0.0)
        if largest < amount:
            raise SpecError(
                f"resources: each trial needs {amount:g} {key} but no node of the Ray cluster "
                f"has that much (largest {largest:g}, {float(total.get(key, 0.0)):g} in all); "
                f"lower the request or add nodes"
            )
    wanted = ", ".join(f"{amount:g} {key}" for key, amount in need.items())
    raise SpecError(
        f"resources: each trial needs {wanted} on one node, but no node of the Ray cluster "
        f"has all of them; lower the request or add nodes"
    )


class RayBackend(Backend):
    """Runs each trial as a Ray task with the experiment's resource hints.

    Args:
        address: a Ray cluster to join (``None``: ``RAY_ADDRESS``, a cluster
            started on this machine, or a new local Ray); see
            :func:`raysweep._ray.connect`.
        runtime_env: passed to ``ray.init`` when this backend starts Ray, or to
            every task when Ray was already running.
        connect_timeout_s: how long ``address`` may take to answer (default:
            ``RAYSWEEP_CONNECT_TIMEOUT_S``, else 30 s).

    Ray is reached in :meth:`start`, not here, so constructing a backend is
    cheap and what happens while connecting reaches the display.
    """

    def __init__(
        self,
        address: str | None = None,
        runtime_env: Mapping[str, Any] | None = None,
        *,
        connect_timeout_s: float | None = None,
    ) -> None:
        self._address = address
        self._runtime_env = dict(runtime_env) if runtime_env else None
        self._connect_timeout_s = connect_timeout_s
        self._connected = False
        self._started_ray = False
        self._task_runtime_env: dict[str, Any] | None = None
        self._refs: dict[Any, int] = {}
        self._by_trial: dict[int, Any] = {}
        self._tokens: dict[int, int] = {}  # trial id -> token of the attempt in flight
        self._submits = 0
        self._remote: Any = None
        self._inbox: Any = None
        self._inbox_name = f"raysweep-inbox-{uuid.uuid4().hex[:12]}"
        self._poll: Any = None
        self._inbox_lost = False
        self._assumed: list[Event] = []  # starts taken for granted once the inbox is lost
        self._ended: list[tuple[int, int]] = []  # attempts whose kept verdicts can go
        self._expected: dict[int, tuple[str, float]] = {}  # bounds for the next submit
        # trial id -> for each report not answered yet: whether the trial waits for it
        self._waited: dict[int, deque[bool]] = {}
        self._answered = False

    def start(self, notify: Callable[[str], None]) -> None:
        if self._connected:
            return
        self._started_ray = connect(
            self._address, self._runtime_env, timeout_s=self._connect_timeout_s, notify=notify
        )
        self._connected = True
        if not self._started_ray and self._runtime_env:
            _check_task_runtime_env(self._runtime_env)
            self._task_runtime_env = self._runtime_env

    def prepare(
        self,
        objective: Callable[[dict[str, Any]], Any],
        *,
        metric: MetricNames,
        hints: Resources,
        io: TrialIO = NO_TRIAL_IO,
    ) -> None:
        self.start(lambda text: None)
        options = _task_options(hints)
        if self._task_runtime_env is not None:
            options["runtime_env"] = self._task_runtime_env
        _check_fits(options)
        self._answered = io.answered
        entry = _make_entry(
            objective, metric, self._inbox_name, task_env(options, hints.gpu_memory), io
        )
        try:
            ray.cloudpickle.dumps(entry)
        except Exception as exc:
            raise SpecError(
                f"objective {getattr(objective, '__qualname__', objective)!r} cannot be sent to "
                f"Ray workers ({type(exc).__name__}: {exc}); define it at module level and keep "
                f"unpicklable objects (open files, locks, clients) out of its closure"
            ) from None
        self._remote = ray.remote(entry).options(**options)
        self._inbox = _Inbox.options(  # type: ignore[attr-defined]
            name=self._inbox_name, scheduling_strategy=_on_this_node()
        ).remote()
        self._poll = self._inbox.drain.remote()

    def submit(self, trial_id: int, config: Mapping[str, Any]) -> None:
        if self._remote is None:
            raise RuntimeError("RayBackend.prepare() was not called")
        self._submits += 1
        until = self._expected.pop(trial_id, None)
        ref = self._remote.remote(trial_id, dict(config), self._submits, until)
        self._refs[ref] = trial_id
        self._by_trial[trial_id] = ref
        self._tokens[trial_id] = self._submits
        if self._inbox_lost:
            self._assumed.append(TrialStarted(trial_id, time.time()))

    def expect(self, trial_id: int, until: tuple[str, float]) -> None:
        self._expected[trial_id] = until

    def answer(self, trial_id: int, decision: str, until: tuple[str, float] | None = None) -> None:
        waits = self._waited.get(trial_id)
        waited = waits.popleft() if waits else True
        token = self._tokens.get(trial_id)
        if token is None or self._inbox is None or (not waited and decision == "continue"):
            return
        # At once, not with the next wait(): the trial waits for it, and the
        # commit between the two is milliseconds of its training time.
        self._inbox.answer.remote([(trial_id, token, decision, until)])

    def wait(self, timeout: float | None) -> Sequence[Event]:
        if self._inbox is not None and len(self._ended) >= 64:
            self._inbox.forget.remote(self._ended)
            self._ended = []
        events, self._assumed = self._assumed, []
        waiting = [*self._refs, *([self._poll] if self._poll is not None else [])]
        if not waiting:
            return events
        ready, rest = ray.wait(waiting, num_returns=1, timeout=0 if events else timeout)
        if ready and rest:
            more, _ = ray.wait(rest, num_returns=len(rest), timeout=0)
            ready += more
        for ref in ready:
            # ==, not `is`: under Ray Client, wait() returns new reference objects.
            if self._poll is not None and ref == self._poll:
                # What the trials said (starts, reports) goes before their ends.
                events[:0] = self._drain(ref)
                continue
            trial_id = self._refs.pop(ref)
            del self._by_trial[trial_id]
            token = self._tokens.pop(trial_id)
            self._waited.pop(trial_id, None)
            if self._answered:
                self._ended.append((trial_id, token))
            events.append(self._outcome(trial_id, ref))
        return events

    def _drain(self, ref: Any) -> list[Event]:
        try:
            items = ray.get(ref)
        except rex.RayError:
            # The inbox died: live reports stop (each trial's full series still
            # arrives with its result, so nothing stored is lost), and starts are
            # no longer heard of: every trial in flight is taken as started now, so
            # time-outs still end stuck ones (counting from now, or from dispatch
            # for trials submitted from here on).
            self._poll = None
            self._inbox_lost = True
            now = time.time()
            return [TrialStarted(trial_id, now) for trial_id in self._by_trial]
        self._poll = self._inbox.drain.remote()
        events: list[Event] = []
        for item in items:
            if item[0] == "report":
                token, waited = item[3], item[4]
                if token is None or self._tokens.get(item[1]) == token:
                    if self._answered:
                        self._waited.setdefault(item[1], deque()).append(waited)
                    events.append(TrialReported(item[1], item[2]))
            elif self._tokens.get(item[1]) == item[2]:  # not an earlier, lost attempt
                events.append(TrialStarted(item[1], item[3], item[4]))
        return events

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
        del self._tokens[trial_id]
        self._waited.pop(trial_id, None)
        ray.cancel(ref, force=True)

    def default_concurrency(self, hints: Resources) -> int:
        """Trials with ``hints`` that the cluster's live nodes run at once now, each
        node counted on its own (a trial never spans two) and every resource the
        trial asks for counted (a 0.5-GPU trial is bounded by GPUs, not CPUs)."""
        self.start(lambda text: None)
        need = _per_trial(_task_options(hints))
        if not need:
            return max(1, int(float(ray.cluster_resources().get("CPU", 1.0))))
        return max(1, sum(_fits_on(node, need) for node in _node_totals()))

    def shutdown(self) -> None:
        for trial_id in list(self._by_trial):
            self.cancel(trial_id)
        if self._inbox is not None:
            ray.kill(self._inbox)
            self._inbox = None
        if self._started_ray:
            ray.shutdown()
            self._started_ray = False


def _on_this_node() -> Any:
    """Where the inbox actor goes: the driver's own node, so it lives as long as the
    driver does. Placed by Ray alone, a 0-CPU actor lands on any node (a worker node
    in 12 of 20 tries on a two-node cluster), and losing that node would silence
    every live report and scheduler decision for the rest of the sweep. Not
    ``soft``: soft affinity still put it elsewhere in 6 of 20 tries; an actor that
    needs no resources always fits on a live node."""
    try:
        node_id = ray.get_runtime_context().get_node_id()
    except Exception:  # no node id to be had (a Ray Client of some version): Ray places it
        return "DEFAULT"
    return NodeAffinitySchedulingStrategy(node_id, soft=False)


def _task_options(hints: Resources) -> dict[str, Any]:
    """The Ray options of every trial's task."""
    options = hints.to_ray_options({"num_cpus": 1})
    options["max_retries"] = 0  # the runner retries lost trials itself, counting attempts
    return options
