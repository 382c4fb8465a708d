"""Random search: every free parameter drawn independently and uniformly.

The baseline every other searcher has to beat, and often a hard one to beat. Its
whole state is the generator state, stored with each trial, so a resumed
experiment continues the exact sequence instead of repeating points.

Also home of the helpers the other searchers share: seed checks, a JSON-safe form
of a numpy generator state, and bounded rejection of infeasible configurations.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from raysweep._checks import expect_seed
from raysweep.errors import InfeasibleSpaceError, RaysweepError, SpecError
from raysweep.sweep.searchers._base import SearchContext, Searcher

__all__ = ["MAX_DRAWS", "RandomSearcher"]

#: Configurations a searcher draws for one suggestion before it declares the
#: constraints unsatisfiable (raising InfeasibleSpaceError instead of hanging).
MAX_DRAWS = 1000


def check_seed(seed: Any, owner: str) -> int | None:
    """``seed`` checked by the one seed rule; the message names ``owner``'s seed."""
    try:
        return expect_seed(seed)
    except SpecError as exc:
        raise SpecError(f"{owner} seed: {exc}") from None


def generator_state(rng: np.random.Generator) -> dict[str, Any]:
    """The PCG64 state of ``rng`` as JSON-safe values.

    The 128-bit integers are written in hex: a JSON reader that maps numbers to
    doubles (or SQLite's ``json_extract``) would otherwise round them.
    """
    state = rng.bit_generator.state
    return {
        "bit_generator": str(state["bit_generator"]),
        "state": format(int(state["state"]["state"]), "x"),
        "inc": format(int(state["state"]["inc"]), "x"),
        "has_uint32": int(state["has_uint32"]),
        "uinteger": int(state["uinteger"]),
    }


def generator_from_state(state: Mapping[str, Any], owner: str) -> np.random.Generator:
    """The generator :func:`generator_state` describes."""
    try:
        if state["bit_generator"] != "PCG64":
            raise ValueError(f"bit generator {state['bit_generator']!r} is not PCG64")
        bit_generator = np.random.PCG64()
        bit_generator.state = {
            "bit_generator": "PCG64",
            "state": {"state": int(state["state"], 16), "inc": int(state["inc"], 16)},
            "has_uint32": int(state["has_uint32"]),
            "uinteger": int(state["uinteger"]),
        }
    except (KeyError, TypeError, ValueError) as exc:
        raise SpecError(f"{owner} cannot restore its generator from {state!r}: {exc}") from None
    return np.random.Generator(bit_generator)


def first_feasible(
    draw: Callable[[], dict[str, Any]], ctx: SearchContext, owner: str
) -> dict[str, Any]:
    """The first drawn configuration that satisfies ``ctx.constraints``.

    Filtering here rather than leaving it to the runner keeps the searcher's own
    state in step with what it proposed, and bounds the search for a feasible
    point, so unsatisfiable constraints fail with a clear error.
    """
    if not len(ctx.constraints):
        return draw()
    for _ in range(MAX_DRAWS):
        config = draw()
        if ctx.constraints.is_feasible(config):
            return config
    raise InfeasibleSpaceError(
        f"the {owner} searcher drew {MAX_DRAWS} configurations and none satisfied the "
        f"constraints {ctx.constraints.to_json()}; they may be unsatisfiable in this space"
    )


class RandomSearcher(Searcher):
    """Independent uniform draws (in each domain's scale), seeded and resumable.

    Args:
        seed: overrides the experiment seed (``ctx.seed``) when given.

    Example:
        >>> from raysweep.sweep.space.constraints import ConstraintSet
        >>> from raysweep.sweep.space import SearchSpace, uniform
        >>> space = SearchSpace({"x": uniform(0, 1)})
        >>> searcher = RandomSearcher(seed=0)
        >>> from raysweep.objectives import Objectives
        >>> ctx = SearchContext(space, ConstraintSet(None, space), Objectives.single("loss"), None)
        >>> searcher.setup(ctx)
        >>> 0 <= searcher.suggest(0)["x"] <= 1
        True
    """

    name = "random"
    multi_objective = True  # it ignores the objective, so any number of metrics is fine
    # Every free parameter gets a coordinate; from_unit leaves out inactive ones.
    conditional = True

    def __init__(self, seed: int | None = None) -> None:
        self.seed = check_seed(seed, "RandomSearcher")
        self._rng: np.random.Generator | None = None
        self._order: list[str] = []

    def setup(self, ctx: SearchContext) -> None:
        super().setup(ctx)
        seed = self.seed if self.seed is not None else ctx.seed
        self._rng = np.random.Generator(np.random.PCG64(seed))
        # Which draw goes to which parameter; kept in the state, so a resumed
        # experiment continues the same sequence even if the space was reordered.
        self._order = list(ctx.space.free_names)

    def _generator(self) -> np.random.Generator:
        if self._rng is None:
            raise RaysweepError("RandomSearcher.setup(ctx) must be called before it is used")
        return self._rng

    def _draw(self) -> dict[str, Any]:
        space = self.ctx.space
        units = self._generator().random(len(self._order)).tolist()
        coords = dict(zip(self._order, units, strict=True))
        return space.from_unit([coords[name] for name in space.free_names])

    def suggest(self, trial_id: int) -> dict[str, Any] | None:
        self._generator()
        return first_feasible(self._draw, self.ctx, self.name)

    def state_dict(self) -> dict[str, Any]:
        return {"rng": generator_state(self._generator()), "order": self._order}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if "rng" not in state:
            raise SpecError(f"RandomSearcher state needs an 'rng' entry, got {dict(state)!r}")
        self._rng = generator_from_state(state["rng"], "RandomSearcher")
        order = state.get("order")
        if isinstance(order, list) and sorted(order) == sorted(self.ctx.space.free_names):
            self._order = list(order)
