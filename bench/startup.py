"""How long ``raysweep.run`` takes to its first completed trial on a warm Ray.

A user's first impression is the time from ``run()`` to the first result.
Measured here, in one process on a Ray instance that is already up (as in a
notebook, or a second run of a script under ``ray.init``): the first completed
trial of a trivial objective through ``raysweep.run`` (checks, store, report
channel, dispatch, first result), against a bare Ray task defined afresh (so it
is exported like raysweep's trial body). Target: run()'s own start, the
difference, under 0.3 s.

Run: ``python bench/startup.py [--repeats 7]``; the last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from typing import Any

import ray

import raysweep as rs


class _FirstCompletion(rs.Callback):
    def __init__(self) -> None:
        self.at: float | None = None

    def on_trial_complete(self, trial: rs.Trial) -> None:
        if self.at is None:
            self.at = time.perf_counter()


def trivial(config: dict[str, Any]) -> float:
    return float(config["x"])


def bare_first_result() -> float:
    """A task defined now (so Ray exports it), submitted, its result fetched."""

    def task(x: float) -> float:
        return x

    started = time.perf_counter()
    ray.get(ray.remote(task).options(num_cpus=1).remote(1.0))
    return time.perf_counter() - started


def raysweep_first_result(storage: str, index: int) -> tuple[float, float]:
    """Seconds to the first completed trial, and to run()'s return."""
    first = _FirstCompletion()
    started = time.perf_counter()
    rs.run(
        trivial,
        {"x": rs.uniform(0.0, 1.0)},
        num_trials=1,
        name=f"startup-{index}",
        storage=storage,
        callbacks=[first],
        verbose=0,
    )
    done = time.perf_counter()
    assert first.at is not None
    return first.at - started, done - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    ray.get(ray.remote(lambda: 0).remote())  # a worker up: "warm"
    storage = tempfile.mkdtemp(prefix="raysweep-startup-")
    # The first call in a process also pays for imports and exporting the report
    # actor's class; it is shown apart, the medians are of the calls after it.
    first_bare = bare_first_result()
    first_run, _ = raysweep_first_result(storage, -1)
    print(
        f"first call in this process: bare Ray {first_bare * 1000:.0f} ms, "
        f"run() {first_run * 1000:.0f} ms"
    )
    bare, first, total = [], [], []
    for i in range(args.repeats):
        bare.append(bare_first_result())
        to_first, to_return = raysweep_first_result(storage, i)
        first.append(to_first)
        total.append(to_return)
    figures = {
        "bare_ray_first_result_s": statistics.median(bare),
        "run_first_result_s": statistics.median(first),
        "run_return_s": statistics.median(total),
        "run_own_start_s": statistics.median(f - b for f, b in zip(first, bare, strict=True)),
        "first_call_bare_s": first_bare,
        "first_call_run_s": first_run,
    }
    for key, value in list(figures.items())[:4]:
        print(f"{key}: {value * 1000:.0f} ms (median of {args.repeats})")
    print(json.dumps({k: round(v, 4) for k, v in figures.items()}))
    ray.shutdown()


if __name__ == "__main__":
    main()
