"""``RayOptimizer``: fit parameters with gradients from parallel simulations on Ray.

Each step runs the simulators on Ray, feeds their observables (by reference) to
the objectives, aggregates the objectives' gradients and takes
one optax step. The driver holds everything the loop needs (params, optimizer
state, simulator states), optax-style, so storing those three values with every
step is a complete checkpoint: ``resume=True`` continues after a crash from the
last stored step.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from raysweep.errors import SpecError, StepFailedError
from raysweep.gradient._lazy import require_jax, require_optax
from raysweep.gradient.checkpoint import (
    RunStatus,
    RunStore,
    build_spec,
    decode_states,
    decode_tree,
)
from raysweep.gradient.output import Callback, LazyObservables, OptimizerOutput
from raysweep.gradient.trees import (
    NonFiniteGradientError,
    describe_shapes,
    global_norm,
    grads_fit_params,
    has_nonfinite,
    to_readable_json,
    tree_mean,
)
from raysweep.gradient.units import Objective, Simulator, validate_units

if TYPE_CHECKING:
    from raysweep.gradient._step import StepEngine

__all__ = ["RayOptimizer"]


def _json_safe(value: Any) -> Any:
    try:
        return to_readable_json(value)
    except Exception:  # aux is the user's; never lose a step over how it prints
        return repr(value)


class RayOptimizer:
    """Gradient descent whose gradients come from parallel simulations on Ray.

    Args:
        simulators: the simulators; names unique (see ``Simulator.create_n``).
        objectives: the objectives; their gradients are aggregated in this order.
        optimizer: any optax ``GradientTransformation``, e.g. ``optax.adam(1e-2)``.
        aggregate_grad_fn: combines the list of gradients, one per objective, into
            one; ``tree_mean`` by default, ``tree_weighted(ws)`` for fixed weights.
        remote_options_default: Ray task options for every unit; each unit's
            ``scheduler_hints`` are applied on top (per-unit hints win).
        name: the run's name; with ``storage`` it is stored at
            ``<storage>/<name>/experiment.db``.
        storage: the folder holding experiments; ``None`` stores nothing.
        resume: continue the stored run ``name`` after its last completed step
            (same simulators and objectives) instead of starting a new one;
            ``"auto"``: continue it if it is stored, else start it (a batch job
            that may be preempted and requeued).
        runtime_env: Ray runtime environment for every unit (e.g. env vars such as
            ``JAX_ENABLE_X64``); given to ``ray.init`` when this run starts Ray,
            else set on the units' worker processes.
        address: the Ray cluster to connect to (else ``RAY_ADDRESS``, else a local
            Ray), unless Ray is already initialized in this process.

    A step runs every simulator read by an objective that does not reuse
    observables (the default), dispatches each objective as soon as its
    simulators finished, and re-runs only the simulators of an objective that
    answers :class:`NotReady` (twice in a step fails it). Simulators read only
    by reusing objectives (DiffTRe) run when their observables are missing or an
    objective asks. Units receive params with NumPy leaves (``jax.device_get``).

    Units run in worker processes (Ray actors) that live for the whole run, so
    imports and JIT-compiled code are paid for once, not every step. Each
    process holds the resources of its units' hints; units with the same hints
    share as many processes as the free resources hold at once (one per unit
    when they all fit), and each unit stays in its process. The processes keep
    caches only: params, optimizer state and simulator states stay with the
    driver. Calls, and the processes, are named after their units in the Ray
    dashboard. A unit whose code raises, or whose process dies (it is started
    again), is re-run up to its ``max_retries`` before the step fails. When
    ``run`` returns or raises, the processes are gone.

    Every stored step's data holds ``losses``, ``loss``, ``grad_norm``, ``params``
    (the parameters the step evaluated, as JSON), ``timings`` (``step_s``,
    ``simulators_s``, ``objectives_s``), ``simulators_run``, ``not_ready_retries``
    and ``aux``. Its checkpoint holds the updated params, the optimizer state and
    the simulator states.

    Example:
        >>> opt = RayOptimizer(simulators=sims, objectives=[obj],  # doctest: +SKIP
        ...                    optimizer=optax.adam(1e-2), name="fit", storage="runs")
        >>> out = opt.run({"r0": 1.0}, n_steps=50)  # doctest: +SKIP
    """

    def __init__(
        self,
        simulators: Sequence[Simulator],
        objectives: Sequence[Objective],
        optimizer: Any,
        aggregate_grad_fn: Callable[[list[Any]], Any] = tree_mean,
        remote_options_default: Mapping[str, Any] | None = None,
        *,
        name: str | None = None,
        storage: str | os.PathLike[str] | None = None,
        resume: bool | str = False,
        runtime_env: Mapping[str, Any] | None = None,
        address: str | None = None,
    ) -> None:
        self.simulators = list(simulators)
        self.objectives = list(objectives)
        self.producer = validate_units(self.simulators, self.objectives)
        if not (
            callable(getattr(optimizer, "init", None))
            and callable(getattr(optimizer, "update", None))
        ):
            raise SpecError(
                f"optimizer must be an optax GradientTransformation (with init and "
                f"update), e.g. optax.adam(1e-2); got {optimizer!r}"
            )
        if not callable(aggregate_grad_fn):
            raise SpecError(
                f"aggregate_grad_fn must be callable, e.g. tree_mean; got {aggregate_grad_fn!r}"
            )
        if remote_options_default is not None and not isinstance(remote_options_default, Mapping):
            raise SpecError(
                f"remote_options_default must be a dict of Ray task options, "
                f"got {remote_options_default!r}"
            )
        if storage is not None and name is None:
            raise SpecError("storage needs a name: RayOptimizer(..., name='fit', storage='runs')")
        if not isinstance(resume, bool) and resume != "auto":
            raise SpecError(
                f"resume: expected True, False or 'auto' (continue the run if it is stored, "
                f"else start it), got {resume!r}"
            )
        if resume and storage is None:
            raise SpecError("resume=True needs storage and name to find the stored run")
        if runtime_env is not None and not isinstance(runtime_env, Mapping):
            raise SpecError(
                f"runtime_env must be a dict such as "
                f"{{'env_vars': {{'JAX_ENABLE_X64': 'True'}}}}, got {runtime_env!r}"
            )
        self.optimizer = optimizer
        self.aggregate_grad_fn = aggregate_grad_fn
        self.remote_options_default = dict(remote_options_default or {})
        self.name = name
        self.storage = storage
        self.resume: bool | str = resume
        self.runtime_env = None if runtime_env is None else dict(runtime_env)
        self.address = address
        self.options = {
            unit.name: unit.scheduler_hints.to_ray_options(self.remote_options_default)
            for unit in [*self.simulators, *self.objectives]
        }

    # -- the loop ---------------------------------------------------------------------
    def run(self, params: Any, n_steps: int, callback: Callback | None = None) -> OptimizerOutput:
        """Take ``n_steps`` steps in all (a resume counts the stored ones).

        Args:
            params: the initial parameters (a pytree); on resume, parameters of the
                same structure (their values are replaced by the stored ones).
            n_steps: total number of steps of the run.
            callback: ``callback(output, step) -> (modified output | None,
                keep_going)``, after every step, before it is stored; returning a
                modified output continues from its ``params``/``opt_state``;
                ``(None, False)`` stops the run.

        Returns:
            The output of the last step, with ``history`` of every step.

        Raises:
            StepFailedError: a step could not complete: a unit failed past its
                retries, an objective stayed not ready, or returned a gradient
                unlike the params (see the message).
            NonFiniteGradientError: a ``RuntimeError``: NaN/Inf in the gradient.
            ExperimentExistsError / ExperimentNotFoundError / ExperimentMismatchError:
                the store does not fit the request (see ``resume``).
            RayConnectError: the Ray cluster at ``address`` did not answer.
        """
        if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 1:
            raise SpecError(f"n_steps must be a whole number >= 1, got {n_steps!r}")
        optax = require_optax("RayOptimizer")
        jax = require_jax("RayOptimizer")
        from raysweep.gradient import _ray_exec as rx
        from raysweep.gradient._step import SimulatorSlot, StepEngine

        self._options_checked(rx)
        store = self._open_store(n_steps)
        try:
            params, opt_state, states, first, history = self._restore(store, params, n_steps)
        except BaseException:
            if store is not None:
                store.close()  # the stored run is as it was: no status change
            raise
        output = OptimizerOutput(
            step=first - 1,
            params=params,
            opt_state=opt_state,
            grads=None,
            losses=dict(history[-1]["losses"]) if history else {},
            loss=float(history[-1]["loss"]) if history else math.nan,
            history=tuple(history),
        )
        started = False
        executor = None
        slots = {
            sim.name: SimulatorSlot(
                simulator=sim, retries=self._retries(sim.name), state=states.get(sim.name)
            )
            for sim in self.simulators
        }
        try:
            if first < n_steps:
                started = rx.ensure_ray(self.address, self.runtime_env)
                units: list[Simulator | Objective] = [*self.simulators, *self.objectives]
                executor = rx.Executor(
                    units,
                    {unit: self._task_options(unit, started) for unit in self.options},
                    {unit.name: unit.scheduler_hints.gpu_memory for unit in units},
                )
                engine = StepEngine(
                    slots,
                    self.objectives,
                    self.producer,
                    {u: self._retries(u) for u in self.options},
                    executor,
                    on_event=store.event if store is not None else (lambda kind, data: None),
                )
            for step in range(first, n_steps):
                output, keep_going = self._step(engine, jax, optax, step, output, history, callback)
                if store is not None:
                    store.record(
                        step,
                        history[-1],
                        output.params,
                        output.opt_state,
                        {name: slot.state for name, slot in slots.items()},
                    )
                if not keep_going:
                    if store is not None:
                        store.event("stopped", {"step": step, "by": "callback"})
                        store.set_status(RunStatus.STOPPED)
                    return output
            if store is not None:
                store.event("completed", {"step": n_steps - 1})
                store.set_status(RunStatus.COMPLETED)
            return output
        except BaseException as exc:
            if store is not None:
                failed = isinstance(exc, Exception)
                store.event(
                    "failed" if failed else "interrupted", {"error": f"{type(exc).__name__}: {exc}"}
                )
                store.set_status(RunStatus.FAILED if failed else RunStatus.STOPPED)
            raise
        finally:
            try:
                if executor is not None:
                    executor.close(settle=not started)
            finally:
                if store is not None:
                    store.close()
                if started:
                    rx.shutdown()

    def _step(
        self,
        engine: StepEngine,
        jax: Any,
        optax: Any,
        step: int,
        prev: OptimizerOutput,
        history: list[dict[str, Any]],
        callback: Callback | None,
    ) -> tuple[OptimizerOutput, bool]:
        params = prev.params
        host_params = jax.device_get(params)
        res = engine.run_step(step, host_params)
        grads = [res.results[o.name].grads for o in self.objectives]
        for objective, grad in zip(self.objectives, grads, strict=True):
            if not grads_fit_params(grad, host_params):
                raise StepFailedError(
                    f"step {step}: objective {objective.name!r} returned a gradient that does "
                    f"not match the params: gradient {describe_shapes(grad)}, params "
                    f"{describe_shapes(host_params)}"
                )
        bad = [o.name for o, g in zip(self.objectives, grads, strict=True) if has_nonfinite(g)]
        aggregated = self.aggregate_grad_fn(grads)
        if bad or has_nonfinite(aggregated):
            culprits = (
                ", ".join(repr(n) for n in bad) if bad else "none (aggregate_grad_fn made it)"
            )
            raise NonFiniteGradientError(
                f"step {step}: the aggregated gradient holds NaN or Inf; objective(s) with a "
                f"non-finite gradient: {culprits}. Lower the learning rate or enable float64 "
                f"(runtime_env={{'env_vars': {{'JAX_ENABLE_X64': 'True'}}}})"
            )
        updates, opt_state = self.optimizer.update(aggregated, prev.opt_state, params)
        new_params = optax.apply_updates(params, updates)
        losses = {o.name: float(res.results[o.name].loss) for o in self.objectives}
        loss = sum(losses.values()) / len(losses)
        aux = {o.name: _json_safe(dict(res.results[o.name].aux)) for o in self.objectives}
        history.append(
            {
                "losses": losses,
                "loss": loss,
                "grad_norm": global_norm(aggregated),
                "params": _json_safe(host_params),
                "timings": {
                    "step_s": res.wall_s,
                    "simulators_s": res.simulators_s,
                    "objectives_s": res.objectives_s,
                },
                "simulators_run": res.simulators_run,
                "not_ready_retries": res.not_ready_retries,
                "aux": aux,
            }
        )
        observables: dict[str, Mapping[str, Any]] = {
            o.name: dict(res.results[o.name].aux) for o in self.objectives
        }
        for name, slot in engine.sims.items():
            observables[name] = LazyObservables(
                {obs: slot.refs[slot.simulator.observable(obs)] for obs in slot.simulator.exposes}
                if slot.refs is not None
                else {}
            )
        output = OptimizerOutput(
            step=step,
            params=new_params,
            opt_state=opt_state,
            grads=aggregated,
            losses=losses,
            loss=loss,
            observables=observables,
            history=tuple(history),
        )
        if callback is None:
            return output, True
        answer = callback(output, step)
        if not (isinstance(answer, tuple) and len(answer) == 2):
            raise SpecError(
                f"callback must return (modified_output or None, keep_going), got {answer!r}"
            )
        modified, keep_going = answer
        if modified is not None:
            if not isinstance(modified, OptimizerOutput):
                raise SpecError(
                    f"callback returned {type(modified).__name__} as its output; "
                    f"return an OptimizerOutput (e.g. dataclasses.replace(output, "
                    f"params=...)) or None"
                )
            output = modified
        if not keep_going:
            output = dataclasses.replace(output, stopped_early=True)
        return output, bool(keep_going)

    # -- helpers ------------------------------------------------------------------------
    def _restore(
        self, store: RunStore | None, params: Any, n_steps: int
    ) -> tuple[Any, Any, dict[str, Any], int, list[dict[str, Any]]]:
        """Params, optimizer state, simulator states, first step and history to start from."""
        states: dict[str, Any] = {sim.name: None for sim in self.simulators}
        if store is None:
            return params, self.optimizer.init(params), states, 0, []
        history = store.history()
        latest = store.latest()
        first = 0
        opt_state = self.optimizer.init(params)
        if latest is not None:
            ckpt = latest.checkpoint
            params = decode_tree(params, ckpt["params"], "parameters")
            opt_state = decode_tree(
                self.optimizer.init(params), ckpt["opt_state"], "optimizer state"
            )
            states, reset = decode_states(ckpt["simulator_states"])
            for sim_name, type_name in reset.items():
                store.event("state_reset", {"simulator": sim_name, "type": type_name})
            first = int(ckpt["next_step"])
        store.event("resumed" if first else "started", {"step": first, "n_steps": n_steps})
        store.set_status(RunStatus.RUNNING)
        return params, opt_state, states, first, history

    def _open_store(self, n_steps: int) -> RunStore | None:
        if self.storage is None or self.name is None:
            return None
        spec = build_spec(
            self.name,
            [s.name for s in self.simulators],
            [o.name for o in self.objectives],
            n_steps,
            {
                "observables": {o.name: list(o.required_observables) for o in self.objectives},
                "optimizer": type(self.optimizer).__name__,
                "aggregate_grad_fn": getattr(
                    self.aggregate_grad_fn, "__name__", repr(self.aggregate_grad_fn)
                ),
            },
        )
        resume = self.resume
        if resume == "auto":  # a batch job that may be requeued runs the same script
            from raysweep.store import locate

            resume = locate(self.storage, spec["name"]).exists()
        if resume:
            return RunStore.resume(self.storage, spec)
        return RunStore.create(self.storage, spec)

    def _options_checked(self, rx: Any) -> None:
        for unit, options in self.options.items():
            rx.validate_options(options, unit)

    def _task_options(self, unit: str, started_ray: bool) -> dict[str, Any]:
        options = dict(self.options[unit])
        if self.runtime_env and not started_ray and "runtime_env" not in options:
            options["runtime_env"] = self.runtime_env
        return options

    def _retries(self, unit: str) -> int:
        # Ray's -1 (retry forever) would loop on a deterministic bug in user code.
        return max(0, int(self.options[unit].get("max_retries", 0) or 0))
