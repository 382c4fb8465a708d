"""Gradient-based fitting on Ray: parallel simulators, differentiable objectives, optax.

Scientists fitting a physical model run many independent simulations per step,
compute differentiable objectives from their trajectories (e.g. DiffTRe), combine
the gradients and take an optimizer step, hundreds of times. This package runs
that loop on Ray, from a laptop to a cluster, and stores every step so a crashed
run resumes where it stopped.

Example:
    >>> from raysweep.gradient import Simulator, RayOptimizer, tree_mean  # doctest: +SKIP
    >>> sims = MySim.create_n(8, name="md")  # doctest: +SKIP
    >>> obj = MyObjective(name="density",  # doctest: +SKIP
    ...                   required_observables=[s.observable("trajectory") for s in sims])
    >>> opt = RayOptimizer(simulators=sims, objectives=[obj],  # doctest: +SKIP
    ...                    optimizer=optax.adam(1e-2), aggregate_grad_fn=tree_mean,
    ...                    name="fit-density", storage="runs")
    >>> out = opt.run(params, n_steps=100)  # doctest: +SKIP

Or step by step, optax-style (state in, new state out), in a loop of your own:

    >>> state = None  # doctest: +SKIP
    >>> for _ in range(100):  # doctest: +SKIP
    ...     out = opt.step(params, state)
    ...     params, state = out.params, out.state
    >>> opt.close()  # doctest: +SKIP

JAX and optax are the optional extra ``raysweep[jax]``: importing this package
does not need them; ``RayOptimizer.run`` and ``DiffTReObjective`` import them when
used and raise :class:`~raysweep.errors.MissingExtraError` if they are missing.
"""

from __future__ import annotations

from raysweep.errors import StepFailedError
from raysweep.gradient.difftre import DiffTReObjective, SampledTrajectory
from raysweep.gradient.optimizer import RayOptimizer
from raysweep.gradient.output import Callback, OptimizerOutput, OptimizerState, StepOutput
from raysweep.gradient.trees import NonFiniteGradientError, tree_mean, tree_weighted
from raysweep.gradient.units import NotReady, Objective, ObjectiveResult, Simulator
from raysweep.resources import SchedulerHints

__all__ = [
    "Callback",
    "DiffTReObjective",
    "NonFiniteGradientError",
    "NotReady",
    "Objective",
    "ObjectiveResult",
    "OptimizerOutput",
    "OptimizerState",
    "RayOptimizer",
    "SampledTrajectory",
    "SchedulerHints",
    "Simulator",
    "StepFailedError",
    "StepOutput",
    "tree_mean",
    "tree_weighted",
]
