"""A normal gradient run, and one that fails, print nothing but what the script prints."""

from __future__ import annotations

import re
import textwrap

import pytest

from tests.conftest import run_python

pytestmark = [pytest.mark.ray, pytest.mark.slow]

_SCRIPT = textwrap.dedent(
    """
    import gc
    import warnings

    import jax.numpy as jnp
    import numpy as np
    import optax
    import ray
    from raysweep.errors import StepFailedError
    from raysweep.gradient import RayOptimizer
    from tests.gradient import helpers as h

    # JAX runs threads before Ray starts, as in a user's script: its fork warning would fire.
    jnp.zeros(3).block_until_ready()
    start = {"a": np.float32(0.0)}
    sims, objs = h.make_units(2)
    out = RayOptimizer(sims, objs, optax.adam(0.1)).run(start, n_steps=2)
    print("first run:", len(out.history), "steps", flush=True)

    # A Ray the user started stays up after the failure: dropped refs would be reported now.
    # (Its start is the user's own fork after JAX, not raysweep's to quiet.)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    broken, blocked = h.BrokenSim(name="broken"), h.BlockedSim(name="blocked")
    obj = h.QuadraticObjective(
        name="q", required_observables=[broken.observable("value"), blocked.observable("value")]
    )
    try:
        RayOptimizer([blocked, broken], [obj], optax.sgd(0.1)).run(start, n_steps=2)
    except StepFailedError as exc:
        print("caught:", exc, flush=True)
    gc.collect()  # Ray reports an unread failed ref when it is freed
    print("collected", flush=True)
    ray.shutdown()
    """
)


def test_runs_print_no_fork_warnings_ray_info_or_unhandled_errors() -> None:
    """A subprocess's runs show no fork warning, no Ray INFO line, no "Unhandled error"."""
    proc = run_python(_SCRIPT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "first run: 2 steps",
        "caught: step 0: simulator 'broken' failed after 1 attempt(s): "
        "ValueError: broken is broken",
        "collected",
    ]
    assert "os.fork()" not in proc.stderr
    assert not re.search(r"\bINFO\b", proc.stderr), proc.stderr
    assert "Unhandled error" not in proc.stderr
    assert "Traceback" not in proc.stderr
