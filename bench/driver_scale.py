"""How many trials per second the driver alone can handle, with many in flight.

Run: python bench/driver_scale.py [--trials 20000] [--in-flight 1000] [--profile]

The trials run on the simulated backend (random durations on a virtual clock,
a trivial objective), so what is measured is the driver itself: the runner
loop, the random searcher, the constraint and space checks, and one commit of
the real SQLite store (in a temporary folder) per loop iteration. Durations are
continuous, so almost every completion arrives alone and costs one iteration
and one commit: the worst case for the driver.

Prints completions per wall-clock second and the process's peak RSS, the last
line as JSON: {"completions_per_s": ..., "peak_rss_mb": ...}.
Target: >= 5000 completions/s and <= 300 MB.

--profile runs the same sweep under cProfile and prints the 25 most expensive
functions (cumulative) before the figures; the profiler slows everything down,
so the figures of a profiled run are not the benchmark's.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import random
import resource
import sys
import tempfile
import time
from collections.abc import Mapping
from typing import Any

import raysweep as rs
from raysweep.sweep.execution import SimulatedBackend

SPACE = {"x": rs.uniform(-2.0, 2.0), "y": rs.loguniform(1e-4, 1.0), "layers": rs.randint(1, 8)}


def objective(config: Mapping[str, Any]) -> float:
    return float((config["x"] - 0.5) ** 2 + config["y"] * config["layers"])


def sweep(trials: int, in_flight: int, storage: str) -> tuple[rs.Result, float]:
    """Run the sweep; return its result and the wall-clock seconds it took."""
    rng = random.Random(0)
    backend = SimulatedBackend(
        workers=in_flight, duration=lambda config: rng.expovariate(1 / 600.0)
    )
    start = time.perf_counter()
    result = rs.run(
        objective,
        SPACE,
        num_trials=trials,
        max_concurrent=in_flight,
        searcher="random",
        seed=0,
        name="scale",
        storage=storage,
        timeout_s=24 * 3600.0,  # never reached; a real sweep sets one, so its cost is counted
        max_failures=100,  # likewise
        backend=backend,  # run() takes the backend's virtual clock
        verbose=0,  # the driver alone: no progress display
    )
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--trials", type=int, default=20_000)
    parser.add_argument("--in-flight", type=int, default=1_000)
    parser.add_argument("--profile", action="store_true", help="print a cProfile summary")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="raysweep-scale-") as storage:
        if args.profile:
            profiler = cProfile.Profile()
            result, elapsed = profiler.runcall(sweep, args.trials, args.in_flight, storage)
            pstats.Stats(profiler, stream=sys.stdout).sort_stats("cumulative").print_stats(25)
        else:
            result, elapsed = sweep(args.trials, args.in_flight, storage)
    completed = result.count(rs.TrialState.COMPLETED)
    if completed != args.trials:
        raise SystemExit(f"expected {args.trials} completed trials, got {completed}")
    rate = completed / elapsed
    # ru_maxrss is in KiB on Linux (bytes on macOS).
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak_mb = peak / 2**20 if sys.platform == "darwin" else peak / 2**10
    print(f"{completed} trials, {args.in_flight} in flight, {elapsed:.2f} s wall")
    print(f"completions/s: {rate:,.0f} (target >= 5,000)")
    print(f"peak RSS: {peak_mb:.0f} MB (target <= 300)")
    print(json.dumps({"completions_per_s": round(rate, 1), "peak_rss_mb": round(peak_mb, 1)}))


if __name__ == "__main__":
    main()
