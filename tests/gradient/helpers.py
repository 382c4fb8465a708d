"""Simulators and objectives shared by the gradient tests.

They live at module level in an importable module so Ray workers import them by
reference (the test session puts the repository root on the workers' PYTHONPATH),
like user code installed on a cluster. Running this file as a script is the
driver of the crash-and-resume test (see ``test_resume.py``).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from raysweep.gradient import NotReady, Objective, ObjectiveResult, Simulator

#: The quadratic's minimum: ``loss = (mean of observed a - TARGET)**2``.
TARGET = 3.0


class EchoSim(Simulator):
    """Observes the parameter ``a`` itself; the state counts its runs."""

    exposes = ("value",)

    def run(self, params: Any, state: Any) -> tuple[Mapping[str, Any], Any]:
        count = 0 if state is None else int(state)
        return {"value": float(np.asarray(params["a"]))}, count + 1


class CountingSim(Simulator):
    """Observes how many times it has run (its state), and the parameter."""

    exposes = ("count", "value")

    def run(self, params: Any, state: Any) -> tuple[Mapping[str, Any], Any]:
        count = (0 if state is None else int(state)) + 1
        return {"count": count, "value": float(np.asarray(params["a"]))}, count


class Opaque:
    """A user object that JSON cannot hold."""


class OpaqueStateSim(Simulator):
    """Returns a user object (an Opaque) as its state."""

    exposes = ("value",)

    def run(self, params: Any, state: Any) -> tuple[Mapping[str, Any], Any]:
        return {"value": float(np.asarray(params["a"]))}, Opaque()


#: Runs a StallingEchoSim does before it stalls.
STALL_AFTER = 4


class StallingEchoSim(EchoSim):
    """An EchoSim that stalls on its run after :data:`STALL_AFTER`, so a run of more
    steps never finishes and a test can kill it mid-run without racing it."""

    def run(self, params: Any, state: Any) -> tuple[Mapping[str, Any], Any]:
        if state is not None and int(state) >= STALL_AFTER:
            time.sleep(600)  # until killed; pytest's timeout ends the test before this
            raise RuntimeError(f"{self.name} stalled for 600 s and was never killed")
        return super().run(params, state)


class QuadraticObjective(Objective):
    """``(mean of the observed values - TARGET)**2`` and its gradient in ``a``."""

    def compute(self, params: Any, observables: Mapping[str, Any]) -> ObjectiveResult | NotReady:
        mean = float(np.mean([observables[q] for q in self.required_observables]))
        return ObjectiveResult(
            loss=(mean - TARGET) ** 2,
            grads={"a": np.asarray(2.0 * (mean - TARGET))},
            aux={"mean": mean},
        )


class OddCountNotReady(Objective):
    """Not ready while any simulator has run an odd number of times: two rounds a step."""

    def compute(self, params: Any, observables: Mapping[str, Any]) -> ObjectiveResult | NotReady:
        counts = [v for q, v in observables.items() if q.startswith("count.")]
        if any(c % 2 for c in counts):
            return NotReady(f"odd counts {counts}")
        values = [v for q, v in observables.items() if q.startswith("value.")]
        mean = float(np.mean(values))
        return ObjectiveResult(
            loss=(mean - TARGET) ** 2,
            grads={"a": np.asarray(2 * (mean - TARGET))},
            aux={"counts": counts},
        )


class NeverReady(Objective):
    """Always asks for fresh simulation."""

    def compute(self, params: Any, observables: Mapping[str, Any]) -> ObjectiveResult | NotReady:
        return NotReady("ESS 12 < 50")


class StaleTolerant(Objective):
    """Reuses observations until the parameter moved more than 0.5 away from them."""

    def compute(self, params: Any, observables: Mapping[str, Any]) -> ObjectiveResult | NotReady:
        seen = float(np.mean(list(observables.values())))
        a = float(np.asarray(params["a"]))
        if abs(a - seen) > 0.5:
            return NotReady(f"sampled at {seen:.2f}, now {a:.2f}")
        return ObjectiveResult(loss=(a - TARGET) ** 2, grads={"a": np.asarray(2 * (a - TARGET))})


class NaNObjective(Objective):
    """A gradient full of NaN."""

    def compute(self, params: Any, observables: Mapping[str, Any]) -> ObjectiveResult | NotReady:
        return ObjectiveResult(loss=0.0, grads={"a": np.asarray(np.nan)})


class StatefulQuadratic(Objective):
    """The quadratic, stateful: not ready on its very first call, then counting calls.

    The first call ever (state ``None``) answers not ready with a reference; every
    later call reports the exact state it received as aux and returns the next.
    """

    def compute(
        self, params: Any, observables: Mapping[str, Any], state: Any = None
    ) -> ObjectiveResult | NotReady:
        mean = float(np.mean(list(observables.values())))
        if state is None:
            return NotReady("no reference yet", state={"reference": mean, "calls": 1})
        return ObjectiveResult(
            loss=(mean - TARGET) ** 2,
            grads={"a": np.asarray(2.0 * (mean - TARGET))},
            aux={"received": state},
            state={"reference": state["reference"], "calls": state["calls"] + 1},
        )


class RefreshOneSim(Objective):
    """Not ready while the simulator ``refresh`` (a simulator name) has run an odd
    number of times; names only that simulator's ``count`` observable to refresh."""

    def __init__(self, name: str, required_observables: Any, *, refresh: str) -> None:
        super().__init__(name, required_observables)
        self.refresh = refresh

    def compute(self, params: Any, observables: Mapping[str, Any]) -> ObjectiveResult | NotReady:
        wanted = f"count.CountingSim.{self.refresh}"
        if observables[wanted] % 2:
            return NotReady(
                f"{self.refresh} ran {observables[wanted]} times", needs_update=[wanted]
            )
        values = [v for q, v in observables.items() if q.startswith("value.")]
        mean = float(np.mean(values))
        return ObjectiveResult(
            loss=(mean - TARGET) ** 2, grads={"a": np.asarray(2 * (mean - TARGET))}
        )


class ReadsOtherObservable(Objective):
    """Not ready, asking to refresh an observable it does not read."""

    def compute(self, params: Any, observables: Mapping[str, Any]) -> ObjectiveResult | NotReady:
        return NotReady("wants another", needs_update=["value.EchoSim.elsewhere.0"])


class CountedNeverReady(Objective):
    """Never ready; its reason counts its attempts (kept in its state)."""

    def compute(
        self, params: Any, observables: Mapping[str, Any], state: Any = None
    ) -> ObjectiveResult | NotReady:
        attempt = (state or 0) + 1
        return NotReady(f"ESS low on attempt {attempt}", state=attempt)


#: What GpuEnvObjective reports of its process's environment.
GPU_ENV = (
    "CUDA_VISIBLE_DEVICES",
    "XLA_PYTHON_CLIENT_MEM_FRACTION",
    "XLA_PYTHON_CLIENT_PREALLOCATE",
    "RAYSWEEP_GPU_MEMORY_FRACTION",
)


class GpuEnvObjective(Objective):
    """A zero loss whose aux is the GPU-related environment of its host process."""

    def compute(self, params: Any, observables: Mapping[str, Any]) -> ObjectiveResult | NotReady:
        return ObjectiveResult(
            loss=0.0,
            grads={"a": np.asarray(0.0)},
            aux={key: os.environ.get(key) for key in GPU_ENV},
        )


class FlakySim(Simulator):
    """Raises on its first ``fail_times`` runs in a worker process, keyed by marker files."""

    exposes = ("value",)

    def __init__(
        self, name: str | None = None, *, marker_dir: str, fail_times: int, **kwargs: Any
    ) -> None:
        super().__init__(name, **kwargs)
        self.marker_dir = marker_dir
        self.fail_times = fail_times

    def run(self, params: Any, state: Any) -> tuple[Mapping[str, Any], Any]:
        failed = len(os.listdir(self.marker_dir))
        if failed < self.fail_times:
            open(os.path.join(self.marker_dir, f"fail{failed}"), "w").close()
            raise ValueError(f"flaky failure #{failed + 1}")
        return {"value": float(np.asarray(params["a"]))}, state


class EnvSim(Simulator):
    """Reports the environment and Ray context its task saw."""

    exposes = ("env",)

    def run(self, params: Any, state: Any) -> tuple[Mapping[str, Any], Any]:
        import ray

        ctx = ray.get_runtime_context()
        env = {
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
            "RAYSWEEP_TEST_ENV": os.environ.get("RAYSWEEP_TEST_ENV"),
            "JAX_ENABLE_X64": os.environ.get("JAX_ENABLE_X64"),
            "task_name": ctx.get_task_name(),
            "resources": ctx.get_assigned_resources(),  # type: ignore[no-untyped-call]
        }
        return {"env": env}, state


class EnvObjective(Objective):
    """Passes what the simulators saw on as aux, with its own view."""

    def compute(self, params: Any, observables: Mapping[str, Any]) -> ObjectiveResult | NotReady:
        import ray

        seen: dict[str, Any] = dict(observables)
        seen["objective_task"] = ray.get_runtime_context().get_task_name()
        return ObjectiveResult(loss=0.0, grads={"a": np.asarray(0.0)}, aux=seen)


#: Calls each unit made in this process (a process-level cache, as a JIT cache would be).
CALLS_HERE: dict[str, int] = {}


def _count_call(name: str) -> int:
    CALLS_HERE[name] = CALLS_HERE.get(name, 0) + 1
    return CALLS_HERE[name]


class PidSim(Simulator):
    """Observes the process it runs in, how often it ran there, and the parameter."""

    exposes = ("pid", "value")

    def run(self, params: Any, state: Any) -> tuple[Mapping[str, Any], Any]:
        seen = {"pid": os.getpid(), "calls": _count_call(self.name)}
        return {"pid": seen, "value": float(np.asarray(params["a"]))}, state


class PidObjective(Objective):
    """The quadratic, with its own and its simulators' processes and call counts as aux."""

    def compute(self, params: Any, observables: Mapping[str, Any]) -> ObjectiveResult | NotReady:
        values = [v for q, v in observables.items() if q.startswith("value.")]
        mean = float(np.mean(values))
        return ObjectiveResult(
            loss=(mean - TARGET) ** 2,
            grads={"a": np.asarray(2.0 * (mean - TARGET))},
            aux={
                "pid": os.getpid(),
                "calls": _count_call(self.name),
                "sims": {q.split(".", 2)[2]: v for q, v in observables.items() if q[:4] == "pid."},
            },
        )


class SelfKillingSim(EchoSim):
    """An EchoSim whose first run in any process (keyed by a marker file) kills its process."""

    def __init__(self, name: str | None = None, *, marker: str, **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self.marker = marker

    def run(self, params: Any, state: Any) -> tuple[Mapping[str, Any], Any]:
        if not os.path.exists(self.marker):
            open(self.marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
        return super().run(params, state)


class BrokenSim(Simulator):
    """Raises on every run; it exposes two observables, so its failure leaves two refs."""

    exposes = ("value", "extra")

    def run(self, params: Any, state: Any) -> tuple[Mapping[str, Any], Any]:
        raise ValueError(f"{self.name} is broken")


class BlockedSim(EchoSim):
    """Never finishes a run: it is still running when the step fails, until its host ends."""

    def run(self, params: Any, state: Any) -> tuple[Mapping[str, Any], Any]:
        time.sleep(600)  # until its host is killed; pytest's timeout ends the test before this
        raise RuntimeError(f"{self.name} slept 600 s and was never killed")


class WrongGradObjective(Objective):
    """Returns a gradient for a parameter ``b`` with two entries, whatever the params are."""

    def compute(self, params: Any, observables: Mapping[str, Any]) -> ObjectiveResult | NotReady:
        return ObjectiveResult(loss=0.0, grads={"b": np.zeros(2, np.float32)})


def make_units(
    n: int = 3,
    sim_cls: type[Simulator] = EchoSim,
    name: str = "s",
) -> tuple[list[Simulator], list[Objective]]:
    """``n`` simulators and one quadratic objective over all of them."""
    sims = sim_cls.create_n(n, name=name)
    obj = QuadraticObjective(
        name="quad", required_observables=[s.observable("value") for s in sims]
    )
    return list(sims), [obj]


def _crash_driver(storage: str, temp_dir: str, n_steps: int) -> None:
    """Run a stored optimization in its own Ray until killed (the resume test kills it)."""
    import optax
    import ray

    from raysweep.gradient import RayOptimizer
    from tests.gradient import helpers  # by module name, not __main__, so workers import it

    ray.init(
        num_cpus=2,
        include_dashboard=False,
        _temp_dir=temp_dir,
        logging_level=logging.ERROR,
        runtime_env={"env_vars": {"PYTHONPATH": os.environ.get("PYTHONPATH", "")}},
    )
    sims, objs = helpers.make_units(2, helpers.StallingEchoSim, name="slow")
    opt = RayOptimizer(sims, objs, optax.sgd(0.1), name="crash", storage=storage)
    opt.run({"a": np.asarray(0.0, dtype=np.float32)}, n_steps=n_steps)


if __name__ == "__main__":
    _crash_driver(sys.argv[1], sys.argv[2], int(sys.argv[3]))
