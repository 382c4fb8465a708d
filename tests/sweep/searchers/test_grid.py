"""Tests of the grid searcher."""

from __future__ import annotations

import itertools
import json

import pytest

from raysweep.errors import RaysweepError, SpecError
from raysweep.sweep.searchers import GridSearcher, Searcher
from raysweep.sweep.space import (
    Fixed,
    SearchSpace,
    choice,
    grid,
    lograndint,
    quniform,
    randint,
    uniform,
)
from tests.sweep.searchers.conformance import SearcherConformance, draw, make_ctx

SMALL = SearchSpace({"a": grid([1, 2, 3]), "b": choice(["x", "y"]), "k": Fixed(0)})


class TestGridConformance(SearcherConformance):
    """GridSearcher passes the shared searcher checks."""

    def make(self, seed: int | None = None) -> Searcher:
        return GridSearcher(seed=seed)


def run(space: SearchSpace, constraints: list[str] | None = None) -> list[dict[str, object]]:
    searcher = GridSearcher(seed=0)
    searcher.setup(make_ctx(space, constraints))
    configs = []
    while (config := searcher.suggest(len(configs))) is not None:
        configs.append(config)
    assert searcher.suggest(len(configs)) is None  # stays exhausted
    return configs


def test_enumerates_the_exact_product_in_order() -> None:
    """Every combination appears once, the last parameter varying fastest."""
    expected = [{"a": a, "b": b, "k": 0} for a, b in itertools.product([1, 2, 3], ["x", "y"])]
    assert run(SMALL) == expected


def test_size_counts_every_point() -> None:
    """size is the number of grid points, infeasible ones included."""
    searcher = GridSearcher()
    searcher.setup(make_ctx(SMALL, ["a != 2"]))
    assert searcher.size == 6
    with pytest.raises(RaysweepError, match=r"setup\(ctx\) must be called"):
        _ = GridSearcher().size


def test_skips_infeasible_points() -> None:
    """Points violating the constraints are skipped, not proposed."""
    assert [(c["a"], c["b"]) for c in run(SMALL, ["a != 2", "b == 'x' or a < 3"])] == [
        (1, "x"),
        (1, "y"),
        (3, "x"),
    ]


def test_all_infeasible_grid_finishes() -> None:
    """A grid whose points all violate the constraints ends at once instead of erroring."""
    assert run(SMALL, ["a > 10"]) == []


def test_enumerates_integer_and_quantized_ranges() -> None:
    """randint, lograndint and quniform ranges are listed value by value, bounds included."""
    space = SearchSpace({"n": randint(1, 3), "u": lograndint(2, 3), "q": quniform(0, 0.3, 0.1)})
    configs = run(space)
    assert len(configs) == 3 * 2 * 4
    assert {c["n"] for c in configs} == {1, 2, 3}
    assert {c["q"] for c in configs} == {0.0, 0.1, 0.2, 0.3}
    assert {(c["n"], c["u"], c["q"]) for c in configs} == set(
        itertools.product([1, 2, 3], [2, 3], [0.0, 0.1, 0.2, 0.3])
    )


def test_huge_enumerated_range_is_refused_naming_the_parameter() -> None:
    """A range that would blow the grid past the limit is a SpecError at setup."""
    space = SearchSpace({"a": grid([1, 2]), "n": randint(0, 100_000)})
    with pytest.raises(SpecError, match=r"parameter 'n': enumerating its 100001 values"):
        GridSearcher().setup(make_ctx(space))


def test_large_explicit_grids_are_not_materialized() -> None:
    """Explicit grids beyond the enumeration limit are allowed and served lazily."""
    space = SearchSpace({f"p{i}": grid(list(range(10))) for i in range(8)})
    searcher = GridSearcher()
    searcher.setup(make_ctx(space))
    assert searcher.size == 10**8
    assert searcher.suggest(0) == {f"p{i}": 0 for i in range(8)}
    assert searcher.suggest(1) == {**{f"p{i}": 0 for i in range(7)}, "p7": 1}


def test_continuous_parameters_are_sampled_per_point() -> None:
    """Continuous parameters get a seeded draw within bounds at each grid point."""
    space = SearchSpace({"a": grid([1, 2, 3, 4]), "x": uniform(5, 6)})
    configs = run(space)
    assert [c["a"] for c in configs] == [1, 2, 3, 4]
    assert all(5 <= c["x"] <= 6 for c in configs)
    assert len({c["x"] for c in configs}) == 4
    assert run(space) == configs


def test_constraints_on_continuous_parameters_redraw_them() -> None:
    """A point infeasible only through a continuous draw is retried with new draws."""
    configs = run(SearchSpace({"a": grid([1, 2, 3]), "x": uniform(0, 1)}), ["x < 0.3"])
    assert [c["a"] for c in configs] == [1, 2, 3]
    assert all(c["x"] < 0.3 for c in configs)


def test_restore_continues_after_the_last_point() -> None:
    """A restored grid proposes exactly the points the original had not yet proposed."""
    original = GridSearcher(seed=0)
    original.setup(make_ctx(SMALL))
    first = draw(original, 4)
    restored = GridSearcher(seed=0)
    restored.setup(make_ctx(SMALL))
    restored.load_state_dict(json.loads(json.dumps(original.state_dict())))
    rest = draw(restored, 3, start=4)
    assert rest[-1] is None
    assert first + rest[:-1] == run(SMALL)


def test_empty_space_has_one_point() -> None:
    """A space of constants is a one-point grid."""
    assert run(SearchSpace({"k": Fixed([1, 2])})) == [{"k": [1, 2]}]


def test_fixed_lists_are_fresh_copies() -> None:
    """Mutating one proposed config does not change the next one."""
    space = SearchSpace({"a": grid([1, 2]), "layers": Fixed([64, 64])})
    searcher = GridSearcher()
    searcher.setup(make_ctx(space))
    first = searcher.suggest(0)
    assert first is not None
    first["layers"].append(1)
    assert searcher.suggest(1) == {"a": 2, "layers": [64, 64]}


def test_only_continuous_parameters_are_refused() -> None:
    """A grid with nothing to enumerate would run one trial: refused at setup, naming why."""
    searcher = GridSearcher()
    with pytest.raises(SpecError, match=r"every free parameter is continuous \(x \(uniform"):
        searcher.setup(make_ctx(SearchSpace({"x": uniform(0, 1), "k": Fixed(3)})))
