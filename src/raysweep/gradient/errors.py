"""The error a gradient step raises when it cannot complete."""

from __future__ import annotations

from raysweep import errors

__all__ = ["StepFailedError"]


class StepFailedError(errors.StepFailedError, RuntimeError):
    """Raised by :meth:`RayOptimizer.step` (and so ``run``) when a step cannot complete.

    Causes: a unit failed (or its process died) past its retries; an objective
    was still not ready when the step's attempts ran out (the message says the
    step could not be resolved after N attempts and names the objective and its
    last reason); or an objective returned a gradient unlike the params.

    A ``RuntimeError``, as mythos raised, and a :class:`raysweep.errors.StepFailedError`,
    so ``except`` clauses written for either catch it.
    """
