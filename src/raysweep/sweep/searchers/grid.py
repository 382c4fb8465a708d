"""Grid search: every combination of the enumerable parameters, once.

Grid, choice and fixed parameters are always crossed; integer and quantized ranges
(randint, lograndint, quniform) are enumerated too, as long as the grid stays at
most :data:`MAX_ENUMERATED_POINTS` points, so a range never silently explodes into
millions of trials. Continuous parameters (uniform, loguniform) cannot be listed,
so, as in Ray Tune, each grid point gets a seeded random draw for them.

Points are decoded from their index (the last parameter varies fastest), so the
grid is never materialized and the state is one integer plus the generator state.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from raysweep.errors import RaysweepError, SpecError
from raysweep.sweep.searchers._base import SearchContext, Searcher
from raysweep.sweep.searchers.random import check_seed, generator_from_state, generator_state
from raysweep.sweep.space.domains import Choice, Fixed

__all__ = ["MAX_ENUMERATED_POINTS", "GridSearcher"]

#: Largest grid that may come from enumerating integer and quantized ranges.
MAX_ENUMERATED_POINTS = 100_000
#: Draws of the continuous parameters tried at one grid point before it is skipped
#: as infeasible (a constraint may depend on them too).
CONTINUOUS_TRIES = 16


class GridSearcher(Searcher):
    """Each point of the Cartesian product once, skipping infeasible ones.

    :meth:`suggest` returns ``None`` once every point was proposed, which ends the
    experiment. Points that violate ``ctx.constraints`` are skipped here, so a grid
    whose points are all infeasible finishes instead of failing.

    Args:
        seed: seeds the draws of continuous parameters; overrides ``ctx.seed``.

    Example:
        >>> from raysweep.sweep.space.constraints import ConstraintSet
        >>> from raysweep.sweep.space import SearchSpace, choice, grid
        >>> space = SearchSpace({"a": grid([1, 2]), "b": choice(["x", "y"])})
        >>> searcher = GridSearcher()
        >>> from raysweep.objectives import Objectives
        >>> constraints = ConstraintSet(["a < 2"], space)
        >>> ctx = SearchContext(space, constraints, Objectives.single("loss"), 0)
        >>> searcher.setup(ctx)
        >>> searcher.size, searcher.suggest(0), searcher.suggest(1), searcher.suggest(2)
        (4, {'a': 1, 'b': 'x'}, {'a': 1, 'b': 'y'}, None)
    """

    name = "grid"
    multi_objective = True  # it ignores the objective, so any number of metrics is fine

    def __init__(self, seed: int | None = None) -> None:
        self.seed = check_seed(seed, "GridSearcher")
        self._order: list[str] = []
        self._axes: list[tuple[str, list[Any]]] = []
        self._size: int | None = None
        self._index = 0
        self._rng = np.random.Generator(np.random.PCG64(seed))

    def setup(self, ctx: SearchContext) -> None:
        super().setup(ctx)
        seed = self.seed if self.seed is not None else ctx.seed
        self._rng = np.random.Generator(np.random.PCG64(seed))
        domains = dict(ctx.space.items())
        explicit = {n: d for n, d in domains.items() if isinstance(d, Choice | Fixed)}
        size = math.prod(d.cardinality() or 1 for d in explicit.values())
        for name, domain in domains.items():
            count = domain.cardinality()
            if count is None or name in explicit:
                continue
            size *= count
            if size > MAX_ENUMERATED_POINTS:
                raise SpecError(
                    f"parameter {name!r}: enumerating its {count} values of {domain} makes "
                    f"the grid {size} points or more (limit {MAX_ENUMERATED_POINTS}); use "
                    "grid([...]) with fewer values, a coarser quniform q, or the random "
                    "or sobol searcher"
                )
        continuous = [n for n, d in domains.items() if d.cardinality() is None]
        if continuous and size == 1 and len(continuous) == len(ctx.space.free_names):
            shown = ", ".join(f"{n} ({domains[n]})" for n in continuous)
            raise SpecError(
                f"searcher 'grid' has nothing to enumerate: every free parameter is "
                f"continuous ({shown}), which a grid draws once per point, so it would run "
                f"one trial; list values with grid([...]) or quniform, or use random or sobol"
            )
        self._size = size
        self._index = 0
        self._set_order(list(domains))

    def _set_order(self, order: list[str]) -> None:
        """Fix the order of axes and draws; the state keeps it, so a resumed grid
        continues the same enumeration even if the space was written in another order."""
        self._order = order
        space = self.ctx.space
        self._axes = [(n, space[n].grid_values() or []) for n in order if space[n].cardinality()]

    @property
    def size(self) -> int:
        """Points in the grid, infeasible ones included."""
        if self._size is None:
            raise RaysweepError("GridSearcher.setup(ctx) must be called before it is used")
        return self._size

    def _grid_point(self, index: int) -> dict[str, Any]:
        point: dict[str, Any] = {}
        for name, values in reversed(self._axes):  # mixed radix, last axis fastest
            index, position = divmod(index, len(values))
            point[name] = values[position]
        return point

    def _complete(self, point: Mapping[str, Any]) -> dict[str, Any]:
        """The full config: grid values, fresh copies of constants, continuous draws."""
        space = self.ctx.space
        values: dict[str, Any] = {}
        for name in self._order:
            if isinstance(space[name], Fixed):
                values[name] = space[name].from_unit(0.0)
            elif name in point:
                values[name] = point[name]
            else:
                values[name] = space[name].from_unit(float(self._rng.random()))
        return {name: values[name] for name in space}

    def suggest(self, trial_id: int) -> dict[str, Any] | None:
        size = self.size  # raises before setup
        has_continuous = len(self._axes) < len(self.ctx.space)
        while self._index < size:
            point = self._grid_point(self._index)
            self._index += 1
            for _ in range(CONTINUOUS_TRIES if has_continuous else 1):
                config = self._complete(point)
                if self.ctx.constraints.is_feasible(config):
                    return config
        return None

    def state_dict(self) -> dict[str, Any]:
        return {"index": self._index, "rng": generator_state(self._rng), "order": self._order}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        index = state.get("index")
        if not isinstance(index, int) or index < 0 or "rng" not in state:
            raise SpecError(f"GridSearcher cannot restore from state {dict(state)!r}")
        self._index = index
        self._rng = generator_from_state(state["rng"], "GridSearcher")
        order = state.get("order")
        if isinstance(order, list) and sorted(order) == sorted(self.ctx.space):
            self._set_order(list(order))
