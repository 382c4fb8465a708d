"""Validation of every argument of :func:`raysweep.run`, before Ray or the disk.

Kept apart from :mod:`raysweep.sweep.api` so the rules (and the name rule shared with
sweep files) live in one place and are testable without running anything.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from raysweep.errors import ConstraintError, SpecError
from raysweep.objectives import Objectives
from raysweep.resources import Resources
from raysweep.sweep.callbacks import Callback
from raysweep.sweep.searchers import SearchContext, Searcher, make_searcher
from raysweep.sweep.space import SearchSpace
from raysweep.sweep.space.constraints import ConstraintSet
from raysweep.sweep.stopping import Stop

__all__ = ["Plan", "is_valid_name", "make_plan", "spec_diff"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_PROBE_DRAWS = 2000


def is_valid_name(name: Any) -> bool:
    """Whether ``name`` can name an experiment: it becomes a folder name."""
    return isinstance(name, str) and bool(_NAME.match(name))


@dataclass(frozen=True, slots=True)
class Plan:
    """Validated inputs of one :func:`run` call."""

    name: str
    directory: Path
    space: SearchSpace
    constraints: ConstraintSet
    searcher: Searcher
    hints: Resources
    stop: Stop
    spec: dict[str, Any]


def spec_diff(old: Mapping[str, Any], plan: Plan) -> list[str]:
    new = plan.spec
    diffs: list[str] = []
    for key in ("metric", "mode"):
        if old.get(key) != new[key]:
            diffs.append(f"{key}: {old.get(key)!r} -> {new[key]!r}")
    try:
        diffs += [f"space {line}" for line in SearchSpace.from_json(old["space"]).diff(plan.space)]
    except (KeyError, SpecError):
        diffs.append("space: the stored space is unreadable")
    if list(old.get("constraints") or []) != new["constraints"]:
        diffs.append(f"constraints: {old.get('constraints')} -> {new['constraints']}")
    return diffs


def make_plan(
    objective: Callable[[dict[str, Any]], Any],
    space: Any,
    *,
    metric: str,
    mode: str,
    num_trials: int | None,
    max_concurrent: int | None,
    searcher: str | Searcher,
    searcher_options: Mapping[str, Any] | None,
    resources: Resources | Mapping[str, Any] | None,
    constraints: Sequence[str] | None,
    name: str | None,
    storage: str | Path,
    seed: int | None,
    max_failures: int | None,
    stop: Stop | Mapping[str, Any] | None,
    callbacks: Sequence[Callback],
    timeout_s: float | None,
    runtime_env: Mapping[str, Any] | None,
) -> Plan:
    """Validate every argument of :func:`run`; raises :class:`SpecError`."""
    if not callable(objective):
        raise SpecError(f"objective must be a callable fn(config), got {objective!r}")
    if not isinstance(metric, str) or not metric:
        raise SpecError(f"metric must be a non-empty string, got {metric!r}")
    if mode not in ("min", "max"):
        raise SpecError(f"mode must be 'min' or 'max', got {mode!r}")
    _check_int("num_trials", num_trials, minimum=1)
    _check_int("max_concurrent", max_concurrent, minimum=1)
    _check_int("max_failures", max_failures, minimum=0)
    _check_int("seed", seed, minimum=0)
    if timeout_s is not None and (
        isinstance(timeout_s, bool) or not isinstance(timeout_s, int | float) or not timeout_s > 0
    ):
        raise SpecError(f"timeout_s must be a positive number of seconds, got {timeout_s!r}")
    if runtime_env is not None and not isinstance(runtime_env, Mapping):
        raise SpecError(
            f"runtime_env must be a mapping (e.g. {{'env_vars': {{...}}}}), got {runtime_env!r}"
        )
    for cb in callbacks:
        if not isinstance(cb, Callback):
            raise SpecError(f"callbacks must be raysweep.Callback instances, got {cb!r}")
    if name is None:
        name = f"{getattr(objective, '__name__', 'sweep')}-{time.strftime('%Y%m%d-%H%M%S')}"
    if not is_valid_name(name):
        raise SpecError(
            f"name must be letters, digits, '.', '_' or '-' (a folder name), got {name!r}"
        )
    search_space = SearchSpace.from_any(space)
    constraint_set = ConstraintSet(list(constraints or []), search_space)
    searcher_obj = make_searcher(searcher, searcher_options)
    hints = Resources.coerce(resources)
    stop_obj = Stop.coerce(stop)
    if num_trials is None and searcher_obj.name != "grid" and stop_obj == Stop():
        raise SpecError(
            "num_trials is required (a positive integer) unless searcher='grid' or a stop "
            "condition (time_budget_s, target, patience) bounds the run"
        )
    _probe_feasible(search_space, constraint_set)
    searcher_obj.setup(
        SearchContext(
            space=search_space,
            constraints=constraint_set,
            objectives=Objectives.parse(metric, mode),
            seed=seed,
            num_trials=num_trials,
        )
    )
    spec: dict[str, Any] = {
        "kind": "sweep",
        "name": name,
        "objective": f"{getattr(objective, '__module__', '?')}:"
        f"{getattr(objective, '__qualname__', repr(objective))}",
        "metric": metric,
        "mode": mode,
        "num_trials": num_trials,
        "max_concurrent": max_concurrent,
        "space": search_space.to_json(),
        "constraints": constraint_set.to_json(),
        "searcher": {"name": searcher_obj.name, "options": dict(searcher_options or {})},
        "seed": seed,
        "resources": {
            k: v
            for k, v in {
                "num_cpus": hints.num_cpus,
                "num_gpus": hints.num_gpus,
                "mem_mb": hints.mem_mb,
                "max_retries": hints.max_retries,
                "custom": dict(hints.custom) or None,
            }.items()
            if v is not None
        },
        "timeout_s": timeout_s,
        "max_failures": max_failures,
        "stop": stop_obj.to_json(),
    }
    return Plan(
        name=name,
        directory=Path(storage) / name,
        space=search_space,
        constraints=constraint_set,
        searcher=searcher_obj,
        hints=hints,
        stop=stop_obj,
        spec=spec,
    )


def _check_int(field: str, value: Any, *, minimum: int) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SpecError(f"{field} must be an integer >= {minimum}, got {value!r}")


def _probe_feasible(space: SearchSpace, constraints: ConstraintSet) -> None:
    """Fail at start, not hours later, when no sampled point satisfies the constraints."""
    if not len(constraints):
        return
    import numpy as np

    rng = np.random.default_rng(0)
    for _ in range(_PROBE_DRAWS):
        if constraints.is_feasible(space.sample(rng)):
            return
    raise ConstraintError(
        f"constraints {constraints.to_json()}: none of {_PROBE_DRAWS} random configurations "
        f"satisfies them; the feasible region is empty or too small to sample"
    )
