"""DiffTRe: reweighted gradients against finite differences and exact ensemble derivatives."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import optax
import pytest

from raysweep.errors import SpecError
from raysweep.gradient import (
    DiffTReObjective,
    NotReady,
    ObjectiveResult,
    RayOptimizer,
    SampledTrajectory,
    Simulator,
)

KT = 1.5
K_REF = 2.0


def harmonic_energy(x: Any, params: Mapping[str, Any]) -> Any:
    """Energy of one frame of independent 1-D oscillators with spring constant k."""
    return 0.5 * params["k"] * (x * x).sum()


def log_harmonic_energy(x: Any, params: Mapping[str, Any]) -> Any:
    """The oscillators parameterized by log k, which keeps k positive while fitting."""
    import jax.numpy as jnp

    return harmonic_energy(x, {"k": jnp.exp(params["log_k"])})


def squared(x: Any) -> Any:
    """Per-frame observable: mean squared displacement."""
    return (x * x).mean()


def identity_loss(observable: Any, target: Any) -> Any:
    """The loss is the reweighted observable itself (to test its derivative)."""
    return observable


def exact_msd(k: float) -> float:
    """The exact ensemble average <x^2> = kT/k of the oscillator."""
    return KT / k


def _samples(n: int, k: float, seed: int, dim: int = 1) -> np.ndarray:
    """Exact Boltzmann samples of ``dim`` oscillators with energy k x^2 / 2 at KT."""
    rng = np.random.default_rng(seed)
    return rng.normal(0.0, np.sqrt(KT / k), size=(n, dim)).astype(np.float32)


def _objective(**kwargs: Any) -> DiffTReObjective:
    options: dict[str, Any] = {
        "energy_fn": harmonic_energy,
        "observable_fn": squared,
        "target": 0.3,
        "kT": KT,
        "min_ess_fraction": 0.05,
    }
    options.update(kwargs)
    return DiffTReObjective(name="d", required_observables=["traj.S.a", "traj.S.b"], **options)


def _observables(n: int = 2000) -> dict[str, Any]:
    return {
        "traj.S.a": SampledTrajectory(frames=_samples(n, K_REF, 1), params={"k": K_REF}),
        "traj.S.b": {"frames": _samples(n, K_REF, 2), "params": {"k": np.float32(K_REF)}},
    }


def _result(obj: DiffTReObjective, k: float, obs: Mapping[str, Any]) -> ObjectiveResult:
    result = obj.compute({"k": np.float32(k)}, obs)
    assert isinstance(result, ObjectiveResult), result
    return result


def test_gradient_matches_finite_difference_of_the_reweighted_loss() -> None:
    """The autodiff gradient equals a central finite difference of the same estimator."""
    obj, obs = _objective(), _observables()
    k, h = 2.3, 1e-2
    grad = float(_result(obj, k, obs).grads["k"])
    fd = (_result(obj, k + h, obs).loss - _result(obj, k - h, obs).loss) / (2 * h)
    assert grad == pytest.approx(fd, rel=1e-2)
    assert grad != 0.0


def test_gradient_matches_the_exact_ensemble_derivative() -> None:
    """d<x^2>/dk from reweighting matches a finite difference of the exact average kT/k."""
    obj = _objective(loss_fn=identity_loss)
    result = _result(obj, K_REF, _observables(n=20000))
    fd = (exact_msd(K_REF + 1e-4) - exact_msd(K_REF - 1e-4)) / 2e-4
    assert float(result.grads["k"]) == pytest.approx(fd, rel=0.1)
    assert result.aux["observable"] == pytest.approx(KT / K_REF, rel=0.05)
    assert result.aux["ess_fraction"] == pytest.approx(1.0, abs=1e-4)
    assert result.aux["n_frames"] == 40000


def test_low_effective_sample_size_is_not_ready() -> None:
    """Far from the reference the weights collapse and the objective asks for fresh data."""
    result = _objective(min_ess_fraction=0.5).compute({"k": np.float32(20.0)}, _observables())
    assert isinstance(result, NotReady)
    assert "ESS" in result.reason
    absolute = _objective(min_ess_fraction=0.0, min_ess=5000).compute(
        {"k": np.float32(K_REF)}, _observables()
    )
    assert isinstance(absolute, NotReady)


@pytest.mark.parametrize(("batch", "checkpoint"), [(7, False), (64, True), (None, True)])
def test_batched_and_checkpointed_maps_give_the_same_result(
    batch: int | None, checkpoint: bool
) -> None:
    """Frame batches through lax.map and jax.checkpoint change memory use, not the numbers."""
    obs = _observables(500)
    plain = _result(_objective(), 2.2, obs)
    other = _result(_objective(map_batch_size=batch, map_checkpoint=checkpoint), 2.2, obs)
    assert other.loss == pytest.approx(plain.loss, rel=1e-5)
    assert float(other.grads["k"]) == pytest.approx(float(plain.grads["k"]), rel=1e-4)


def test_each_trajectory_is_reweighted_against_its_own_reference() -> None:
    """Frames sampled at other parameters get their own reference energies."""
    obs = _observables(3000)
    obs["traj.S.b"] = SampledTrajectory(frames=_samples(3000, 2.4, 3), params={"k": 2.4})
    at_b = _result(_objective(), 2.4, {"traj.S.a": obs["traj.S.b"], "traj.S.b": obs["traj.S.b"]})
    mixed = _result(_objective(), 2.4, obs)
    # b's frames get weight 1 each at k=2.4; a's are reweighted from 2.0: both estimate KT/2.4.
    assert mixed.aux["observable"] == pytest.approx(KT / 2.4, rel=0.06)
    assert at_b.aux["ess_fraction"] == pytest.approx(1.0, abs=1e-4)


def test_bad_configuration_and_data_are_reported() -> None:
    """Both kT and beta, or an observable that is not a trajectory, are clear errors."""
    with pytest.raises(SpecError, match="kT or beta, not both"):
        _objective(beta=1.0)
    with pytest.raises(SpecError, match="map_batch_size"):
        _objective(map_batch_size=0)
    with pytest.raises(SpecError, match="must be a SampledTrajectory"):
        _objective().compute({"k": 1.0}, {"traj.S.a": np.zeros(3), "traj.S.b": np.zeros(3)})


class GaussianSampler(Simulator):
    """Draws exact samples of 10 oscillators at the current k (seeded by replica and run)."""

    exposes = ("traj",)

    def run(self, params: Any, state: Any) -> tuple[Mapping[str, Any], Any]:
        runs = 0 if state is None else int(state)
        k = float(np.exp(np.asarray(params["log_k"])))
        frames = _samples(500, k, seed=1000 * self.replica + runs, dim=10)
        return {"traj": SampledTrajectory(frames=frames, params=params)}, runs + 1


@pytest.mark.ray
@pytest.mark.slow
def test_difftre_fits_the_oscillator_on_ray(ray_session: None) -> None:
    """On Ray, DiffTRe fits k so that <x^2> hits its target, re-sampling only when needed."""
    sims = GaussianSampler.create_n(2, name="osc")
    target = 0.5  # <x^2> = kT/k, so k* = 3
    obj = DiffTReObjective(
        name="msd",
        required_observables=[s.observable("traj") for s in sims],
        energy_fn=log_harmonic_energy,
        observable_fn=squared,
        target=target,
        kT=KT,
        min_ess_fraction=0.6,
    )
    start = {"log_k": np.float32(np.log(1.5))}
    out = RayOptimizer(sims, [obj], optax.sgd(1.0)).run(start, n_steps=15)
    assert float(np.exp(out.params["log_k"])) == pytest.approx(KT / target, rel=0.03)
    runs = [len(d["simulators_run"]) for d in out.history]
    assert 0 in runs  # some steps reused earlier trajectories
    assert sum(d["not_ready_retries"] for d in out.history) >= 1
