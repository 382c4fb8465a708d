"""Fit the bond rest length of a bead-spring chain to a target mean bond length.

Eight simulators sample the chain in parallel on Ray, one DiffTRe objective
reweights their trajectories to the current parameters and returns the gradient
of ``(⟨mean bond length⟩ - target)²`` with respect to ``r0``; optax takes the
step. Trajectories are reused across steps while their effective sample size
stays above half the frames, so the simulators only run when needed.

Run:  python examples/gradient/fit_chain.py [--steps 40] [--storage runs]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import chain_model as cm
import numpy as np
import optax

from raysweep.gradient import (
    DiffTReObjective,
    OptimizerOutput,
    RayOptimizer,
    SchedulerHints,
    tree_mean,
)

HERE = Path(__file__).resolve().parent


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40, help="maximum optimizer steps")
    parser.add_argument("--sims", type=int, default=8, help="parallel simulators")
    parser.add_argument("--target", type=float, default=1.30, help="target mean bond length")
    parser.add_argument(
        "--tolerance",
        type=float,
        default=0.01,
        help="accepted |mean bond length - target| in the final check",
    )
    parser.add_argument("--r0", type=float, default=0.9, help="initial bond rest length")
    parser.add_argument("--lr", type=float, default=0.03, help="Adam learning rate")
    parser.add_argument("--storage", default="runs", help="experiment folder ('' = none)")
    parser.add_argument("--name", default=None, help="run name (default: fit-chain-<time>)")
    parser.add_argument("--resume", action="store_true", help="continue the stored run --name")
    parser.add_argument("--address", default=None, help="Ray cluster address (default: local)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.resume and not args.name:
        sys.exit("--resume needs --name of the run to continue")
    name = args.name or time.strftime("fit-chain-%Y%m%d-%H%M%S")
    sims = cm.ChainSimulator.create_n(
        args.sims, name="chain", scheduler_hints=SchedulerHints(num_cpus=1)
    )
    objective = DiffTReObjective(
        name="bond-length",
        required_observables=[s.observable("trajectory") for s in sims],
        energy_fn=cm.energy,
        observable_fn=cm.mean_bond_length,
        target=args.target,
        kT=cm.KT,
        min_ess_fraction=0.5,
        map_batch_size=200,
    )
    optimizer = RayOptimizer(
        simulators=sims,
        objectives=[objective],
        optimizer=optax.adam(args.lr, b1=0.5),
        aggregate_grad_fn=tree_mean,
        remote_options_default={"num_cpus": 1},
        name=name,
        storage=args.storage or None,
        resume=args.resume,
        address=args.address,
        # Ship this folder to the workers so they import chain_model. Each unit keeps its
        # worker process for the whole run, so the integrator compiles once per process.
        runtime_env={"working_dir": str(HERE), "excludes": ["runs", "__pycache__", "*.db*"]},
    )
    within: list[bool] = []

    def report(output: OptimizerOutput, step: int) -> tuple[None, bool]:
        data = output.history[-1]
        aux = data["aux"]["bond-length"]
        ran = len(data["simulators_run"])
        print(
            f"step {step:3d}  r0={data['params']['r0']:.4f}  <b>={aux['observable']:.4f}  "
            f"loss={data['loss']:.2e}  ESS={aux['ess_fraction']:.2f}  "
            f"simulated={ran:2d}  {data['timings']['step_s']:.2f}s",
            flush=True,
        )
        within.append(abs(aux["observable"] - args.target) < args.tolerance / 2)
        return None, not (len(within) >= 5 and all(within[-5:]))  # settled: stop early

    start = time.perf_counter()
    out = optimizer.run({"r0": np.float32(args.r0)}, n_steps=args.steps, callback=report)
    elapsed = time.perf_counter() - start
    r0 = float(np.asarray(out.params["r0"]))
    check = cm.reference_mean_bond_length(r0)
    ok = abs(check - args.target) <= args.tolerance
    print(
        f"fitted r0={r0:.4f} after {out.step + 1} steps in {elapsed:.1f}s; an independent "
        f"simulation at r0 gives <b>={check:.4f} (target {args.target}, tolerance "
        f"{args.tolerance}): {'CONVERGED' if ok else 'NOT CONVERGED'}"
    )
    if args.storage:
        print(f"stored in {Path(args.storage) / name}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
