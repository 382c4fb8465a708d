"""Names, wiring validation and pickling of the gradient units."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pytest

from raysweep.errors import SpecError
from raysweep.gradient import (
    DiffTReObjective,
    NotReady,
    ObjectiveResult,
    SampledTrajectory,
    SchedulerHints,
)
from raysweep.gradient.units import validate_units
from tests.gradient.helpers import CountingSim, EchoSim, QuadraticObjective, make_units


def _energy(x: Any, params: dict[str, float]) -> Any:
    return 0.5 * params["k"] * x * x


def _square(x: Any) -> Any:
    return x * x


def test_create_n_names_instances_and_sets_replica() -> None:
    """create_n makes name.0 … name.{n-1}, each knowing its index."""
    sims = EchoSim.create_n(3, name="md", scheduler_hints=SchedulerHints(num_cpus=2))
    assert [s.name for s in sims] == ["md.0", "md.1", "md.2"]
    assert [s.replica for s in sims] == [0, 1, 2]
    assert all(s.scheduler_hints.num_cpus == 2 for s in sims)


def test_qualified_observable_name_is_observable_class_and_name() -> None:
    """An observable is known as <observable>.<class>.<simulator name>."""
    sim = EchoSim.create_n(4, name="md")[3]
    assert sim.observable("value") == "value.EchoSim.md.3"
    assert CountingSim(name="c").observables() == ["count.CountingSim.c", "value.CountingSim.c"]


def test_unknown_observable_is_an_error_listing_the_exposed_ones() -> None:
    """Asking for an observable a simulator does not expose names what it does expose."""
    with pytest.raises(SpecError, match=r"does not expose 'trajectory'.*\['value'\]"):
        EchoSim(name="x").observable("trajectory")


def test_duplicate_names_across_simulators_and_objectives_are_named() -> None:
    """A name used by a simulator and an objective is an error naming both."""
    sim = EchoSim(name="dup")
    obj = QuadraticObjective(name="dup", required_observables=[sim.observable("value")])
    with pytest.raises(SpecError, match=r"'dup' used by EchoSim\(name='dup'\), QuadraticObjective"):
        validate_units([sim], [obj])


def test_duplicate_simulator_names_from_two_create_n_calls() -> None:
    """Two create_n calls with one stem collide and the error names every clash."""
    sims = EchoSim.create_n(2, name="md") + EchoSim.create_n(2, name="md")
    obj = QuadraticObjective(name="q", required_observables=[sims[0].observable("value")])
    with pytest.raises(SpecError, match=r"'md\.0' used by.*'md\.1' used by"):
        validate_units(sims, [obj])


def test_required_observable_nobody_exposes_names_objective_and_observable() -> None:
    """A required observable without a producer names the objective and the observable."""
    sims, _ = make_units(2)
    obj = QuadraticObjective(name="q", required_observables=["value.EchoSim.s.7"])
    with pytest.raises(SpecError, match=r"objective 'q' requires 'value\.EchoSim\.s\.7'"):
        validate_units(sims, [obj])


def test_validate_units_maps_observables_to_their_simulator() -> None:
    """The producer map routes every qualified observable to its simulator."""
    sims, objs = make_units(2)
    assert validate_units(sims, objs) == {"value.EchoSim.s.0": "s.0", "value.EchoSim.s.1": "s.1"}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"required_observables": []}, "requires no observables"),
        ({"required_observables": "value.EchoSim.s.0"}, "must be a list"),
        ({"name": " padded", "required_observables": ["a"]}, "surrounding spaces"),
    ],
)
def test_objective_construction_errors(kwargs: dict[str, object], match: str) -> None:
    """Bad objective arguments fail at construction with a message saying what is expected."""
    with pytest.raises(SpecError, match=match):
        QuadraticObjective(**kwargs)  # type: ignore[arg-type]


def test_simulator_without_exposes_is_an_error() -> None:
    """A simulator class that exposes nothing is rejected when instantiated."""

    class Silent(EchoSim):
        exposes = ()  # type: ignore[assignment]

    with pytest.raises(SpecError, match=r"Silent\.exposes must be a non-empty tuple"):
        Silent(name="x")


def test_create_n_rejects_non_positive_counts() -> None:
    """create_n needs at least one instance."""
    with pytest.raises(SpecError, match="n >= 1"):
        EchoSim.create_n(0, name="x")


def test_units_and_results_survive_pickling() -> None:
    """Everything shipped to or from Ray tasks round-trips through pickle."""
    sims, objs = make_units(2)
    diff = DiffTReObjective(
        name="d",
        required_observables=[sims[0].observable("value")],
        energy_fn=_energy,
        observable_fn=_square,
        target=1.0,
        map_batch_size=4,
    )
    values = [
        sims[1],
        objs[0],
        diff,
        NotReady("ESS 12 < 50"),
        ObjectiveResult(loss=1.5, grads={"a": np.arange(3.0)}, aux={"d": 0.8}),
        SampledTrajectory(frames=np.zeros((2, 3)), params={"k": 1.0}),
        SchedulerHints(num_cpus=1, num_gpus=0.25, mem_mb=64, custom={"ray": {"max_calls": 1}}),
    ]
    for value in values:
        back = pickle.loads(pickle.dumps(value))
        assert type(back) is type(value)
    assert pickle.loads(pickle.dumps(sims[1])).replica == 1
    assert pickle.loads(pickle.dumps(values[3])) == NotReady("ESS 12 < 50")
    result = pickle.loads(pickle.dumps(values[4]))
    np.testing.assert_array_equal(result.grads["a"], np.arange(3.0))
    assert pickle.loads(pickle.dumps(diff)).map_batch_size == 4


def test_task_results_survive_pickling() -> None:
    """What simulator and objective tasks return to the driver round-trips through pickle."""
    from raysweep.gradient._host import ObjectiveDone, SimulatorDone
    from raysweep.gradient._ray_exec import TaskFailed

    values = [
        SimulatorDone(state={"x": np.ones(2)}, elapsed_s=0.5),
        ObjectiveDone(result=NotReady("stale"), elapsed_s=0.1),
        ObjectiveDone(result=ObjectiveResult(loss=1.0, grads={"a": 1.0}), elapsed_s=0.1),
        TaskFailed(message="ValueError: boom", retryable=True),
    ]
    for value in values:
        back = pickle.loads(pickle.dumps(value))
        assert type(back) is type(value)
    assert pickle.loads(pickle.dumps(values[1])) == values[1]
    assert pickle.loads(pickle.dumps(values[3])) == values[3]
