"""Sobol' search: a scrambled low-discrepancy sequence over the free parameters.

With the same budget, Sobol' points cover the unit cube more evenly than random
ones (no clumps, no large gaps), which makes small budgets go further and is a good
start for model-based searchers. Each free parameter is one coordinate, mapped to
its domain by :meth:`SearchSpace.from_unit`.

Points are generated in blocks whose sizes keep every running total a power of
two (1, 1, 2, 4, 8, ...), the only way to draw from scipy's generator without its
balance warning, and the state is just the number of points drawn (plus the
scrambling seed): a restore regenerates the block it is in.
"""

from __future__ import annotations

import inspect
import secrets
from collections.abc import Mapping
from typing import Any

import numpy as np

from raysweep.errors import RaysweepError, SpecError
from raysweep.sweep.searchers._base import SearchContext, Searcher
from raysweep.sweep.searchers.random import check_seed, first_feasible

__all__ = ["MAX_DIMENSIONS", "SobolSearcher"]


#: Most dimensions SciPy's Sobol' engine has direction numbers for.
MAX_DIMENSIONS = 21201


class SobolSearcher(Searcher):
    """Scrambled Sobol' points over the free parameters, seeded and resumable.

    Args:
        seed: scrambling seed; overrides the experiment seed (``ctx.seed``) when
            given. Without either, a seed is drawn and kept in the state, so a
            resumed experiment still continues the same sequence.
        scramble: scramble the sequence (recommended; unscrambled it starts at
            the corner 0, 0, ...).

    Example:
        >>> from raysweep.sweep.space.constraints import ConstraintSet
        >>> from raysweep.sweep.space import SearchSpace, uniform
        >>> space = SearchSpace({"x": uniform(0, 1), "y": uniform(0, 1)})
        >>> searcher = SobolSearcher(scramble=False)
        >>> from raysweep.objectives import Objectives
        >>> ctx = SearchContext(space, ConstraintSet(None, space), Objectives.single("loss"), 0)
        >>> searcher.setup(ctx)
        >>> [searcher.suggest(i) for i in range(2)]
        [{'x': 0.0, 'y': 0.0}, {'x': 0.5, 'y': 0.5}]
    """

    name = "sobol"
    multi_objective = True  # it ignores the objective, so any number of metrics is fine
    # Every free parameter gets a coordinate; from_unit leaves out inactive ones.
    conditional = True

    def __init__(self, seed: int | None = None, scramble: bool = True) -> None:
        self.seed = check_seed(seed, "SobolSearcher")
        if not isinstance(scramble, bool):
            raise SpecError(f"SobolSearcher scramble must be true or false, got {scramble!r}")
        self.scramble = scramble
        self._seed: int | None = None
        self._order: list[str] = []
        self._drawn = 0
        self._engine: Any = None
        self._block = np.empty((0, 0))
        self._block_start = 0

    def setup(self, ctx: SearchContext) -> None:
        super().setup(ctx)
        seed = self.seed if self.seed is not None else ctx.seed
        self._seed = seed if seed is not None else secrets.randbits(63)
        # Which coordinate drives which parameter; kept in the state, so a resumed
        # experiment continues the same design even if the space was reordered.
        self._order = list(ctx.space.free_names)
        if len(self._order) > MAX_DIMENSIONS:
            raise SpecError(
                f"searcher 'sobol' supports at most {MAX_DIMENSIONS} free parameters (SciPy's "
                f"Sobol' limit), the space has {len(self._order)}; use the random searcher"
            )
        self._reset(drawn=0)

    def _reset(self, drawn: int) -> None:
        self._drawn = drawn
        self._engine = None
        self._block = np.empty((0, len(self.ctx.space.free_names)))
        self._block_start = 0

    def _new_engine(self) -> Any:
        from scipy.stats import qmc  # scipy is heavy: imported on first use

        # scipy >= 1.15 names the generator argument `rng`; older versions `seed`.
        key = "rng" if "rng" in inspect.signature(qmc.Sobol).parameters else "seed"
        rng = np.random.default_rng(self._seed)
        return qmc.Sobol(len(self.ctx.space.free_names), scramble=self.scramble, **{key: rng})

    def _point(self, index: int) -> list[float]:
        """The ``index``-th point of the sequence (0-based)."""
        offset = index - self._block_start
        if not 0 <= offset < len(self._block):
            # The block holding `index` starts at the largest power of two <= index
            # and is as long as its start (except the first two, of one point each).
            start = 1 << (index.bit_length() - 1) if index else 0
            if self._engine is None or self._engine.num_generated != start:
                self._engine = self._new_engine()
                if start:  # scipy refuses fast_forward(0)
                    self._engine.fast_forward(start)
            self._block = self._engine.random_base2(max(start, 1).bit_length() - 1)
            self._block_start, offset = start, index - start
        return [float(u) for u in self._block[offset]]

    def _draw(self) -> dict[str, Any]:
        space = self.ctx.space
        index, self._drawn = self._drawn, self._drawn + 1
        if not space.free_names:
            return space.from_unit([])
        coords = dict(zip(self._order, self._point(index), strict=True))
        return space.from_unit([coords[name] for name in space.free_names])

    def suggest(self, trial_id: int) -> dict[str, Any] | None:
        if self._seed is None:
            raise RaysweepError("SobolSearcher.setup(ctx) must be called before it is used")
        return first_feasible(self._draw, self.ctx, self.name)

    def state_dict(self) -> dict[str, Any]:
        return {"seed": self._seed, "drawn": self._drawn, "order": self._order}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        seed, drawn = state.get("seed"), state.get("drawn")
        if not isinstance(seed, int) or not isinstance(drawn, int) or drawn < 0:
            raise SpecError(f"SobolSearcher cannot restore from state {dict(state)!r}")
        self._seed = seed
        order = state.get("order")
        if isinstance(order, list) and sorted(order) == sorted(self.ctx.space.free_names):
            self._order = list(order)
        self._reset(drawn=drawn)
