"""From the objectives' answers to the next params: checks, aggregation, one optax update.

Pure given its inputs (no Ray): the gradients are checked against the params,
aggregated in ``objectives`` order, checked for NaN/Inf, and applied.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from raysweep.errors import StepFailedError
from raysweep.gradient._step import StepResult
from raysweep.gradient.trees import (
    NonFiniteGradientError,
    describe_shapes,
    global_norm,
    grads_fit_params,
    has_nonfinite,
    to_readable_json,
)
from raysweep.gradient.units import Objective

__all__ = ["Update", "apply_results", "json_safe"]


def json_safe(value: Any) -> Any:
    """``value`` as readable JSON, or its ``repr`` when it has none."""
    try:
        return to_readable_json(value)
    except Exception:  # aux is the user's; never lose a step over how it prints
        return repr(value)


@dataclass(frozen=True, slots=True)
class Update:
    """The update of one step and its record (the data ``run`` stores)."""

    params: Any
    opt_state: Any
    grads: Any
    losses: dict[str, float]
    aux: dict[str, Mapping[str, Any]]
    record: dict[str, Any]


def apply_results(
    step: int,
    res: StepResult,
    objectives: Sequence[Objective],
    aggregate_grad_fn: Callable[[list[Any]], Any],
    optimizer: Any,
    optax: Any,
    params: Any,
    host_params: Any,
    opt_state: Any,
) -> Update:
    """Check, aggregate and apply the objectives' gradients of one step.

    Raises:
        StepFailedError: an objective's gradient does not have the params' structure.
        NonFiniteGradientError: NaN or Inf in a gradient or the aggregate.
    """
    grads = [res.results[o.name].grads for o in objectives]
    for objective, grad in zip(objectives, grads, strict=True):
        if not grads_fit_params(grad, host_params):
            raise StepFailedError(
                f"step {step}: objective {objective.name!r} returned a gradient that does "
                f"not match the params: gradient {describe_shapes(grad)}, params "
                f"{describe_shapes(host_params)}"
            )
    bad = [o.name for o, g in zip(objectives, grads, strict=True) if has_nonfinite(g)]
    aggregated = aggregate_grad_fn(grads)
    if bad or has_nonfinite(aggregated):
        culprits = ", ".join(repr(n) for n in bad) if bad else "none (aggregate_grad_fn made it)"
        raise NonFiniteGradientError(
            f"step {step}: the aggregated gradient holds NaN or Inf; objective(s) with a "
            f"non-finite gradient: {culprits}. Lower the learning rate or enable float64 "
            f"(runtime_env={{'env_vars': {{'JAX_ENABLE_X64': 'True'}}}})"
        )
    updates, new_opt_state = optimizer.update(aggregated, opt_state, params)
    new_params = optax.apply_updates(params, updates)
    losses = {o.name: float(res.results[o.name].loss) for o in objectives}
    aux: dict[str, Mapping[str, Any]] = {o.name: dict(res.results[o.name].aux) for o in objectives}
    record = {
        "losses": losses,
        "loss": sum(losses.values()) / len(losses),
        "grad_norm": global_norm(aggregated),
        "params": json_safe(host_params),
        "timings": {
            "step_s": res.wall_s,
            "simulators_s": res.simulators_s,
            "objectives_s": res.objectives_s,
        },
        "simulators_run": res.simulators_run,
        "not_ready_retries": res.not_ready_retries,
        "aux": {name: json_safe(figures) for name, figures in aux.items()},
    }
    return Update(new_params, new_opt_state, aggregated, losses, aux, record)
