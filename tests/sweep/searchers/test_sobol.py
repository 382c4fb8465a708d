"""Tests of the Sobol' searcher."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from scipy.stats import qmc

from raysweep.errors import InfeasibleSpaceError, SpecError
from raysweep.sweep.searchers import RandomSearcher, Searcher, SobolSearcher
from raysweep.sweep.space import Fixed, SearchSpace, randint, uniform
from tests.sweep.searchers.conformance import SearcherConformance, draw, make_ctx

CUBE = SearchSpace({"x": uniform(0, 1), "y": uniform(0, 1), "z": uniform(0, 1)})


class TestSobolConformance(SearcherConformance):
    """SobolSearcher passes the shared searcher checks."""

    def make(self, seed: int | None = None) -> Searcher:
        return SobolSearcher(seed=seed)


def points(searcher: Searcher, n: int) -> np.ndarray:
    searcher.setup(make_ctx(CUBE))
    return np.array([[c["x"], c["y"], c["z"]] for c in draw(searcher, n) if c is not None])


def test_covers_the_cube_more_evenly_than_random() -> None:
    """Sobol' points have a lower discrepancy than as many random points."""
    for seed in range(3):
        sobol = qmc.discrepancy(points(SobolSearcher(seed=seed), 128))
        random = qmc.discrepancy(points(RandomSearcher(seed=seed), 128))
        assert sobol < random / 2


def test_unscrambled_sequence_starts_at_the_corner() -> None:
    """Without scrambling the first points are the textbook Sobol' points."""
    got = points(SobolSearcher(scramble=False), 4)
    assert got.tolist() == [
        [0.0, 0.0, 0.0],
        [0.5, 0.5, 0.5],
        [0.75, 0.25, 0.25],
        [0.25, 0.75, 0.75],
    ]


def test_matches_scipy_sequence_without_balance_warnings() -> None:
    """Points come in scipy's order, drawn without its power-of-two balance warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = points(SobolSearcher(seed=0), 100)
    expected = qmc.Sobol(3, rng=np.random.default_rng(0)).random(128)[:100]
    assert np.array_equal(got, expected)


@pytest.mark.parametrize("drawn", [0, 1, 2, 3, 5, 8, 13, 64])
def test_restores_at_any_count(drawn: int) -> None:
    """A searcher restored after any number of points continues with the next ones."""
    original = SobolSearcher(seed=4)
    original.setup(make_ctx(CUBE))
    draw(original, drawn)
    restored = SobolSearcher(seed=4)
    restored.setup(make_ctx(CUBE))
    restored.load_state_dict(json.loads(json.dumps(original.state_dict())))
    assert draw(restored, 9) == draw(original, 9)


def test_stays_within_bounds_and_reaches_both_integer_ends() -> None:
    """Integer parameters reach both inclusive bounds and floats stay inside theirs."""
    space = SearchSpace({"n": randint(1, 3), "x": uniform(-1, 1)})
    searcher = SobolSearcher(seed=0)
    searcher.setup(make_ctx(space))
    configs = [c for c in draw(searcher, 64) if c is not None]
    assert {c["n"] for c in configs} == {1, 2, 3}
    assert all(-1 <= c["x"] <= 1 for c in configs)


def test_no_free_parameters_gives_the_fixed_config() -> None:
    """With only constants the searcher keeps returning them."""
    searcher = SobolSearcher(seed=0)
    searcher.setup(make_ctx(SearchSpace({"k": Fixed("a")})))
    assert draw(searcher, 3) == [{"k": "a"}] * 3


def test_unsatisfiable_constraints_raise() -> None:
    """Constraints no point satisfies end in InfeasibleSpaceError instead of a hang."""
    searcher = SobolSearcher(seed=0)
    searcher.setup(make_ctx(CUBE, ["x + y + z > 3.5"]))
    with pytest.raises(InfeasibleSpaceError, match="sobol searcher drew 1000"):
        searcher.suggest(0)


def test_options_are_checked() -> None:
    """scramble must be a bool and a malformed state is refused."""
    with pytest.raises(SpecError, match="scramble must be true or false"):
        SobolSearcher(scramble="yes")  # type: ignore[arg-type]
    searcher = SobolSearcher(seed=0)
    searcher.setup(make_ctx(CUBE))
    with pytest.raises(SpecError, match="cannot restore"):
        searcher.load_state_dict({"drawn": -1, "seed": 0})


def test_more_dimensions_than_scipy_supports_are_refused() -> None:
    """A space past Sobol's dimension limit is refused at setup, before any trial."""
    from raysweep.sweep.searchers.sobol import MAX_DIMENSIONS

    space = SearchSpace({f"p{i}": uniform(0, 1) for i in range(MAX_DIMENSIONS + 1)})
    with pytest.raises(SpecError, match=f"at most {MAX_DIMENSIONS} free parameters"):
        SobolSearcher(seed=0).setup(make_ctx(space))
