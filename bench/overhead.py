"""Throughput of raysweep on trivial trials against bare Ray tasks, in one process.

Run: python bench/overhead.py [--trials 2000] [--repeats 3]

Both sides do the same work per trial (evaluate a cheap function of a random
config in a Ray worker) with the same number of tasks in flight (max_concurrent =
cores). raysweep additionally proposes each config, checks it, commits every
state change to SQLite and stores the result. A second bare-Ray figure, all tasks
submitted at once with no concurrency limit, shows the ceiling of Ray itself.
Target: raysweep >= 0.5x the windowed bare-Ray throughput.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from typing import Any

import numpy as np
import ray

import raysweep as rs


def trivial(config: dict[str, Any]) -> float:
    return (config["x"] - 0.5) ** 2 + config["y"]


def bare_windowed(n: int, window: int) -> float:
    """Bare Ray with at most ``window`` tasks in flight (what a hand-written loop does)."""
    task = ray.remote(trivial)
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    inflight: list[Any] = []
    submitted = done = 0
    while done < n:
        while len(inflight) < window and submitted < n:
            inflight.append(task.remote({"x": float(rng.uniform()), "y": float(rng.uniform())}))
            submitted += 1
        ready, inflight = ray.wait(inflight, num_returns=1)
        ray.get(ready)
        done += len(ready)
    return n / (time.perf_counter() - start)


def bare_all_at_once(n: int) -> float:
    task = ray.remote(trivial)
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    ray.get([task.remote({"x": float(rng.uniform()), "y": float(rng.uniform())}) for _ in range(n)])
    return n / (time.perf_counter() - start)


def with_raysweep(n: int, window: int, storage: str, name: str) -> float:
    start = time.perf_counter()
    result = rs.run(
        trivial,
        {"x": rs.uniform(0, 1), "y": rs.uniform(0, 1)},
        num_trials=n,
        max_concurrent=window,
        searcher="random",
        seed=0,
        name=name,
        storage=storage,
        verbose=0,  # the runner alone: no progress display
    )
    elapsed = time.perf_counter() - start
    assert result.count(rs.TrialState.COMPLETED) == n
    return n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    ray.init(num_cpus=cores, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    storage = tempfile.mkdtemp(prefix="raysweep-bench-")
    bare_windowed(200, cores)  # warm the worker pool
    with_raysweep(200, cores, storage, "warmup")
    bare, sweep, ceiling = [], [], []
    for i in range(args.repeats):
        bare.append(bare_windowed(args.trials, cores))
        sweep.append(with_raysweep(args.trials, cores, storage, f"run{i}"))
        ceiling.append(bare_all_at_once(args.trials))
    b, s, c = statistics.median(bare), statistics.median(sweep), statistics.median(ceiling)
    print(f"cores={cores} trials={args.trials} repeats={args.repeats} (medians)")
    print(f"bare_ray_windowed_trials_per_s={b:.0f}")
    print(f"bare_ray_all_at_once_trials_per_s={c:.0f}")
    print(f"raysweep_trials_per_s={s:.0f}")
    print(f"ratio_vs_windowed={s / b:.2f} (target >= 0.5)")
    print(f"ratio_vs_all_at_once={s / c:.2f}")
    ray.shutdown()


if __name__ == "__main__":
    main()
