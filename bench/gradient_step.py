"""Orchestration cost, parallel speedup and warm worker processes of the gradient optimizer.

Run: python bench/gradient_step.py [--steps 30] [--work-s 1.0] [--reuse-steps 12]

(a) Overhead: 16 trivial simulators and 2 objectives (8 simulators each). For
    every step after ``--warmup`` steps, the wall time between two callbacks
    (dispatch, waits, fetches, gradient update, SQLite checkpoint, callback)
    minus the slowest simulator + objective chain, whose durations are measured
    inside the units. Target: <= 20 ms per step. For reference it also times
    the same 16 + 2 task graph written by hand against Ray (no store, no
    optimizer update): the floor that Ray's per-task cost sets on the machine.
(b) Speedup: 8 simulators that each compute ~``--work-s`` seconds (a NumPy loop,
    single-threaded, no sleep) run through RayOptimizer, against the same 8 run
    one after another in this process. Target: speedup >= 0.9 x cores.
(c) Warm processes: 4 simulators and an objective that use JAX (import, a few
    operations, a gradient), with ``num_cpus=0.5`` and with ``num_cpus=1``:
    first step (processes start, JAX loads) and the median and worst of the later
    steps. The later steps should cost the same with either hint.
(d) JIT: 2 simulators of ``examples/gradient/chain_model.py`` (a jitted
    Langevin integrator) with both hints: first step (compiles) against later
    steps (reuse the compiled code).

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
sys.path.insert(1, str(Path(__file__).resolve().parent.parent / "examples" / "gradient"))

from raysweep.gradient import (
    NotReady,
    Objective,
    ObjectiveResult,
    OptimizerOutput,
    RayOptimizer,
    SchedulerHints,
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
    """Per-step wall time minus the slowest chain, in ms, after ``warmup`` steps."""
    sims = TrivialSim.create_n(16, name="triv")
    objs = [
        MeanObjective(name=f"obj{i}", required_observables=[s.observable("x") for s in part])
        for i, part in enumerate((sims[:8], sims[8:]))
    ]
    ticks: list[float] = []

    def tick(output: OptimizerOutput, step: int) -> tuple[None, bool]:
        ticks.append(time.perf_counter())
        return None, True

    opt = RayOptimizer(
        sims,
        objs,
        optax.sgd(0.1),
        remote_options_default={"num_cpus": 1},
        name="overhead",
        storage=storage,
    )
    out = opt.run({"a": np.float32(0.0)}, n_steps=warmup + steps, callback=tick)
    # The first steps start the worker processes; the wall of step i is tick[i] - tick[i-1].
    walls = np.diff(ticks)[warmup - 1 :] if warmup else np.diff(ticks)
    result = []
    for wall, data in zip(walls, out.history[-len(walls) :], strict=True):
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


class JaxSim(Simulator):
    """Uses JAX a little: what makes a fresh worker process slow (import, op compiles)."""

    exposes = ("x", "pid")

    def run(self, params: Any, state: Any) -> tuple[Mapping[str, Any], Any]:
        import jax.numpy as jnp

        x = jnp.sin(jnp.asarray(params["a"]) + jnp.arange(4.0)).sum()
        return {"x": float(x), "pid": os.getpid()}, state


class JaxObjective(Objective):
    """A JAX gradient of the mean of its observables; the processes of all units as aux."""

    def compute(self, params: Any, observables: Mapping[str, Any]) -> ObjectiveResult | NotReady:
        import jax
        import jax.numpy as jnp

        xs = [v for q, v in observables.items() if q.startswith("x.")]
        target = jnp.asarray(xs).mean()
        loss, grad = jax.value_and_grad(lambda a: (a - target) ** 2)(jnp.asarray(params["a"]))
        pids = {q: v for q, v in observables.items() if q.startswith("pid.")}
        return ObjectiveResult(
            loss=float(loss), grads={"a": np.asarray(grad)}, aux={**pids, "objective": os.getpid()}
        )


class BondObjective(Objective):
    """Mean bond length of the chains' frames against 1.3 (NumPy; no gradient to speak of)."""

    def compute(self, params: Any, observables: Mapping[str, Any]) -> ObjectiveResult | NotReady:
        frames = np.concatenate([np.asarray(t.frames) for t in observables.values()])
        bonds = np.linalg.norm(frames[:, 1:] - frames[:, :-1], axis=-1).mean()
        return ObjectiveResult(loss=float((bonds - 1.3) ** 2), grads={"r0": np.float32(0.0)})


def step_times(sims: list[Any], obj: Objective, params: Any, steps: int) -> dict[str, float]:
    """First step, median and worst later step (s) of one run; with the processes each
    unit ran in (most over the units) when the objective reports them as aux."""
    start = time.perf_counter()
    ticks: list[float] = []

    def tick(output: OptimizerOutput, step: int) -> tuple[None, bool]:
        ticks.append(time.perf_counter())
        return None, True

    out = RayOptimizer(sims, [obj], optax.sgd(0.0)).run(params, n_steps=steps, callback=tick)
    walls = np.diff([start, *ticks])
    figures = {
        "first_step_s": float(walls[0]),
        "later_step_median_s": float(np.median(walls[1:])),
        "later_step_max_s": float(np.max(walls[1:])),
    }
    aux = [data["aux"][obj.name] for data in out.history]
    if aux[0]:
        figures["processes_per_unit"] = max(len({a[unit] for a in aux}) for unit in aux[0])
    return figures


def warm_processes(steps: int, cpus: float) -> dict[str, float]:
    """(c): four JAX simulators and a JAX objective, every unit hinted ``num_cpus=cpus``."""
    hints = SchedulerHints(num_cpus=cpus)
    sims = JaxSim.create_n(4, name="jax", scheduler_hints=hints)
    obj = JaxObjective(
        name="jaxobj", required_observables=[s.observable("x") for s in sims], scheduler_hints=hints
    )
    return step_times(sims, obj, {"a": np.float32(0.0)}, steps)


def jitted(steps: int, cpus: float) -> dict[str, float]:
    """(d): two chain simulators (a jitted integrator), every unit hinted ``num_cpus=cpus``."""
    import chain_model

    hints = SchedulerHints(num_cpus=cpus)
    sims = chain_model.ChainSimulator.create_n(2, name="chain", scheduler_hints=hints)
    obj = BondObjective(
        name="bonds",
        required_observables=[s.observable("trajectory") for s in sims],
        scheduler_hints=hints,
    )
    return step_times(sims, obj, {"r0": np.float32(1.0)}, steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="measured steps for (a)")
    parser.add_argument("--warmup", type=int, default=5, help="unmeasured first steps of (a)")
    parser.add_argument("--work-s", type=float, default=1.0, help="seconds per busy simulator")
    parser.add_argument("--speedup-steps", type=int, default=3, help="measured steps for (b)")
    parser.add_argument("--reuse-steps", type=int, default=12, help="steps per run of (c)")
    parser.add_argument("--jit-steps", type=int, default=6, help="steps per run of (d)")
    parser.add_argument("--only", default="abcd", help="sections to run, e.g. 'cd' (default: all)")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    ray.init(
        num_cpus=cores,
        include_dashboard=False,
        logging_level=logging.ERROR,
        runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(sys.path[:2])}},
    )
    if "a" in args.only:
        with tempfile.TemporaryDirectory() as storage:
            ms = overhead(args.steps, args.warmup, storage)
        print(
            f"overhead_ms_per_step median={statistics.median(ms):.2f} "
            f"mean={statistics.mean(ms):.2f} p90={np.percentile(ms, 90):.2f} "
            f"steps={len(ms)} simulators=16 objectives=2"
        )
        bare = bare_ray(args.steps, args.warmup)
        print(
            f"bare_ray_ms_per_step median={statistics.median(bare):.2f} "
            f"mean={statistics.mean(bare):.2f} (same 16+2 task graph by hand, for reference)"
        )
    if "b" in args.only:
        seq, par, ratio = speedup(args.work_s, args.speedup_steps)
        print(f"sequential_s={seq:.2f} parallel_s_per_step={par:.2f}")
        print(f"speedup={ratio:.2f} cores={cores} ratio={ratio / cores:.2f}")
    for section, name, measure, steps in (
        ("c", "jax_units", warm_processes, args.reuse_steps),
        ("d", "jitted_sims", jitted, args.jit_steps),
    ):
        if section not in args.only:
            continue
        for cpus in (0.5, 1.0):
            figures = measure(steps, cpus)
            shown = " ".join(f"{k}={v:.3f}" for k, v in figures.items())
            print(f"{name} num_cpus={cpus:g} steps={steps} {shown}")
    ray.shutdown()


if __name__ == "__main__":
    main()
