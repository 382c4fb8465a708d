"""Which persistent worker process (a *host*) runs which unit: the plan, without Ray.

A unit's imports, JIT caches and other process-level state only survive from one
step to the next if the unit runs in the same process every step. So a run keeps
a few long-lived hosts (Ray actors) and sends each unit to the same one every
step. A host holds its resources (the unit's hints) for the whole run, which is
why there cannot simply be one host per unit: eight simulators with
``num_cpus=1`` on a 2-core laptop would leave six hosts waiting forever for a
CPU. Instead, units whose hosts would be created with the same options form a
group, and each group gets as many hosts as the free resources hold at once
(per node, at least one, at most one per unit), the groups taking turns so the
most crowded group grows first. Units are dealt round-robin over their group's
hosts, so parallelism is what Ray gave the same units as tasks.

Kept free of Ray so the plan is tested without a cluster.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["HostPlan", "demand_of", "plan_hosts"]

#: Ray counts resources in steps of 1e-4; anything smaller is rounding.
_EPS = 1e-6


@dataclass(frozen=True, slots=True)
class HostPlan:
    """One host to create: the options of its actor and the units it runs."""

    options: Mapping[str, Any]
    units: tuple[str, ...]


def demand_of(options: Mapping[str, Any]) -> dict[str, float]:
    """The resources a host created with these actor options holds while it lives."""
    wanted: dict[str, float] = {"CPU": float(options.get("num_cpus", 1) or 0)}
    if options.get("num_gpus"):
        wanted["GPU"] = float(options["num_gpus"])
    if options.get("memory"):
        wanted["memory"] = float(options["memory"])
    for key, amount in dict(options.get("resources") or {}).items():
        wanted[str(key)] = float(amount)
    if options.get("accelerator_type"):
        wanted[f"accelerator_type:{options['accelerator_type']}"] = 0.001
    return {key: amount for key, amount in wanted.items() if amount > 0}


def _placement_group(options: Mapping[str, Any]) -> tuple[Any, int]:
    """The placement group the options name (or None) and the bundle index (-1: any)."""
    strategy = options.get("scheduling_strategy")
    group = getattr(strategy, "placement_group", None)
    if group is not None:
        return group, int(getattr(strategy, "placement_group_bundle_index", -1))
    if options.get("placement_group") not in (None, "default"):
        return options["placement_group"], int(options.get("placement_group_bundle_index", -1))
    return None, -1


class _Bins:
    """Free resources of the places a host can go: nodes, or bundles of a placement group."""

    def __init__(self, free: Mapping[str, Mapping[str, float]]) -> None:
        self.free = {key: dict(resources) for key, resources in free.items()}
        self.nodes = list(free)

    def places(self, options: Mapping[str, Any]) -> tuple[list[str], bool]:
        """Where a host with these options may go, and whether more than one makes sense."""
        group, index = _placement_group(options)
        if group is not None:
            specs = list(getattr(group, "bundle_specs", None) or [])
            gid = repr(getattr(group, "id", id(group)))
            keys = [f"pg:{gid}:{i}" for i in range(len(specs))]
            for key, spec in zip(keys, specs, strict=True):
                self.free.setdefault(key, {k: float(v) for k, v in dict(spec).items()})
            return (keys if index < 0 else keys[index : index + 1]), bool(keys)
        strategy = options.get("scheduling_strategy")
        node = getattr(strategy, "node_id", None)
        if node is not None and not getattr(strategy, "soft", False):
            return [str(node)], str(node) in self.free
        # A label selector or a fallback may rule out nodes we cannot see: one host only.
        return self.nodes, not (options.get("label_selector") or options.get("fallback_strategy"))

    def take(self, places: Sequence[str], wanted: Mapping[str, float]) -> bool:
        """Reserve ``wanted`` on the first place that holds it; False if none does."""
        for key in places:
            free = self.free.get(key, {})
            if all(free.get(name, 0.0) + _EPS >= amount for name, amount in wanted.items()):
                for name, amount in wanted.items():
                    free[name] = free.get(name, 0.0) - amount
                return True
        return False


#: Options that say how much a host holds; the others say where and how it runs.
_AMOUNTS = ("num_cpus", "num_gpus", "memory", "resources")


def _merged(groups: Sequence[tuple[Mapping[str, Any], Sequence[str]]]) -> list[Any]:
    """Groups that differ only in amounts, joined under the largest amount of each."""
    joined: dict[str, tuple[dict[str, Any], list[str]]] = {}
    for options, units in groups:
        rest = {k: v for k, v in options.items() if k not in _AMOUNTS}
        key = repr(sorted((k, repr(v)) for k, v in rest.items()))
        into, names = joined.setdefault(key, (dict(options), []))
        names.extend(units)
        for name in ("num_cpus", "num_gpus", "memory"):
            if options.get(name) is not None:
                into[name] = max(float(into.get(name) or 0), float(options[name]))
        extra = dict(into.get("resources") or {})
        for name, amount in dict(options.get("resources") or {}).items():
            extra[name] = max(float(extra.get(name, 0)), float(amount))
        if extra:
            into["resources"] = extra
    return list(joined.values())


def _sized(
    groups: Sequence[tuple[Mapping[str, Any], Sequence[str]]],
    free: Mapping[str, Mapping[str, float]],
) -> tuple[list[int], bool]:
    """Hosts per group, and whether every group's first host fits."""
    bins = _Bins(free)
    wanted = [demand_of(options) for options, _ in groups]
    counts = [1] * len(groups)
    growable: list[int] = []
    fits = True
    # The biggest hosts first: they are the hardest to fit once smaller ones took a node.
    for g in sorted(range(len(groups)), key=lambda g: -sum(wanted[g].values())):
        places, many = bins.places(groups[g][0])
        if not bins.take(places, wanted[g]):
            fits = False
        elif many:
            growable.append(g)
    while growable:
        g = max(growable, key=lambda g: (len(groups[g][1]) / counts[g], -g))
        places, _ = bins.places(groups[g][0])
        if counts[g] >= len(groups[g][1]) or not bins.take(places, wanted[g]):
            growable.remove(g)
            continue
        counts[g] += 1
    return counts, fits


def plan_hosts(
    groups: Sequence[tuple[Mapping[str, Any], Sequence[str]]],
    free: Mapping[str, Mapping[str, float]],
) -> list[HostPlan]:
    """Hosts for groups of units, sized to the free resources.

    Groups that differ only in amounts (simulators with ``num_cpus=1``, an
    objective with ``num_cpus=0.5``) may instead share hosts that hold the
    larger amounts, the way tasks share the free CPUs by taking turns. That is
    chosen when it needs fewer rounds of calls per step: when a host per group
    does not fit, or when the split leaves the crowded group few hosts. A host
    that does not fit even then waits for resources, as a task would.

    Args:
        groups: ``(actor options, unit names)``; units with equal options belong
            together, since a host runs any of them with the same resources.
        free: node id -> free resources (``{"CPU": 2.0, "GPU": 1.0, ...}``).

    Returns:
        The hosts: one per unit while they fit, at least one per group.

    Example:
        >>> plans = plan_hosts([({"num_cpus": 1}, ["s.0", "s.1", "s.2"])], {"n": {"CPU": 2}})
        >>> [p.units for p in plans]
        [('s.0', 's.2'), ('s.1',)]
    """
    candidates = [list(groups)]
    merged = _merged(groups)
    if len(merged) < len(groups):
        candidates.append(merged)
    scored = []
    for i, candidate in enumerate(candidates):
        counts, fits = _sized(candidate, free)
        rounds = max(
            math.ceil(len(units) / count)
            for (_, units), count in zip(candidate, counts, strict=True)
        )
        scored.append(((not fits, rounds, i), candidate, counts))  # the split wins ties
    _, chosen, counts = min(scored, key=lambda item: item[0])
    plans = []
    for (host_options, units), count in zip(chosen, counts, strict=True):
        for i in range(min(count, len(units))):
            plans.append(HostPlan(options=host_options, units=tuple(units[i::count])))
    return plans
