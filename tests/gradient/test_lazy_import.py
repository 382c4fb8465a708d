"""raysweep.gradient imports without JAX and optax, and says how to install them when needed."""

from __future__ import annotations

import textwrap

from tests.conftest import run_python

_SCRIPT = textwrap.dedent(
    """
    import sys
    sys.modules["jax"] = None      # make "import jax" fail as if it were not installed
    sys.modules["optax"] = None
    import numpy as np
    import raysweep.gradient as g
    from raysweep.errors import MissingExtraError
    from tests.gradient.helpers import make_units

    assert "jax" not in [m for m in sys.modules if sys.modules[m] is not None]
    assert float(g.tree_mean([{"a": np.array(1.0)}, {"a": np.array(3.0)}])["a"]) == 2.0

    class FakeOptimizer:
        def init(self, params): return ()
        def update(self, grads, state, params=None): return grads, state

    sims, objs = make_units(1)
    try:
        g.RayOptimizer(sims, objs, FakeOptimizer()).run({"a": 0.0}, n_steps=1)
    except MissingExtraError as exc:
        print("RUN:", exc)
    diff = g.DiffTReObjective(name="d", required_observables=["x"], energy_fn=len,
                              observable_fn=len, target=0.0)
    try:
        diff.compute({}, {"x": None})
    except MissingExtraError as exc:
        print("DIFFTRE:", exc)
    """
)


def test_gradient_package_imports_without_jax_and_names_the_extra() -> None:
    """Without JAX/optax the package imports and features needing them name raysweep[jax]."""
    proc = run_python(_SCRIPT)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines == [
        "RUN: RayOptimizer needs the optional package 'optax', which is not installed; "
        'run: pip install "raysweep[jax]"',
        "DIFFTRE: DiffTReObjective needs the optional package 'jax', which is not installed; "
        'run: pip install "raysweep[jax]"',
    ]
