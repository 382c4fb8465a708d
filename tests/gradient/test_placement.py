"""How many worker processes a run keeps, with which resources, and which units each runs."""

from __future__ import annotations

from types import SimpleNamespace

from raysweep.gradient._placement import demand_of, plan_hosts

ONE_NODE = {"n1": {"CPU": 2.0, "memory": 8e9}}


def _units(stem: str, n: int) -> list[str]:
    return [f"{stem}.{i}" for i in range(n)]


def test_a_host_holds_what_a_task_would() -> None:
    """A host holds one CPU unless told otherwise, plus GPUs, memory and custom resources."""
    assert demand_of({}) == {"CPU": 1.0}
    assert demand_of(
        {"num_cpus": 0, "num_gpus": 0.25, "memory": 1024, "resources": {"disk": 2}}
    ) == {"GPU": 0.25, "memory": 1024.0, "disk": 2.0}
    assert demand_of({"num_cpus": 1, "accelerator_type": "A100"}) == {
        "CPU": 1.0,
        "accelerator_type:A100": 0.001,
    }


def test_every_unit_has_its_own_host_when_all_fit() -> None:
    """Three half-CPU units and an objective on two CPUs get four hosts, one each."""
    plans = plan_hosts([({"num_cpus": 0.5}, [*_units("s", 3), "obj"])], ONE_NODE)
    assert [p.units for p in plans] == [("s.0",), ("s.1",), ("s.2",), ("obj",)]


def test_more_units_than_fit_are_dealt_round_robin() -> None:
    """Eight one-CPU simulators on two CPUs share two hosts, as Ray ran two tasks at a time."""
    plans = plan_hosts([({"num_cpus": 1}, _units("s", 8))], ONE_NODE)
    assert [p.units for p in plans] == [("s.0", "s.2", "s.4", "s.6"), ("s.1", "s.3", "s.5", "s.7")]


def test_fractional_cpus_fit_more_hosts() -> None:
    """Twelve units with num_cpus=0.5 on two CPUs run in four hosts."""
    plans = plan_hosts([({"num_cpus": 0.5}, _units("s", 12))], ONE_NODE)
    assert len(plans) == 4
    assert sorted(u for p in plans for u in p.units) == sorted(_units("s", 12))


def test_groups_that_cannot_each_have_a_host_share_the_larger_ones() -> None:
    """Simulators wanting both CPUs and an objective wanting one share two-CPU hosts."""
    plans = plan_hosts([({"num_cpus": 2}, _units("s", 2)), ({"num_cpus": 1}, ["obj"])], ONE_NODE)
    assert [(p.options["num_cpus"], p.units) for p in plans] == [(2.0, ("s.0", "s.1", "obj"))]


def test_a_split_that_starves_the_crowded_group_is_merged() -> None:
    """Eight 1-CPU simulators beside a 0.5-CPU objective share 1-CPU hosts rather than one."""
    plans = plan_hosts([({"num_cpus": 1}, _units("s", 8)), ({"num_cpus": 0.5}, ["obj"])], ONE_NODE)
    assert len(plans) == 2
    assert {p.options["num_cpus"] for p in plans} == {1}
    assert sorted(len(p.units) for p in plans) == [4, 5]


def test_a_split_that_is_faster_is_kept() -> None:
    """GPU simulators keep their GPU host; the CPU objective gets its own host, not a GPU."""
    free = {"n1": {"CPU": 8.0, "GPU": 1.0}}
    plans = plan_hosts(
        [({"num_cpus": 1, "num_gpus": 1}, _units("s", 4)), ({"num_cpus": 1}, ["obj"])], free
    )
    assert [(p.options.get("num_gpus"), p.units) for p in plans] == [
        (1, ("s.0", "s.1", "s.2", "s.3")),
        (None, ("obj",)),
    ]


def test_hosts_are_packed_per_node() -> None:
    """Two one-CPU nodes do not hold a two-CPU host; two nodes with a GPU each hold two."""
    plans = plan_hosts([({"num_cpus": 2}, _units("s", 3))], {"a": {"CPU": 1.0}, "b": {"CPU": 1.0}})
    assert [p.units for p in plans] == [("s.0", "s.1", "s.2")]  # one host, waiting for room
    two_gpu_nodes = {"a": {"CPU": 4.0, "GPU": 1.0}, "b": {"CPU": 4.0, "GPU": 1.0}}
    plans = plan_hosts([({"num_gpus": 1}, _units("g", 4))], two_gpu_nodes)
    assert [p.units for p in plans] == [("g.0", "g.2"), ("g.1", "g.3")]


def test_a_placement_group_bounds_its_hosts_by_its_bundles() -> None:
    """Units placed in a placement group get as many hosts as its bundles hold."""
    group = SimpleNamespace(id="pg1", bundle_specs=[{"CPU": 1.0}, {"CPU": 1.0}, {"CPU": 1.0}])
    strategy = SimpleNamespace(placement_group=group, placement_group_bundle_index=-1)
    plans = plan_hosts([({"scheduling_strategy": strategy}, _units("s", 5))], {"n": {"CPU": 0.0}})
    assert len(plans) == 3
    one_bundle = SimpleNamespace(placement_group=group, placement_group_bundle_index=1)
    plans = plan_hosts([({"scheduling_strategy": one_bundle}, _units("s", 5))], {})
    assert len(plans) == 1


def test_placements_it_cannot_see_get_a_single_host() -> None:
    """A label selector may rule out nodes: its units share one host, which cannot overbook."""
    plans = plan_hosts([({"label_selector": {"zone": "a"}}, _units("s", 4))], ONE_NODE)
    assert [p.units for p in plans] == [("s.0", "s.1", "s.2", "s.3")]
    pinned = SimpleNamespace(node_id="n1", soft=False)
    plans = plan_hosts([({"scheduling_strategy": pinned}, _units("s", 4))], ONE_NODE)
    assert len(plans) == 2
