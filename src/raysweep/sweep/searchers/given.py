"""Given configurations: exactly the list it was handed, in order, once each.

For runs whose points are decided elsewhere: Hydra's launcher receives the jobs a
Hydra sweeper already chose (``hydra/launcher=raysweep``), and a list of points
from a previous study can be run again as they are. The grid searcher cannot
stand in, because a list of points is in general not a Cartesian product.

The state is the index of the next configuration, so a resumed run proposes only
the ones not yet proposed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from raysweep._checks import describe
from raysweep.errors import SpecError
from raysweep.sweep.searchers._base import SearchContext, Searcher

__all__ = ["GivenSearcher"]


class GivenSearcher(Searcher):
    """Propose each configuration of ``configs`` once, in order, then ``None``.

    Every configuration must lie in the space; one outside it is refused at setup,
    naming its position and what is wrong with it.

    Args:
        configs: the configurations to run, each a mapping of parameter name to value.

    Example:
        >>> from raysweep.objectives import Objectives
        >>> from raysweep.sweep.space import SearchSpace, choice
        >>> from raysweep.sweep.space.constraints import ConstraintSet
        >>> space = SearchSpace({"a": choice([1, 2])})
        >>> searcher = GivenSearcher([{"a": 2}, {"a": 1}])
        >>> ctx = SearchContext(space, ConstraintSet([], space), Objectives.single("loss"), 0)
        >>> searcher.setup(ctx)
        >>> searcher.suggest(0), searcher.suggest(1), searcher.suggest(2)
        ({'a': 2}, {'a': 1}, None)
    """

    name = "configs"
    multi_objective = True  # it ignores the objective

    def __init__(self, configs: Sequence[Mapping[str, Any]] = ()) -> None:
        if isinstance(configs, str | bytes) or not isinstance(configs, Sequence):
            raise SpecError(
                f"configs: expected a list of configurations (mappings), got {describe(configs)}"
            )
        for i, config in enumerate(configs):
            if not isinstance(config, Mapping):
                raise SpecError(f"configs[{i}]: expected a mapping, got {describe(config)}")
        self.configs = [dict(c) for c in configs]
        self._index = 0

    def setup(self, ctx: SearchContext) -> None:
        super().setup(ctx)
        for i, config in enumerate(self.configs):
            problems = ctx.space.problems(config)
            if problems:
                raise SpecError(f"configs[{i}]: {problems[0]}")
        self._index = 0

    def suggest(self, trial_id: int) -> dict[str, Any] | None:
        if self._index >= len(self.configs):
            return None
        self._index += 1
        return dict(self.configs[self._index - 1])

    def state_dict(self) -> dict[str, Any]:
        return {"index": self._index}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        index = state.get("index")
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise SpecError(f"GivenSearcher cannot restore from state {dict(state)!r}")
        self._index = min(index, len(self.configs))
