"""Units run in worker processes that live for the whole run: reuse, recovery, cleanup."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import numpy as np
import optax
import pytest

from raysweep.errors import SpecError, StepFailedError
from raysweep.gradient import OptimizerOutput, RayOptimizer, SchedulerHints
from raysweep.store import SQLiteStore
from tests.conftest import process_ended, wait_until
from tests.gradient.helpers import (
    GPU_ENV,
    EchoSim,
    GpuEnvObjective,
    PidObjective,
    PidSim,
    QuadraticObjective,
    SelfKillingSim,
    WrongGradObjective,
    make_units,
)

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_session")]

START = {"a": np.asarray(0.0, dtype=np.float32)}


def _pid_units(n: int, **hints: Any) -> tuple[list[PidSim], PidObjective]:
    sims = PidSim.create_n(n, name="k", scheduler_hints=SchedulerHints(**hints))
    obj = PidObjective(
        name="pids",
        required_observables=[q for s in sims for q in s.observables()],
        scheduler_hints=SchedulerHints(**hints),
    )
    return sims, obj


def test_units_keep_their_process_and_its_caches_across_steps() -> None:
    """With num_cpus=0.5 each unit runs in one process every step, and module state survives."""
    sims, obj = _pid_units(3, num_cpus=0.5)
    out = RayOptimizer(sims, [obj], optax.sgd(0.1)).run(START, n_steps=6)
    aux = [d["aux"]["pids"] for d in out.history]
    assert len({a["pid"] for a in aux}) == 1
    assert aux[0]["pid"] != os.getpid()
    assert [a["calls"] for a in aux] == [1, 2, 3, 4, 5, 6]
    for sim in ("k.0", "k.1", "k.2"):
        assert len({a["sims"][sim]["pid"] for a in aux}) == 1
        assert [a["sims"][sim]["calls"] for a in aux] == [1, 2, 3, 4, 5, 6]


def test_more_units_than_cpus_share_processes_and_still_finish() -> None:
    """Eight one-CPU simulators on four CPUs share a few processes, each unit staying in one."""
    sims, obj = _pid_units(8, num_cpus=1)
    out = RayOptimizer(sims, [obj], optax.sgd(0.1)).run(START, n_steps=3)
    pids = {
        name: {d["aux"]["pids"]["sims"][name]["pid"] for d in out.history}
        for name in (s.name for s in sims)
    }
    assert all(len(seen) == 1 for seen in pids.values())
    assert len({pid for seen in pids.values() for pid in seen}) < 8


def _kill_at(step: int, unit: str, killed: list[int]) -> Any:
    """A callback that SIGKILLs the process of simulator ``unit`` after ``step``."""

    def callback(output: OptimizerOutput, at: int) -> tuple[None, bool]:
        if at == step:
            pid = int(output.observables["pids"]["sims"][unit]["pid"])
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            wait_until(lambda: process_ended(pid), f"process {pid} of {unit} to end")
        return None, True

    return callback


def test_a_killed_process_is_started_again_and_the_call_retried(storage: Path) -> None:
    """A simulator whose process was killed runs again in a new one, using one of its retries."""
    sims, obj = _pid_units(2, num_cpus=1, max_retries=1)
    killed: list[int] = []
    opt = RayOptimizer(sims, [obj], optax.sgd(0.1), name="kill", storage=storage)
    out = opt.run(START, n_steps=4, callback=_kill_at(1, "k.0", killed))
    seen = [d["aux"]["pids"]["sims"]["k.0"] for d in out.history]
    assert [s["pid"] for s in seen[:2]] == killed * 2
    assert seen[2]["pid"] == seen[3]["pid"] != killed[0]
    assert [s["calls"] for s in seen] == [1, 2, 1, 2]  # a new process: its caches start empty
    retries = SQLiteStore.open(storage / "kill", readonly=True).events("retry")
    assert [(e["data"]["unit"], e["data"]["step"]) for e in retries] == [("k.0", 2)]
    assert f"the worker process running 'k.0' (pid {killed[0]}) died" in retries[0]["data"]["error"]


def test_a_killed_process_without_retries_fails_the_step_naming_the_unit() -> None:
    """Without max_retries a lost process fails the next step, naming the unit and the pid."""
    sims, obj = _pid_units(1, num_cpus=1)
    killed: list[int] = []
    with pytest.raises(StepFailedError) as info:
        RayOptimizer(sims, [obj], optax.sgd(0.1)).run(
            START, n_steps=3, callback=_kill_at(0, "k.0", killed)
        )
    assert str(info.value) == (
        f"step 1: simulator 'k.0' failed after 1 attempt(s): ActorDiedError: the worker "
        f"process running 'k.0' (pid {killed[0]}) died; started again"
    )


def test_only_the_call_that_was_running_pays_for_its_process(tmp_path: Path, storage: Path) -> None:
    """Calls queued behind the one that killed their shared process re-run without a retry."""
    hints = {"num_cpus": 4}  # the whole test cluster: one process for every unit
    killer = SelfKillingSim(
        name="killer",
        marker=str(tmp_path / "killed"),
        scheduler_hints=SchedulerHints(max_retries=1, **hints),
    )
    bystander = EchoSim(name="bystander", scheduler_hints=SchedulerHints(**hints))
    obj = QuadraticObjective(
        name="quad",
        required_observables=[killer.observable("value"), bystander.observable("value")],
        scheduler_hints=SchedulerHints(**hints),
    )
    opt = RayOptimizer([killer, bystander], [obj], optax.sgd(0.1), name="share", storage=storage)
    out = opt.run(START, n_steps=2)
    assert len(out.history) == 2
    retries = SQLiteStore.open(storage / "share", readonly=True).events("retry")
    assert [e["data"]["unit"] for e in retries] == ["killer"]


def test_processes_end_when_run_returns_or_is_interrupted() -> None:
    """No unit process outlives run(), whether it returned or raised KeyboardInterrupt."""
    sims, obj = _pid_units(2, num_cpus=1)
    out = RayOptimizer(sims, [obj], optax.sgd(0.1)).run(START, n_steps=1)
    first = {out.history[0]["aux"]["pids"]["pid"]} | {
        s["pid"] for s in out.history[0]["aux"]["pids"]["sims"].values()
    }
    seen: set[int] = set()

    def interrupt(output: OptimizerOutput, step: int) -> tuple[None, bool]:
        aux = output.observables["pids"]
        seen.update({aux["pid"], *(s["pid"] for s in aux["sims"].values())})
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        RayOptimizer(sims, [obj], optax.sgd(0.1)).run(START, n_steps=3, callback=interrupt)
    for pid in first | seen:
        wait_until(lambda pid=pid: process_ended(pid), f"unit process {pid} to end")
    assert len(seen) == 3


def test_gradient_of_the_wrong_structure_names_the_objective_and_both() -> None:
    """A gradient tree unlike the params fails the step in one line naming both structures."""
    sims, _ = make_units(1)
    obj = WrongGradObjective(name="wrong", required_observables=[sims[0].observable("value")])
    with pytest.raises(StepFailedError) as info:
        RayOptimizer(sims, [obj], optax.sgd(0.1)).run(START, n_steps=1)
    assert str(info.value) == (
        "step 0: objective 'wrong' returned a gradient that does not match the params: "
        "gradient {'b': float32[2]}, params {'a': float32[]}"
    )


def test_task_options_that_need_a_fresh_process_per_call_are_refused() -> None:
    """max_calls (a new process after N calls) contradicts warm processes: an error at start."""
    sims, objs = make_units(1)
    opt = RayOptimizer(sims, objs, optax.sgd(0.1), remote_options_default={"max_calls": 1})
    with pytest.raises(SpecError, match=r"s\.0: task options \['max_calls'\] do not apply"):
        opt.run(START, n_steps=1)


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (
            "share",
            {"XLA_PYTHON_CLIENT_MEM_FRACTION": "0.225", "RAYSWEEP_GPU_MEMORY_FRACTION": "0.225"},
        ),
        ("grow", {"XLA_PYTHON_CLIENT_PREALLOCATE": "false"}),
        (None, {}),
    ],
)
def test_gpu_memory_hint_sets_the_limits_in_the_units_process(
    policy: str | None, expected: dict[str, str]
) -> None:
    """A unit on a quarter GPU with ``gpu_memory`` gets JAX's (and PyTorch's) limit in
    its host process, and Ray's CUDA_VISIBLE_DEVICES; without the hint, no limit."""
    sims = EchoSim.create_n(1, name="s")
    obj = GpuEnvObjective(
        name="env",
        required_observables=[sims[0].observable("value")],
        scheduler_hints=SchedulerHints(num_cpus=0.5, num_gpus=0.25, gpu_memory=policy),
    )
    out = RayOptimizer(sims, [obj], optax.sgd(0.1)).run(START, n_steps=1)
    env = out.history[0]["aux"]["env"]
    assert env["CUDA_VISIBLE_DEVICES"] == "0"
    assert {k: v for k, v in env.items() if v is not None and k in GPU_ENV[1:]} == expected
