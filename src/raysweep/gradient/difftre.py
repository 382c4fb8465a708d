"""DiffTRe: differentiable trajectory reweighting as a ready-made objective.

Frames ``x_i`` sampled at reference parameters ``θ_ref`` are reweighted to the
current parameters ``θ`` with ``w_i ∝ exp(-β (E(x_i, θ) - E(x_i, θ_ref)))``, so an
ensemble average ``⟨O⟩_θ ≈ Σ w_i O(x_i)`` and its gradient come from one batch of
samples without differentiating through the simulation. The estimate is good
while the weights are even; their effective sample size ``ESS = 1 / Σ w_i²``
(normalized weights, between 1 and N) says when it is not, and the objective
then answers :class:`~raysweep.gradient.NotReady` to get fresh trajectories.

Data convention: a simulator feeding this objective exposes an observable whose
value is a :class:`SampledTrajectory` (or a dict with the same two keys):
``frames``, an array (or pytree of arrays) with frames on the leading axis, and
``params``, the parameters they were sampled at. Trajectories of all required
observables are concatenated; each frame is reweighted against the parameters
of its own trajectory, which is exact when they share them, as they do when the
simulators run in the same step.
"""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from raysweep.errors import SpecError
from raysweep.gradient._lazy import require_jax
from raysweep.gradient.trees import tree_leaves
from raysweep.gradient.units import NotReady, Objective, ObjectiveResult
from raysweep.resources import SchedulerHints

__all__ = ["DiffTReObjective", "SampledTrajectory"]


@dataclass(frozen=True, slots=True)
class SampledTrajectory:
    """Frames and the parameters they were sampled at (what DiffTRe reads).

    Attributes:
        frames: array or pytree of arrays, frames on the leading axis.
        params: the parameters the simulator ran with (its ``params`` argument).
    """

    frames: Any
    params: Any


def _as_trajectory(name: str, value: Any) -> SampledTrajectory:
    if isinstance(value, SampledTrajectory):
        return value
    if isinstance(value, Mapping) and {"frames", "params"} <= set(value):
        return SampledTrajectory(frames=value["frames"], params=value["params"])
    raise SpecError(
        f"DiffTRe: observable {name!r} must be a SampledTrajectory(frames, params) "
        f"or a dict with keys 'frames' and 'params', got {type(value).__name__}"
    )


def _mse(observable: Any, target: Any) -> Any:
    import jax.numpy as jnp

    return jnp.mean((observable - target) ** 2)


# Compiled functions per worker process, keyed by the pickled settings: a function
# shipped by value (defined in a script) is a new object whenever a unit is
# unpickled (after a resume, in a restarted process), so identity is no key.
_COMPILED: dict[str, tuple[Any, Any, Any]] = {}


def _settings_key(settings: tuple[Any, ...]) -> str | None:
    try:  # cloudpickle also handles functions that were shipped by value
        import cloudpickle

        dumps: Callable[[Any], bytes] = cloudpickle.dumps
    except ImportError:
        dumps = pickle.dumps
    try:
        return hashlib.sha256(dumps(settings)).hexdigest()
    except Exception:  # an unpicklable setting only means no cache
        return None


class DiffTReObjective(Objective):
    """Fit an ensemble average to a target by differentiable trajectory reweighting.

    Args:
        name: unique objective name.
        required_observables: qualified names of trajectory observables (see the
            module docstring for their value).
        energy_fn: ``energy_fn(frame, params) -> scalar``, the potential energy of
            one frame (a JAX function).
        observable_fn: ``observable_fn(frame) -> array``, the per-frame quantity
            whose ensemble average is fitted.
        target: the value the reweighted average should take.
        loss_fn: ``loss_fn(observable, target) -> scalar``; mean squared error by default.
        kT: thermal energy; or give ``beta`` = 1/kT (not both); ``kT=1`` by default.
        beta: inverse thermal energy.
        min_ess_fraction: answer not ready when ESS/N falls below this.
        min_ess: also answer not ready when ESS falls below this many frames.
        map_batch_size: evaluate frames in batches of this many with ``jax.lax.map``
            (memory ∝ batch, not trajectory); ``None`` vectorizes all frames at once.
        map_checkpoint: recompute per-frame energies in the backward pass
            (``jax.checkpoint``) instead of storing their intermediates.
        reuse_observables: keep trajectories from earlier steps until the ESS is
            too low (the point of DiffTRe); ``False`` simulates every step.

    Define ``energy_fn``, ``observable_fn`` and ``loss_fn`` at module level or
    keep them deterministic to pickle: compiled functions are cached per worker
    by their pickled form.
    """

    def __init__(
        self,
        name: str | None = None,
        required_observables: Iterable[str] = (),
        *,
        energy_fn: Callable[[Any, Any], Any],
        observable_fn: Callable[[Any], Any],
        target: Any,
        loss_fn: Callable[[Any, Any], Any] | None = None,
        kT: float | None = None,
        beta: float | None = None,
        min_ess_fraction: float = 0.5,
        min_ess: float = 0.0,
        map_batch_size: int | None = None,
        map_checkpoint: bool = False,
        scheduler_hints: SchedulerHints | Mapping[str, Any] | None = None,
        reuse_observables: bool = True,
    ) -> None:
        super().__init__(
            name,
            required_observables,
            scheduler_hints=scheduler_hints,
            reuse_observables=reuse_observables,
        )
        if not callable(energy_fn) or not callable(observable_fn):
            raise SpecError(
                "DiffTReObjective needs callable energy_fn(frame, params) and observable_fn(frame)"
            )
        if loss_fn is not None and not callable(loss_fn):
            raise SpecError(f"loss_fn must be callable(observable, target), got {loss_fn!r}")
        if kT is not None and beta is not None:
            raise SpecError(f"give kT or beta, not both (kT={kT!r}, beta={beta!r})")
        self.beta = float(beta) if beta is not None else 1.0 / float(1.0 if kT is None else kT)
        if not (np.isfinite(self.beta) and self.beta > 0):
            raise SpecError(
                f"kT and beta must be positive and finite, got kT={kT!r}, beta={beta!r}"
            )
        if not 0.0 <= min_ess_fraction <= 1.0:
            raise SpecError(f"min_ess_fraction must be in [0, 1], got {min_ess_fraction!r}")
        if min_ess < 0:
            raise SpecError(f"min_ess must be >= 0, got {min_ess!r}")
        if map_batch_size is not None and (
            isinstance(map_batch_size, bool)
            or not isinstance(map_batch_size, int)
            or map_batch_size < 1
        ):
            raise SpecError(
                f"map_batch_size must be a whole number >= 1 or None, got {map_batch_size!r}"
            )
        self.energy_fn = energy_fn
        self.observable_fn = observable_fn
        self.loss_fn = loss_fn
        self.target = np.asarray(target)
        self.min_ess_fraction = float(min_ess_fraction)
        self.min_ess = float(min_ess)
        self.map_batch_size = map_batch_size
        self.map_checkpoint = bool(map_checkpoint)

    def _compiled(self) -> tuple[Any, Any, Any]:
        settings = (
            self.energy_fn,
            self.observable_fn,
            self.loss_fn,
            self.beta,
            self.map_batch_size,
            self.map_checkpoint,
        )
        key = _settings_key(settings)
        if key is not None and key in _COMPILED:
            return _COMPILED[key]
        fns = _compile(*settings)
        if key is not None:
            _COMPILED[key] = fns
        return fns

    def compute(self, params: Any, observables: Mapping[str, Any]) -> ObjectiveResult | NotReady:
        """Reweighted loss and gradient, or not ready when the ESS is too low."""
        jax = require_jax("DiffTReObjective")
        value_and_grad, energies, per_frame = self._compiled()
        trajs = [_as_trajectory(q, observables[q]) for q in self.required_observables]
        frames = jax.tree_util.tree_map(
            lambda *xs: np.concatenate([np.asarray(x) for x in xs]), *[t.frames for t in trajs]
        )
        n_frames = int(np.shape(tree_leaves(frames)[0])[0])
        # Reference energies: once per distinct reference, not per trajectory.
        groups: dict[bytes, list[int]] = {}
        for i, t in enumerate(trajs):
            key = b"".join(np.asarray(leaf).tobytes() for leaf in tree_leaves(t.params))
            groups.setdefault(key, []).append(i)
        ref_energy = np.empty(n_frames, dtype=np.float64)
        offsets = np.cumsum([0] + [int(np.shape(tree_leaves(t.frames)[0])[0]) for t in trajs])
        for members in groups.values():
            sel = np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in members])
            part = jax.tree_util.tree_map(lambda a, idx=sel: a[idx], frames)
            ref_energy[sel] = np.asarray(energies(part, trajs[members[0]].params))
        obs = per_frame(frames)
        (loss, (observable, ess)), grads = value_and_grad(
            params, frames, jax.numpy.asarray(ref_energy), obs, self.target
        )
        ess = float(ess)
        aux = {
            "observable": np.asarray(observable).tolist(),
            "ess": ess,
            "ess_fraction": ess / n_frames,
            "n_frames": n_frames,
        }
        if ess / n_frames < self.min_ess_fraction or ess < self.min_ess:
            return NotReady(
                f"ESS {ess:.1f} of {n_frames} frames is below the threshold "
                f"(min_ess_fraction={self.min_ess_fraction}, min_ess={self.min_ess})"
            )
        return ObjectiveResult(loss=float(loss), grads=jax.device_get(grads), aux=aux)


def _compile(
    energy_fn: Callable[[Any, Any], Any],
    observable_fn: Callable[[Any], Any],
    loss_fn: Callable[[Any, Any], Any] | None,
    beta: float,
    batch_size: int | None,
    checkpoint: bool,
) -> tuple[Any, Any, Any]:
    """Jitted (value_and_grad of the loss, per-frame energies, per-frame observables)."""
    jax = require_jax("DiffTReObjective")
    jnp = jax.numpy
    loss = _mse if loss_fn is None else loss_fn
    frame_energy = jax.checkpoint(energy_fn) if checkpoint else energy_fn

    def over_frames(fn: Callable[[Any], Any], frames: Any) -> Any:
        if batch_size is None:
            return jax.vmap(fn)(frames)
        return jax.lax.map(fn, frames, batch_size=batch_size)

    def energies(frames: Any, params: Any) -> Any:
        return over_frames(lambda x: frame_energy(x, params), frames)

    def reweighted_loss(
        params: Any, frames: Any, ref_energy: Any, obs: Any, target: Any
    ) -> tuple[Any, tuple[Any, Any]]:
        log_w = -beta * (energies(frames, params) - ref_energy)
        w = jax.nn.softmax(log_w)
        observable = jnp.tensordot(w, obs, axes=1)
        ess = 1.0 / jnp.sum(w * w)
        return loss(observable, target), (observable, ess)

    return (
        jax.jit(jax.value_and_grad(reweighted_loss, has_aux=True)),
        jax.jit(energies),
        jax.jit(lambda frames: over_frames(observable_fn, frames)),
    )
