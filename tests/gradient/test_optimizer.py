"""RayOptimizer against the shared local Ray: the loop, not-ready retries, errors, store."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import optax
import pytest

from raysweep.errors import (
    ExperimentExistsError,
    ExperimentMismatchError,
    ExperimentNotFoundError,
    SpecError,
    StepFailedError,
)
from raysweep.gradient import (
    NonFiniteGradientError,
    OptimizerOutput,
    RayOptimizer,
    SchedulerHints,
    tree_mean,
)
from raysweep.store import SQLiteStore
from tests.gradient.helpers import (
    TARGET,
    CountingSim,
    EchoSim,
    EnvObjective,
    EnvSim,
    FlakySim,
    NaNObjective,
    NeverReady,
    OddCountNotReady,
    OpaqueStateSim,
    QuadraticObjective,
    StaleTolerant,
    make_units,
)

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_session")]

START = {"a": np.asarray(0.0, dtype=np.float32)}
STEP_KEYS = {
    "losses",
    "loss",
    "grad_norm",
    "params",
    "timings",
    "simulators_run",
    "not_ready_retries",
    "aux",
}


def test_quadratic_converges_and_steps_are_stored(storage: Path) -> None:
    """A stored run reaches the optimum and stores every step with the documented keys."""
    sims, objs = make_units(3)
    opt = RayOptimizer(
        simulators=sims,
        objectives=objs,
        optimizer=optax.sgd(0.25),
        aggregate_grad_fn=tree_mean,
        remote_options_default={"num_cpus": 1},
        name="quad",
        storage=storage,
    )
    out = opt.run(START, n_steps=12)
    assert float(out.params["a"]) == pytest.approx(TARGET, abs=1e-2)
    assert out.step == 11
    assert len(out.history) == 12
    store = SQLiteStore.open(storage / "quad", readonly=True)
    spec = store.read_spec()
    assert spec["kind"] == "gradient"
    assert spec["name"] == "quad"
    assert spec["simulators"] == ["s.0", "s.1", "s.2"]
    assert spec["objectives"] == ["quad"]
    assert spec["n_steps"] == 12
    assert store.get_meta("status") == "completed"
    steps = store.steps()
    assert [s.step for s in steps] == list(range(12))
    first = steps[0].data
    assert set(first) >= STEP_KEYS
    assert first["losses"] == {"quad": pytest.approx(TARGET**2)}
    assert first["loss"] == pytest.approx(TARGET**2)
    assert first["grad_norm"] == pytest.approx(2 * TARGET)
    assert first["params"] == {"a": 0.0}
    assert set(first["timings"]) >= {"step_s", "simulators_s", "objectives_s"}
    assert set(first["timings"]["simulators_s"]) == {"s.0", "s.1", "s.2"}
    assert sorted(first["simulators_run"]) == ["s.0", "s.1", "s.2"]
    assert first["not_ready_retries"] == 0
    assert first["aux"] == {"quad": {"mean": 0.0}}
    assert steps[1].data["params"]["a"] == pytest.approx(1.5)


def test_not_ready_objective_gets_a_second_round(storage: Path) -> None:
    """An objective that is not ready on its first computation is re-run after fresh simulation."""
    sims = CountingSim.create_n(2, name="c")
    obj = OddCountNotReady(
        name="odd", required_observables=[q for s in sims for q in s.observables()]
    )
    out = RayOptimizer(sims, [obj], optax.sgd(0.25), name="odd", storage=storage).run(
        START, n_steps=3
    )
    for step, data in enumerate(out.history):
        assert data["not_ready_retries"] == 1
        assert sorted(data["simulators_run"]) == ["c.0", "c.0", "c.1", "c.1"]
        assert data["aux"]["odd"]["counts"] == [2 * (step + 1)] * 2
    events = SQLiteStore.open(storage / "odd", readonly=True).events("not_ready")
    assert len(events) == 3
    assert events[0]["data"]["objective"] == "odd"


def test_objective_still_not_ready_fails_the_step_with_its_reason(storage: Path) -> None:
    """A second NotReady in one step fails it, naming the step, the objective and the reason."""
    sims, _ = make_units(2)
    obj = NeverReady(name="density", required_observables=[s.observable("value") for s in sims])
    opt = RayOptimizer(sims, [obj], optax.sgd(0.1), name="never", storage=storage)
    with pytest.raises(
        StepFailedError,
        match=(
            r"^step 0 could not be resolved after 2 attempts: "
            r"objective 'density' is still not ready: ESS 12 < 50$"
        ),
    ):
        opt.run(START, n_steps=2)
    assert SQLiteStore.open(storage / "never", readonly=True).get_meta("status") == "failed"


def test_reusing_objective_resimulates_only_when_not_ready() -> None:
    """Simulators read only by reusing objectives run when observables are missing or stale."""
    sims = EchoSim.create_n(2, name="e")
    obj = StaleTolerant(
        name="stale",
        required_observables=[s.observable("value") for s in sims],
        reuse_observables=True,
    )
    out = RayOptimizer(sims, [obj], optax.sgd(0.1)).run(START, n_steps=6)
    ran = [len(d["simulators_run"]) for d in out.history]
    # a goes 0 -> 0.6 -> 1.08 -> 1.46: stale at step 1 (0.6 from 0), fine at step 2.
    assert ran[:3] == [2, 2, 0]
    assert sum(d["not_ready_retries"] for d in out.history) >= 1
    assert all(
        d["not_ready_retries"] * 2 == n for d, n in zip(out.history[1:], ran[1:], strict=True)
    )


def test_nan_gradient_raises_runtime_error_naming_objective_and_step() -> None:
    """NaN in one objective's gradient is a RuntimeError naming that objective and the step."""
    sims, objs = make_units(2)
    bad = NaNObjective(name="nanobj", required_observables=[sims[0].observable("value")])
    opt = RayOptimizer(sims, [*objs, bad], optax.sgd(0.1))
    with pytest.raises(RuntimeError, match=r"step 0: .*NaN or Inf.*: 'nanobj'\.") as info:
        opt.run(START, n_steps=3)
    assert isinstance(info.value, NonFiniteGradientError)
    assert "'quad'" not in str(info.value)


def test_callback_can_stop_early(storage: Path) -> None:
    """A callback answering (None, False) stops the run after storing that step."""
    seen: list[int] = []

    def callback(output: OptimizerOutput, step: int) -> tuple[None, bool]:
        seen.append(step)
        assert output.losses.keys() == {"quad"}
        return None, step < 2

    sims, objs = make_units(2)
    out = RayOptimizer(sims, objs, optax.sgd(0.1), name="stop", storage=storage).run(
        START, n_steps=10, callback=callback
    )
    assert seen == [0, 1, 2]
    assert out.stopped_early
    assert out.step == 2
    store = SQLiteStore.open(storage / "stop", readonly=True)
    assert len(store.steps()) == 3
    assert store.get_meta("status") == "stopped"


def test_callback_modified_output_steers_the_next_step() -> None:
    """Params returned by the callback are the ones the next step evaluates."""

    def callback(output: OptimizerOutput, step: int) -> tuple[OptimizerOutput, bool]:
        return dataclasses.replace(output, params={"a": np.asarray(10.0, np.float32)}), True

    sims, objs = make_units(1)
    out = RayOptimizer(sims, objs, optax.sgd(0.1)).run(START, n_steps=2, callback=callback)
    assert out.history[1]["params"] == {"a": 10.0}


def test_callback_reads_aux_and_fetches_observables_lazily() -> None:
    """output.observables holds objective aux and simulator observables fetched on access."""
    got: dict[str, Any] = {}

    def callback(output: OptimizerOutput, step: int) -> tuple[None, bool]:
        got["aux"] = output.observables["quad"]["mean"]
        got["value"] = output.observables["s.1"]["value"]
        got["keys"] = sorted(output.observables)
        return None, True

    sims, objs = make_units(2)
    RayOptimizer(sims, objs, optax.sgd(0.1)).run(START, n_steps=1, callback=callback)
    assert got == {"aux": 0.0, "value": 0.0, "keys": ["quad", "s.0", "s.1"]}


def _no_answer(output: OptimizerOutput, step: int) -> Any:
    return None


def test_callback_with_wrong_return_is_a_clear_error() -> None:
    """A callback that returns no (output, keep_going) pair is reported, not misread."""
    sims, objs = make_units(1)
    with pytest.raises(SpecError, match="callback must return"):
        RayOptimizer(sims, objs, optax.sgd(0.1)).run(START, n_steps=2, callback=_no_answer)


def test_failing_simulator_is_retried_then_succeeds(tmp_path: Path, storage: Path) -> None:
    """A simulator whose code raises is re-run up to max_retries times before failing."""
    (tmp_path / "markers").mkdir()
    sim = FlakySim(
        name="flaky",
        marker_dir=str(tmp_path / "markers"),
        fail_times=1,
        scheduler_hints=SchedulerHints(max_retries=1),
    )
    obj = QuadraticObjective(name="q", required_observables=[sim.observable("value")])
    out = RayOptimizer([sim], [obj], optax.sgd(0.1), name="flaky", storage=storage).run(
        START, n_steps=2
    )
    assert len(out.history) == 2
    retries = SQLiteStore.open(storage / "flaky", readonly=True).events("retry")
    assert [e["data"]["unit"] for e in retries] == ["flaky"]
    assert "flaky failure #1" in retries[0]["data"]["error"]


def test_simulator_failing_past_retries_fails_the_step(tmp_path: Path) -> None:
    """After its retries a failing simulator fails the step, naming it and its exception."""
    sim = FlakySim(
        name="flaky",
        marker_dir=str(tmp_path),
        fail_times=5,
        scheduler_hints=SchedulerHints(max_retries=1),
    )
    obj = QuadraticObjective(name="q", required_observables=[sim.observable("value")])
    with pytest.raises(
        StepFailedError,
        match=(
            r"step 0: simulator 'flaky' failed after 2 attempt\(s\): ValueError: flaky failure #2"
        ),
    ):
        RayOptimizer([sim], [obj], optax.sgd(0.1)).run(START, n_steps=1)


def test_tasks_get_hints_names_and_environment() -> None:
    """Tasks are named after their unit, get hint resources, OMP_NUM_THREADS and env vars."""
    sim = EnvSim(name="envsim", scheduler_hints=SchedulerHints(num_cpus=2, mem_mb=8))
    obj = EnvObjective(name="envobj", required_observables=[sim.observable("env")])
    got: dict[str, Any] = {}

    def callback(output: OptimizerOutput, step: int) -> tuple[None, bool]:
        got.update(output.observables["envobj"])
        return None, True

    opt = RayOptimizer(
        [sim],
        [obj],
        optax.sgd(0.1),
        remote_options_default={"num_cpus": 1},
        runtime_env={"env_vars": {"JAX_ENABLE_X64": "True"}},
    )
    assert opt.options["envsim"] == {"num_cpus": 2, "memory": 8 * 1024 * 1024}
    assert opt.options["envobj"] == {"num_cpus": 1}
    opt.run(START, n_steps=1, callback=callback)
    env = got["env.EnvSim.envsim"]
    assert env["task_name"] == "envsim"
    assert env["OMP_NUM_THREADS"] == "2"
    assert env["RAYSWEEP_TEST_ENV"] == "from-job"
    assert env["JAX_ENABLE_X64"] == "True"
    assert env["resources"]["memory"] == 8 * 1024 * 1024
    assert got["objective_task"] == "envobj"


def test_invalid_task_options_fail_before_anything_runs(storage: Path) -> None:
    """Reserved or unknown Ray options are rejected before the experiment is created."""
    sims, objs = make_units(1)
    with pytest.raises(SpecError, match="set by raysweep"):
        RayOptimizer(
            sims,
            objs,
            optax.sgd(0.1),
            remote_options_default={"name": "x"},
            name="bad",
            storage=storage,
        ).run(START, n_steps=1)
    with pytest.raises(SpecError, match="invalid Ray task options"):
        RayOptimizer(sims, objs, optax.sgd(0.1), remote_options_default={"cpus": 1}).run(
            START, n_steps=1
        )
    assert not SQLiteStore.exists(storage / "bad")


def test_constructor_rejects_bad_arguments() -> None:
    """Bad optimizer, storage without a name and resume without storage fail at once."""
    sims, objs = make_units(1)
    with pytest.raises(SpecError, match="optax GradientTransformation"):
        RayOptimizer(sims, objs, optimizer="adam")
    with pytest.raises(SpecError, match="storage needs a name"):
        RayOptimizer(sims, objs, optax.sgd(0.1), storage="runs")
    with pytest.raises(SpecError, match="resume=True needs storage"):
        RayOptimizer(sims, objs, optax.sgd(0.1), resume=True)


def test_existing_experiment_is_never_overwritten(storage: Path) -> None:
    """A second run under a stored name without resume is refused."""
    sims, objs = make_units(1)
    RayOptimizer(sims, objs, optax.sgd(0.1), name="once", storage=storage).run(START, n_steps=1)
    with pytest.raises(ExperimentExistsError, match="resume=True"):
        RayOptimizer(sims, objs, optax.sgd(0.1), name="once", storage=storage).run(START, 1)
    assert len(SQLiteStore.open(storage / "once", readonly=True).steps()) == 1


def test_resume_checks_the_stored_run(storage: Path) -> None:
    """Resume needs a stored run with the same simulator and objective names."""
    sims, objs = make_units(2)
    with pytest.raises(ExperimentNotFoundError):
        RayOptimizer(sims, objs, optax.sgd(0.1), name="r", storage=storage, resume=True).run(
            START, 1
        )
    RayOptimizer(sims, objs, optax.sgd(0.1), name="r", storage=storage).run(START, n_steps=1)
    other, objs3 = make_units(3)
    with pytest.raises(ExperimentMismatchError, match=r"simulators: stored \['s.0', 's.1'\]"):
        RayOptimizer(other, objs3, optax.sgd(0.1), name="r", storage=storage, resume=True).run(
            START, 2
        )


def test_resume_continues_after_the_last_stored_step(storage: Path) -> None:
    """A resumed run starts at the next step with the stored params, optimizer and sim states."""
    sims = CountingSim.create_n(2, name="c")
    obj = QuadraticObjective(name="q", required_observables=[s.observable("value") for s in sims])
    opt = optax.adam(0.5)
    first = RayOptimizer(sims, [obj], opt, name="cont", storage=storage).run(START, n_steps=3)
    resumed = RayOptimizer(sims, [obj], opt, name="cont", storage=storage, resume=True).run(
        START, n_steps=5
    )
    assert len(resumed.history) == 5
    assert resumed.history[3]["params"]["a"] == pytest.approx(float(first.params["a"]))
    straight = RayOptimizer(sims, [obj], opt).run(START, n_steps=5)
    assert float(resumed.params["a"]) == pytest.approx(float(straight.params["a"]), rel=1e-6)
    store = SQLiteStore.open(storage / "cont", readonly=True)
    latest = store.latest_checkpoint()
    assert latest is not None
    assert latest.checkpoint["simulator_states"] == {"c.0": 5, "c.1": 5}
    assert [e["kind"] for e in store.events() if e["kind"] in ("started", "resumed")] == [
        "started",
        "resumed",
    ]


def test_state_that_json_cannot_hold_is_reset_on_resume(storage: Path) -> None:
    """A simulator state that is not plain data restarts as None on resume, with an event."""
    sims, objs = make_units(1, OpaqueStateSim)
    RayOptimizer(sims, objs, optax.sgd(0.1), name="opaque", storage=storage).run(START, 1)
    out = RayOptimizer(sims, objs, optax.sgd(0.1), name="opaque", storage=storage, resume=True).run(
        START, n_steps=2
    )
    assert len(out.history) == 2
    events = SQLiteStore.open(storage / "opaque", readonly=True).events("state_reset")
    assert [e["data"] for e in events] == [{"simulator": "s.0", "type": "Opaque"}]


def test_resume_auto_starts_then_continues(storage: Path) -> None:
    """resume='auto' starts a run that is not stored and continues one that is."""
    sims = CountingSim.create_n(1, name="c")
    obj = QuadraticObjective(name="q", required_observables=[s.observable("value") for s in sims])
    opt = optax.adam(0.5)
    first = RayOptimizer(sims, [obj], opt, name="auto", storage=storage, resume="auto")
    assert len(first.run(START, n_steps=2).history) == 2
    again = RayOptimizer(sims, [obj], opt, name="auto", storage=storage, resume="auto")
    assert len(again.run(START, n_steps=3).history) == 3
    kinds = [e["kind"] for e in SQLiteStore.open(storage / "auto", readonly=True).events()]
    assert [k for k in kinds if k in ("started", "resumed")] == ["started", "resumed"]
    with pytest.raises(SpecError, match=r"^resume: expected True, False or 'auto'"):
        RayOptimizer(sims, [obj], opt, name="x", storage=storage, resume="yes")
