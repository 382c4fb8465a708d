"""``RayOptimizer.run``: the loop of ``step`` calls plus the store, the callback and resume.

Nothing here runs units: each step is ``RayOptimizer._step``, the same code path
as the public ``step``. This module adds what a whole run has and a step has
not: the stored spec and records, the checkpoint of every step, resuming from
the last one, the callback, and the run's events and status.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from raysweep.errors import SpecError
from raysweep.gradient.checkpoint import (
    RunStatus,
    RunStore,
    build_spec,
    decode_states,
    decode_tree,
)
from raysweep.gradient.output import (
    Callback,
    LazyObservables,
    OptimizerOutput,
    OptimizerState,
    StepOutput,
)

if TYPE_CHECKING:
    from raysweep.gradient.optimizer import RayOptimizer

__all__ = ["run_loop"]


def run_loop(
    opt: RayOptimizer, params: Any, n_steps: int, callback: Callback | None
) -> OptimizerOutput:
    """The body of ``RayOptimizer.run`` (see its docstring)."""
    from raysweep.gradient import _ray_exec as rx

    for unit, options in opt.options.items():  # before a store is created for nothing
        rx.validate_options(options, unit)
    store = _open_store(opt, n_steps)
    try:
        params, state, history = _restore(opt, store, params, n_steps)
    except BaseException:
        if store is not None:
            store.close()  # the stored run is as it was: no status change
        raise
    output = OptimizerOutput(
        step=state.step - 1,
        params=params,
        opt_state=state.optimizer_state,
        grads=None,
        losses=dict(history[-1]["losses"]) if history else {},
        loss=float(history[-1]["loss"]) if history else math.nan,
        history=tuple(history),
    )
    owns_session = not opt._has_session()
    on_event = store.event if store is not None else None
    try:
        for step in range(state.step, n_steps):
            out = opt._step(params, state, on_event)
            history.append(dict(out.record))
            output, keep_going = _call_back(opt, out, step, history, callback)
            params = output.params
            state = dataclasses.replace(out.state, optimizer_state=output.opt_state)
            if store is not None:
                components = state.component_state
                store.record(
                    step,
                    history[-1],
                    output.params,
                    output.opt_state,
                    {sim.name: components.get(sim.name) for sim in opt.simulators},
                    {obj.name: components.get(obj.name) for obj in opt.objectives},
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
            if owns_session:
                opt.close()
        finally:
            if store is not None:
                store.close()


def _call_back(
    opt: RayOptimizer,
    out: StepOutput,
    step: int,
    history: list[dict[str, Any]],
    callback: Callback | None,
) -> tuple[OptimizerOutput, bool]:
    """The step's output as ``run`` shows it, after the callback had its say."""
    observables: dict[str, Mapping[str, Any]] = {
        name: dict(figures) for name, figures in out.aux.items()
    }
    kept = out.state.observables
    for sim in opt.simulators:
        names = {obs: sim.observable(obs) for obs in type(sim).exposes}
        present = all(q in kept for q in names.values())
        observables[sim.name] = LazyObservables(
            {obs: kept[q] for obs, q in names.items()} if present else {}
        )
    output = OptimizerOutput(
        step=step,
        params=out.params,
        opt_state=out.state.optimizer_state,
        grads=out.grads,
        losses=dict(out.losses),
        loss=out.loss,
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


def _restore(
    opt: RayOptimizer, store: RunStore | None, params: Any, n_steps: int
) -> tuple[Any, OptimizerState, list[dict[str, Any]]]:
    """Params, state and history to start from: fresh, or after the last stored step."""
    state = opt.init(params)
    if store is None:
        return params, state, []
    history = store.history()
    latest = store.latest()
    if latest is not None:
        ckpt = latest.checkpoint
        params = decode_tree(params, ckpt["params"], "parameters")
        opt_state = decode_tree(opt.optimizer.init(params), ckpt["opt_state"], "optimizer state")
        components = dict(state.component_state)
        for key, kind in (("simulator_states", "simulator"), ("objective_states", "objective")):
            # Runs stored before objectives had states have no objective_states.
            states, reset = decode_states(ckpt.get(key, {}))
            components.update({k: v for k, v in states.items() if k in components})
            for name, type_name in reset.items():
                store.event("state_reset", {kind: name, "type": type_name})
        state = OptimizerState(opt_state, components, {}, int(ckpt["next_step"]))
    first = state.step
    store.event("resumed" if first else "started", {"step": first, "n_steps": n_steps})
    store.set_status(RunStatus.RUNNING)
    return params, state, history


def _open_store(opt: RayOptimizer, n_steps: int) -> RunStore | None:
    if opt.storage is None or opt.name is None:
        return None
    spec = build_spec(
        opt.name,
        [s.name for s in opt.simulators],
        [o.name for o in opt.objectives],
        n_steps,
        {
            "observables": {o.name: list(o.required_observables) for o in opt.objectives},
            "optimizer": type(opt.optimizer).__name__,
            "aggregate_grad_fn": getattr(
                opt.aggregate_grad_fn, "__name__", repr(opt.aggregate_grad_fn)
            ),
        },
    )
    resume = opt.resume
    if resume == "auto":  # a batch job that may be requeued runs the same script
        from raysweep.store import locate

        resume = locate(opt.storage, spec["name"]).exists()
    if resume:
        return RunStore.resume(opt.storage, spec)
    return RunStore.create(opt.storage, spec)
