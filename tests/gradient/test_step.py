"""RayOptimizer.step: the functional step, stateful objectives, partial refresh, errors."""

from __future__ import annotations

import json
import pickle
import sqlite3
from pathlib import Path
from typing import Any

import jax
import numpy as np
import optax
import pytest
import ray

from raysweep import errors
from raysweep.errors import SpecError
from raysweep.gradient import (
    NotReady,
    ObjectiveResult,
    OptimizerState,
    RayOptimizer,
    Simulator,
    StepFailedError,
    StepOutput,
    tree_mean,
)
from raysweep.store import SQLiteStore
from tests.conftest import process_ended, wait_until
from tests.gradient.helpers import (
    CountedNeverReady,
    CountingSim,
    PidObjective,
    PidSim,
    QuadraticObjective,
    ReadsOtherObservable,
    RefreshOneSim,
    StatefulQuadratic,
    make_units,
)

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_session")]

START = {"a": np.asarray(0.0, dtype=np.float32)}


def test_step_takes_one_sgd_step_to_the_exact_value() -> None:
    """One step from a=0 with SGD(0.1) on (a - 3)^2 lands on a = 0 - 0.1 * (-6) = 0.6."""
    sims, objs = make_units(2)
    with RayOptimizer(sims, objs, optax.sgd(0.1)) as opt:
        out = opt.step(START)
    assert isinstance(out, StepOutput)
    assert out.params["a"].dtype == np.float32
    assert out.params["a"] == np.float32(0.0) - np.float32(0.1) * np.float32(-6.0)
    assert float(out.grads["a"]) == -6.0
    assert out.losses == {"quad": 9.0}
    assert out.aux == {"quad": {"mean": 0.0}}
    assert out.state.step == 1
    assert out.state.component_state == {"s.0": 1, "s.1": 1, "quad": None}
    assert set(out.state.observables) == {"value.EchoSim.s.0", "value.EchoSim.s.1"}
    assert all(isinstance(r, ray.ObjectRef) for r in out.state.observables.values())


def test_two_steps_give_what_run_of_two_steps_gives() -> None:
    """Passing the state back continues exactly: two steps equal run(n_steps=2); the
    processes are kept between steps and end with close()."""
    sims = PidSim.create_n(2, name="p")
    obj = PidObjective(name="pids", required_observables=[q for s in sims for q in s.observables()])
    opt = RayOptimizer(sims, [obj], optax.adam(0.3))
    first = opt.step(START)
    second = opt.step(first.params, first.state)
    pids = [first.aux["pids"]["pid"], second.aux["pids"]["pid"]]
    assert pids[0] == pids[1]  # the same process served both steps
    assert second.aux["pids"]["calls"] == 2
    opt.close()
    wait_until(lambda: process_ended(pids[0]), f"unit process {pids[0]} to end after close()")

    ran = RayOptimizer(sims, [obj], optax.adam(0.3)).run(START, n_steps=2)
    assert float(ran.params["a"]) == float(second.params["a"])
    assert [h["loss"] for h in ran.history] == [
        first.record["loss"],
        second.record["loss"],
    ]
    assert second.state.step == 2
    for x, y in zip(
        jax.tree_util.tree_leaves(ran.opt_state),
        jax.tree_util.tree_leaves(second.state.optimizer_state),
        strict=True,
    ):
        assert np.array_equal(np.asarray(x), np.asarray(y))


def test_stateful_objective_gets_back_exactly_the_state_it_returned(storage: Path) -> None:
    """A stateful objective's state comes back on the not-ready retry, on the next step,
    and after a resume from the stored checkpoint."""
    sims, _ = make_units(2)
    obj = StatefulQuadratic(name="sq", required_observables=[s.observable("value") for s in sims])
    with RayOptimizer(sims, [obj], optax.sgd(0.1)) as opt:
        first = opt.step(START)
        assert first.record["not_ready_retries"] == 1
        # The retry received what the not-ready answer returned.
        assert first.aux["sq"]["received"] == {"reference": 0.0, "calls": 1}
        assert first.state.component_state["sq"] == {"reference": 0.0, "calls": 2}
        second = opt.step(first.params, first.state)
        assert second.aux["sq"]["received"] == {"reference": 0.0, "calls": 2}
        assert second.record["not_ready_retries"] == 0

    stored = RayOptimizer(sims, [obj], optax.sgd(0.1), name="sq", storage=storage)
    stored.run(START, n_steps=2)
    latest = SQLiteStore.open(storage / "sq", readonly=True).latest_checkpoint()
    assert latest is not None
    assert latest.checkpoint["objective_states"]["sq"] == {"reference": 0.0, "calls": 3}
    resumed = RayOptimizer(sims, [obj], optax.sgd(0.1), name="sq", storage=storage, resume=True)
    out = resumed.run(START, n_steps=3)
    assert out.history[2]["aux"]["sq"]["received"] == {"reference": 0.0, "calls": 3}
    assert out.history[2]["not_ready_retries"] == 0


def test_needs_update_reruns_only_the_simulators_exposing_those_observables() -> None:
    """NotReady(needs_update=[one observable]) runs again only the simulator exposing it."""
    sims = CountingSim.create_n(3, name="c")
    obj = RefreshOneSim(
        name="one",
        required_observables=[q for s in sims for q in s.observables()],
        refresh="c.1",
    )
    with RayOptimizer(sims, [obj], optax.sgd(0.1)) as opt:
        out = opt.step(START)
        assert sorted(out.record["simulators_run"]) == ["c.0", "c.1", "c.1", "c.2"]
        assert out.state.component_state == {"c.0": 1, "c.1": 2, "c.2": 1, "one": None}
        out = opt.step(out.params, out.state)
        assert out.state.component_state == {"c.0": 2, "c.1": 4, "c.2": 2, "one": None}

        sims_e, _ = make_units(1)
        bad = ReadsOtherObservable(name="bad", required_observables=[sims_e[0].observable("value")])
    with (
        RayOptimizer(sims_e, [bad], optax.sgd(0.1)) as opt,
        pytest.raises(StepFailedError, match=r"needs_update \['value\.EchoSim\.elsewhere\.0'\]"),
    ):
        opt.step(START)


def test_run_stored_before_objective_states_resumes(storage: Path) -> None:
    """A checkpoint without objective_states (older raysweep) resumes, states from None."""
    sims, _ = make_units(1)
    obj = StatefulQuadratic(name="sq", required_observables=[sims[0].observable("value")])
    RayOptimizer(sims, [obj], optax.sgd(0.1), name="old", storage=storage).run(START, 1)
    con = sqlite3.connect(storage / "old" / "experiment.db")
    (text,) = con.execute("SELECT checkpoint FROM steps WHERE step = 0").fetchone()
    old = {k: v for k, v in json.loads(text).items() if k != "objective_states"}
    con.execute("UPDATE steps SET checkpoint = ? WHERE step = 0", (json.dumps(old),))
    con.commit()
    con.close()
    opt = RayOptimizer(sims, [obj], optax.sgd(0.1), name="old", storage=storage, resume=True)
    out = opt.run(START, n_steps=2)
    assert out.history[1]["not_ready_retries"] == 1  # started over from a None state
    assert out.history[1]["aux"]["sq"]["received"]["calls"] == 1


class Dotted(Simulator):
    """Exposes an observable whose name contains dots, to make qualified names collide."""

    exposes = ("v", "v.Dotted.a")

    def run(self, params: Any, state: Any) -> tuple[dict[str, Any], Any]:
        return {"v": 0.0, "v.Dotted.a": 0.0}, state


def test_construction_errors_name_what_is_missing_or_clashing() -> None:
    """Missing units, optimizer or aggregate function, and shared names fail at once."""
    sims, objs = make_units(1)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"simulators": []}, r"^no simulators given"),
        ({"objectives": []}, r"^no objectives given"),
        ({"optimizer": None}, r"^no optimizer given: pass an optax"),
        ({"aggregate_grad_fn": None}, r"^no aggregate_grad_fn given"),
    ]
    base: dict[str, Any] = {
        "simulators": sims,
        "objectives": objs,
        "optimizer": optax.sgd(0.1),
        "aggregate_grad_fn": tree_mean,
    }
    for change, match in cases:
        with pytest.raises(SpecError, match=match):
            RayOptimizer(**{**base, **change})
    twin = QuadraticObjective(name="s.0", required_observables=[sims[0].observable("value")])
    with pytest.raises(SpecError, match=r"'s\.0' used by EchoSim\(name='s\.0'\), Quadratic"):
        RayOptimizer(sims, [twin], optax.sgd(0.1))
    as_obs = QuadraticObjective(
        name="value.EchoSim.s.0", required_observables=[sims[0].observable("value")]
    )
    with pytest.raises(SpecError, match=r"'value\.EchoSim\.s\.0' used by .*an observable of"):
        RayOptimizer(sims, [as_obs], optax.sgd(0.1))
    dotted = [Dotted(name="a.Dotted.b"), Dotted(name="b")]
    reader = QuadraticObjective(name="q", required_observables=[dotted[1].observable("v")])
    with pytest.raises(
        SpecError,
        match=r"'v\.Dotted\.a\.Dotted\.b' used by an observable of Dotted\(name='a\.Dotted\.b'\), "
        r"an observable of Dotted\(name='b'\)",
    ):
        RayOptimizer(dotted, [reader], optax.sgd(0.1))


def test_unresolvable_step_names_attempts_objective_and_last_reason() -> None:
    """Not-ready answers past the allowed attempts raise a RuntimeError naming all three;
    the state passed in is untouched and the optimizer can step again."""
    sims, objs = make_units(1)
    never = CountedNeverReady(name="ess", required_observables=[sims[0].observable("value")])
    with RayOptimizer(sims, [*objs, never], optax.sgd(0.1)) as opt:
        state = opt.init(START)
        with pytest.raises(RuntimeError) as info:
            opt.step(START, state)
    assert isinstance(info.value, StepFailedError)
    assert isinstance(info.value, errors.StepFailedError)
    assert str(info.value) == (
        "step 0 could not be resolved after 2 attempts: "
        "objective 'ess' is still not ready: ESS low on attempt 2"
    )
    assert state.component_state["ess"] is None
    with RayOptimizer(sims, objs, optax.sgd(0.1)) as opt:
        with pytest.raises(SpecError, match=r"state must be the OptimizerState"):
            opt.step(START, {"step": 0})  # type: ignore[arg-type]
        assert opt.step(START).state.step == 1


def test_states_and_answers_survive_pickling() -> None:
    """An OptimizerState and stateful answers cross process boundaries intact."""
    state = OptimizerState(optax.sgd(0.1).init(START), {"s.0": 3}, {}, 4)
    assert pickle.loads(pickle.dumps(state)) == state
    answer = NotReady("stale", needs_update=["value.EchoSim.s.0"], state={"calls": 2})
    assert pickle.loads(pickle.dumps(answer)) == answer
    result = ObjectiveResult(1.0, {"a": 0.5}, state=[1, 2])
    assert pickle.loads(pickle.dumps(result)).state == [1, 2]
    with pytest.raises(SpecError, match=r"needs_update must be a list .* got 'value'"):
        NotReady("stale", needs_update="value")
