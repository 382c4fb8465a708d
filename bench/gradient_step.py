"""Orchestration cost and parallel speedup of the gradient optimizer.

Run: python bench/gradient_step.py [--steps 30] [--work-s 1.0]

(a) Overhead: 16 trivial simulators and 2 objectives (8 simulators each). For
    every step, the wall time between two callbacks (dispatch, waits, fetches,
    gradient update, SQLite checkpoint, callback) minus the slowest
    simulator + objective chain, whose durations are measured inside the tasks.
    Target: <= 20 ms per step. For reference it also times the same 16 + 2
    task graph written by hand against Ray (no store, no optimizer update): the
    floor that Ray's per-task cost sets on the machine.
(b) Speedup: 8 simulators that each compute ~``--work-s`` seconds (a NumPy loop,
    single-threaded, no sleep) run through RayOptimizer, against the same 8 run
    one after another in this process. Target: speedup >= 0.9 x cores.

Prints figures only; asserts nothing about time (the machine may be shared).
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import optax
import ray

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from raysweep.gradient import (
    NotReady,
    Objective,
    ObjectiveResult,
    OptimizerOutput,
    RayOptimizer,
    Simulator,
)


class TrivialSim(Simulator):
    """Returns a tiny observable at once."""

    exposes = ("x",)

    def run(self, params: Any, state: Any) -> tuple[Mapping[str, Any], Any]:
        return {"x": np.asarray(params["a"])}, state


class BusySim(Simulator):
    """Burns a fixed amount of single-threaded CPU (``iterations`` NumPy passes)."""

    exposes = ("x",)

    def __init__(self, name: str | None = None, *, iterations: int, **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self.iterations = iterations

    def run(self, params: Any, state: Any) -> tuple[Mapping[str, Any], Any]:
        return {"x": busy(self.iterations) * 0 + np.asarray(params["a"])}, state


class MeanObjective(Objective):
    """Quadratic in the mean of its observables."""

    def compute(self, params: Any, observables: Mapping[str, Any]) -> ObjectiveResult | NotReady:
        mean = float(np.mean([np.asarray(v) for v in observables.values()]))
        return ObjectiveResult(loss=(mean - 1.0) ** 2, grads={"a": np.asarray(2 * (mean - 1.0))})


def busy(iterations: int) -> float:
    """Elementwise NumPy work: one core, no BLAS threads."""
    data = np.linspace(0.0, 1.0, 50_000)
    total = 0.0
    for _ in range(iterations):
        total += float(np.sin(data).sum())
    return total


def calibrate(seconds: float) -> int:
    """Iterations of :func:`busy` that take about ``seconds`` here."""
    busy(20)
    start = time.perf_counter()
    busy(200)
    per_iteration = (time.perf_counter() - start) / 200
    return max(1, int(seconds / per_iteration))


def overhead(steps: int, warmup: int, storage: str) -> list[float]:
    """Per-step wall time minus the slowest chain, in ms, after a warm-up run."""
    sims = TrivialSim.create_n(16, name="triv")
    objs = [
        MeanObjective(name=f"obj{i}", required_observables=[s.observable("x") for s in part])
        for i, part in enumerate((sims[:8], sims[8:]))
    ]
    ticks: list[float] = []

    def tick(output: OptimizerOutput, step: int) -> tuple[None, bool]:
        ticks.append(time.perf_counter())
        return None, True

    # Warm-up: Ray starts its worker processes on first demand.
    RayOptimizer(sims, objs, optax.sgd(0.1)).run({"a": np.float32(0.0)}, n_steps=warmup)
    opt = RayOptimizer(
        sims,
        objs,
        optax.sgd(0.1),
        remote_options_default={"num_cpus": 1},
        name="overhead",
        storage=storage,
    )
    start = time.perf_counter()
    out = opt.run({"a": np.float32(0.0)}, n_steps=steps, callback=tick)
    walls = np.diff([start, *ticks])
    result = []
    for wall, data in zip(walls, out.history, strict=True):
        sim_s, obj_s = data["timings"]["simulators_s"], data["timings"]["objectives_s"]
        chain = max(
            max(sim_s[s.name] for s in part) + obj_s[f"obj{i}"]
            for i, part in enumerate((sims[:8], sims[8:]))
        )
        result.append(1000 * (wall - chain))
    return result


def _bare_sim(params: Any, state: Any) -> tuple[Any, Any]:
    return np.asarray(params["a"]), state


def _bare_objective(params: Any, refs: Mapping[str, Any]) -> float:
    return float(np.mean(ray.get(list(refs.values()))))


def bare_ray(steps: int, warmup: int) -> list[float]:
    """The same task graph written directly against Ray (no store, no update), in ms.

    The floor that Ray's per-task cost sets on this machine, for reading (a).
    """
    sim = ray.remote(_bare_sim).options(num_returns=2, num_cpus=1)
    obj = ray.remote(_bare_objective).options(num_cpus=1)
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        outs = [sim.remote({"a": np.float32(0.0)}, None) for _ in range(16)]
        ray.get([o[1] for o in outs])
        parts = (range(8), range(8, 16))
        ray.get([obj.remote({"a": 0.0}, {k: outs[k][0] for k in part}) for part in parts])
        if i >= warmup:
            times.append(1000 * (time.perf_counter() - start))
    return times


def speedup(work_s: float, steps: int) -> tuple[float, float, float]:
    """(sequential s per step, parallel s per step, speedup) for 8 busy simulators."""
    iterations = calibrate(work_s)
    sims = BusySim.create_n(8, name="busy", iterations=iterations)
    obj = MeanObjective(name="mean", required_observables=[s.observable("x") for s in sims])
    start = time.perf_counter()
    for sim in sims:
        sim.run({"a": np.float32(0.0)}, None)
    sequential = time.perf_counter() - start
    ticks: list[float] = []

    def tick(output: OptimizerOutput, step: int) -> tuple[None, bool]:
        ticks.append(time.perf_counter())
        return None, True

    opt = RayOptimizer(sims, [obj], optax.sgd(0.1), remote_options_default={"num_cpus": 1})
    opt.run({"a": np.float32(0.0)}, n_steps=steps + 1, callback=tick)  # first step warms up
    parallel = float(np.mean(np.diff(ticks)))
    return sequential, parallel, sequential / parallel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="measured steps for (a)")
    parser.add_argument("--warmup", type=int, default=10, help="steps of the warm-up run")
    parser.add_argument("--work-s", type=float, default=1.0, help="seconds per busy simulator")
    parser.add_argument("--speedup-steps", type=int, default=3, help="measured steps for (b)")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    ray.init(
        num_cpus=cores,
        include_dashboard=False,
        logging_level=logging.ERROR,
        runtime_env={"env_vars": {"PYTHONPATH": sys.path[0]}},
    )
    with tempfile.TemporaryDirectory() as storage:
        ms = overhead(args.steps, args.warmup, storage)
    print(
        f"overhead_ms_per_step median={statistics.median(ms):.2f} mean={statistics.mean(ms):.2f} "
        f"p90={np.percentile(ms, 90):.2f} steps={len(ms)} simulators=16 objectives=2"
    )
    bare = bare_ray(args.steps, args.warmup)
    print(
        f"bare_ray_ms_per_step median={statistics.median(bare):.2f} "
        f"mean={statistics.mean(bare):.2f} (same 16+2 task graph by hand, for reference)"
    )
    seq, par, ratio = speedup(args.work_s, args.speedup_steps)
    print(f"sequential_s={seq:.2f} parallel_s_per_step={par:.2f}")
    print(f"speedup={ratio:.2f} cores={cores} ratio={ratio / cores:.2f}")
    ray.shutdown()


if __name__ == "__main__":
    main()
