"""A bead-spring polymer in 3-D, sampled with overdamped Langevin dynamics in JAX.

The chain has ``N_BEADS`` beads joined by harmonic bonds of rest length ``r0``
(the parameter we fit) and spring constant ``K_BOND``; beads that are not
bonded repel each other with a WCA (purely repulsive Lennard-Jones) potential.
Units: kT = 1, bead diameter 1.

This module is imported by the Ray workers (the example ships this folder as
the runtime ``working_dir``), so the jitted integrator is compiled once per
worker process and reused for every step.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from raysweep.gradient import SampledTrajectory, Simulator

N_BEADS = 16
K_BOND = 20.0
KT = 1.0
#: Time step; the WCA core is stiff, and 0.004 already heats the chain (bond
#: fluctuations twice too large), which would make the samples non-Boltzmann
#: and the reweighting wrong.
DT = 0.001
#: Langevin steps per simulator run (200 frames), and how often a frame is kept.
STEPS_PER_RUN = 32000
STRIDE = 160
BURN_IN = 3200

_I, _J = np.triu_indices(N_BEADS, k=2)  # non-bonded pairs (|i - j| >= 2)


def bond_lengths(x: jax.Array) -> jax.Array:
    """Lengths of the ``N_BEADS - 1`` bonds of one configuration ``(N_BEADS, 3)``."""
    return jnp.linalg.norm(x[1:] - x[:-1], axis=-1)  # type: ignore[no-any-return]


def energy(x: jax.Array, params: Mapping[str, Any]) -> jax.Array:
    """Potential energy of one configuration: bonds plus WCA repulsion."""
    bonds = 0.5 * K_BOND * jnp.sum((bond_lengths(x) - params["r0"]) ** 2)
    r2 = jnp.sum((x[_I] - x[_J]) ** 2, axis=-1)
    cut = 2.0 ** (1.0 / 3.0)  # r_c^2 with r_c = 2^(1/6) sigma
    inv6 = 1.0 / jnp.maximum(r2, 0.5) ** 3
    wca = jnp.where(r2 < cut, 4.0 * (inv6 * inv6 - inv6) + 1.0, 0.0)
    return bonds + jnp.sum(wca)


def mean_bond_length(x: jax.Array) -> jax.Array:
    """The per-frame observable we fit: the mean bond length."""
    return jnp.mean(bond_lengths(x))


_force = jax.grad(lambda x, r0: -energy(x, {"r0": r0}))


@partial(jax.jit, static_argnames="n_frames")
def _langevin(
    x: jax.Array, key: jax.Array, r0: jax.Array, n_frames: int
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Overdamped Langevin: ``n_frames`` frames, one every ``STRIDE`` steps."""

    def step(
        carry: tuple[jax.Array, jax.Array], _: None
    ) -> tuple[tuple[jax.Array, jax.Array], None]:
        x, key = carry
        key, sub = jax.random.split(key)
        noise = jax.random.normal(sub, x.shape)
        x = x + DT * _force(x, r0) + jnp.sqrt(2.0 * KT * DT) * noise
        return (x, key), None

    def frame(
        carry: tuple[jax.Array, jax.Array], _: None
    ) -> tuple[tuple[jax.Array, jax.Array], jax.Array]:
        carry, _ = jax.lax.scan(step, carry, None, length=STRIDE)
        return carry, carry[0]

    (x, key), frames = jax.lax.scan(frame, (x, key), None, length=n_frames)
    return x, key, frames


class ChainSimulator(Simulator):
    """Samples the chain at the current ``r0``, continuing from its last configuration.

    State: ``{"x": last configuration, "key": PRNG key}``, plain arrays, so the
    checkpoint stores it and a resumed run continues the same trajectories.
    """

    exposes = ("trajectory",)

    def run(self, params: Any, state: Any) -> tuple[Mapping[str, Any], Any]:
        r0 = jnp.asarray(params["r0"], dtype=jnp.float32)
        if state is None:  # a straight chain, then burn-in; the seed differs per replica
            x = jnp.zeros((N_BEADS, 3)).at[:, 0].set(jnp.arange(N_BEADS) * 1.1)
            key = jax.random.PRNGKey(1000 + self.replica)
            x, key, _ = _langevin(x, key, r0, BURN_IN // STRIDE)
        else:
            x, key = jnp.asarray(state["x"]), jnp.asarray(state["key"], dtype=jnp.uint32)
        x, key, frames = _langevin(x, key, r0, STEPS_PER_RUN // STRIDE)
        trajectory = SampledTrajectory(frames=np.asarray(frames), params=params)
        return {"trajectory": trajectory}, {"x": np.asarray(x), "key": np.asarray(key)}


def reference_mean_bond_length(r0: float, n_frames: int = 4000, seed: int = 7) -> float:
    """A long, independent simulation at ``r0`` to check the fit (run in the driver)."""
    x = jnp.zeros((N_BEADS, 3)).at[:, 0].set(jnp.arange(N_BEADS) * 1.1)
    key = jax.random.PRNGKey(seed)
    r = jnp.asarray(r0, dtype=jnp.float32)
    x, key, _ = _langevin(x, key, r, BURN_IN // STRIDE)
    _, _, frames = _langevin(x, key, r, n_frames)
    return float(jnp.mean(jax.vmap(mean_bond_length)(frames)))
