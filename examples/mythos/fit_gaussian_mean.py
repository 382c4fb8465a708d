"""A mythos ``RayOptimizer`` script, ported to raysweep: the user's own loop of steps.

Two simulators sample x ~ N(mu, width^2) in parallel, the second twice as
narrow as the first (so its samples go stale sooner); one reweighting objective (the
DiffTRe idea in miniature) reweights their samples from the ``mu`` they were
drawn at to the current one and returns the gradient of
``(<x>_mu - target)^2``. It keeps counters in its own state across steps and,
when one simulator's samples got too stale (low effective sample size), answers
not ready naming only that simulator's observables, so only it runs again.

Ported from mythos (see docs/coming_from_mythos.md): ``calculate`` became
``compute``; ``ObjectiveOutput(is_ready=False, needs_update=...)`` became
``NotReady(reason, needs_update=..., state=...)``; the ``opt.step(params, state)``
loop is unchanged.

Run:  python examples/mythos/fit_gaussian_mean.py [--steps 30] [--target 2.0]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from typing import Any

import numpy as np
import optax

from raysweep.gradient import (
    NotReady,
    Objective,
    ObjectiveResult,
    RayOptimizer,
    SchedulerHints,
    Simulator,
)

#: Below this effective sample size (a share of the samples) a simulator's samples are stale.
MIN_ESS = 0.6


class GaussianSampler(Simulator):
    """Draws ``n`` samples of N(mu, width^2), ``width = 1 / (1 + replica)``; exposes
    them, the ``mu`` they were drawn at and the width."""

    exposes = ("samples", "mu", "width")

    def __init__(self, name: str | None = None, *, n: int = 2000, **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self.n = n

    def run(self, params: Any, state: Any) -> tuple[Mapping[str, Any], Any]:
        runs = 0 if state is None else int(state["runs"])
        rng = np.random.default_rng([self.replica, runs])  # reproducible, new draws each run
        mu = float(np.asarray(params["mu"]))
        width = 1.0 / (1 + self.replica)
        samples = rng.normal(mu, width, self.n)
        return {"samples": samples, "mu": mu, "width": width}, {"runs": runs + 1}


class ReweightedMean(Objective):
    """``(<x> - target)^2`` by reweighting every simulator's samples to the current mu.

    Stateful (mythos: component state): it counts its calls and the refreshes it
    asked for, and receives those counts back on every call.
    """

    def __init__(self, name: str, required_observables: Any, *, target: float) -> None:
        super().__init__(name, required_observables, reuse_observables=True)
        self.target = target

    def compute(
        self, params: Any, observables: Mapping[str, Any], state: Any = None
    ) -> ObjectiveResult | NotReady:
        state = state or {"calls": 0, "refreshes": 0}
        state = {**state, "calls": state["calls"] + 1}
        mu = float(np.asarray(params["mu"]))
        means, slopes, stale = [], [], []
        for q in self.required_observables:
            if not q.startswith("samples."):
                continue
            sim = q.split(".", 2)[2]  # samples.GaussianSampler.<simulator name>
            x = np.asarray(observables[q])
            mu_ref = observables[f"mu.GaussianSampler.{sim}"]
            var = observables[f"width.GaussianSampler.{sim}"] ** 2
            # log p_mu(x) - log p_ref(x) for normals of one width, up to a constant.
            logw = x * (mu - mu_ref) / var
            w = np.exp(logw - logw.max())
            w /= w.sum()
            if 1.0 / (w**2).sum() / len(x) < MIN_ESS:
                stale.append(sim)
            mean = float(np.sum(w * x))
            means.append(mean)
            slopes.append(float(np.sum(w * (x - mean) ** 2)) / var)  # d<x>/dmu
        if stale:
            state["refreshes"] += len(stale)
            return NotReady(
                f"ESS below {MIN_ESS} for {stale}",
                needs_update=[f"samples.GaussianSampler.{s}" for s in stale],
                state=state,
            )
        mean = float(np.mean(means))
        return ObjectiveResult(
            loss=(mean - self.target) ** 2,
            grads={"mu": np.float32(2.0 * (mean - self.target) * np.mean(slopes))},
            aux={"mean": mean},
            state=state,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="most steps to take")
    parser.add_argument("--target", type=float, default=2.0, help="target mean of x")
    parser.add_argument("--tolerance", type=float, default=0.02, help="|mean - target| to stop")
    args = parser.parse_args(argv)

    # mythos: Simulator.create_n(n=2, name=..., scheduler_hints=SchedulerHints(...))
    sims = GaussianSampler.create_n(2, name="gauss", scheduler_hints=SchedulerHints(num_cpus=1))
    objective = ReweightedMean(
        "mean",
        [q for sim in sims for q in sim.observables()],
        target=args.target,
    )
    params = {"mu": np.float32(0.0)}
    state = None  # mythos: the optimizer state, None on the first step
    # mythos: RayOptimizer(simulators=..., objectives=..., optimizer=...,
    #   aggregate_grad_fn=..., remote_options_default=...) after ray.init(); raysweep
    # connects to Ray itself (address=, runtime_env=) and keeps the units' worker
    # processes across steps until the with-block ends.
    with RayOptimizer(
        simulators=sims,
        objectives=[objective],
        optimizer=optax.sgd(0.3),
        aggregate_grad_fn=lambda grads: grads[0],
        remote_options_default={"num_cpus": 1},
    ) as opt:
        for i in range(args.steps):
            out = opt.step(params, state)
            params, state = out.params, out.state
            mean = out.aux["mean"]["mean"]
            counts = state.component_state["mean"]
            ran = out.record["simulators_run"]
            print(
                f"step {i:2d}  mu={float(params['mu']):.4f}  <x>={mean:.4f}  "
                f"loss={out.losses['mean']:.2e}  simulated={sorted(ran)}  "
                f"refreshes={counts['refreshes']}"
            )
            if abs(mean - args.target) < args.tolerance:
                print(f"converged after {i + 1} steps: mu={float(params['mu']):.3f}")
                return 0
    print(f"not converged after {args.steps} steps", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
