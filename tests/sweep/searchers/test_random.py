"""Tests of the random searcher, and of make_searcher."""

from __future__ import annotations

import json
from typing import Any

import pytest

from raysweep.errors import InfeasibleSpaceError, RaysweepError, SpecError
from raysweep.sweep.searchers import (
    GridSearcher,
    RandomSearcher,
    Searcher,
    SobolSearcher,
    make_searcher,
)
from raysweep.sweep.space import SearchSpace, lograndint, randint, uniform
from tests.sweep.searchers.conformance import SearcherConformance, draw, make_ctx


class TestRandomConformance(SearcherConformance):
    """RandomSearcher passes the shared searcher checks."""

    def make(self, seed: int | None = None) -> Searcher:
        return RandomSearcher(seed=seed)


def test_samples_stay_within_bounds_and_reach_both_integer_ends() -> None:
    """Floats stay inside their bounds and inclusive integer bounds are both drawn."""
    space = SearchSpace({"x": uniform(-2, 3), "n": randint(1, 3), "u": lograndint(2, 16)})
    searcher = RandomSearcher(seed=0)
    searcher.setup(make_ctx(space))
    configs = [c for c in draw(searcher, 500) if c is not None]
    assert all(-2 <= c["x"] <= 3 for c in configs)
    assert {c["n"] for c in configs} == {1, 2, 3}
    assert {c["u"] for c in configs} == set(range(2, 17))


def test_state_is_the_generator_state_in_json() -> None:
    """The state is the PCG64 state, with its 128-bit integers written as hex strings."""
    searcher = RandomSearcher(seed=0)
    searcher.setup(make_ctx(SearchSpace({"x": uniform(0, 1)})))
    state = searcher.state_dict()["rng"]
    assert state["bit_generator"] == "PCG64"
    assert isinstance(state["state"], str)
    int(state["state"], 16)
    json.dumps(state)


def test_unsatisfiable_constraints_raise_instead_of_hanging() -> None:
    """Constraints no draw satisfies end in InfeasibleSpaceError naming them."""
    space = SearchSpace({"x": uniform(0, 1)})
    searcher = RandomSearcher(seed=0)
    searcher.setup(make_ctx(space, ["x > 2"]))
    with pytest.raises(InfeasibleSpaceError, match=r"none satisfied the constraints \['x > 2'\]"):
        searcher.suggest(0)


def test_empty_space_gives_the_constants() -> None:
    """With no free parameter every suggestion is the fixed config."""
    searcher = RandomSearcher(seed=0)
    searcher.setup(make_ctx(SearchSpace.from_any({"k": 1})))
    assert draw(searcher, 2) == [{"k": 1}, {"k": 1}]


def test_use_before_setup_is_an_error() -> None:
    """Suggesting before setup() raises a clear error."""
    with pytest.raises(RaysweepError, match=r"setup\(ctx\) must be called"):
        RandomSearcher().suggest(0)


@pytest.mark.parametrize("seed", [-1, 1.5, "7", True])
def test_bad_seeds_are_refused(seed: Any) -> None:
    """Seeds must be non-negative integers."""
    with pytest.raises(SpecError, match=r"RandomSearcher seed: expected an integer in \[0, "):
        RandomSearcher(seed=seed)


def test_bad_state_is_refused() -> None:
    """A state that does not describe a generator is a clear error."""
    searcher = RandomSearcher(seed=0)
    searcher.setup(make_ctx(SearchSpace({"x": uniform(0, 1)})))
    with pytest.raises(SpecError, match="cannot restore its generator"):
        searcher.load_state_dict({"rng": {"bit_generator": "MT19937"}})
    with pytest.raises(SpecError, match="needs an 'rng' entry"):
        searcher.load_state_dict({})


def test_make_searcher_builds_each_named_searcher() -> None:
    """Names map to the searcher classes, with options passed to the constructor."""
    assert type(make_searcher("random")) is RandomSearcher
    assert type(make_searcher("grid")) is GridSearcher
    sobol = make_searcher("sobol", {"seed": 3, "scramble": False})
    assert isinstance(sobol, SobolSearcher)
    assert (sobol.seed, sobol.scramble) == (3, False)


def test_make_searcher_refuses_unknown_names() -> None:
    """An unknown name is an error with the closest valid one and the valid ones."""
    with pytest.raises(
        SpecError, match=r"unknown searcher 'tpee' \(did you mean 'tpe'\?\); valid names: auto, "
    ):
        make_searcher("tpee")
    with pytest.raises(SpecError, match="a searcher is a name"):
        make_searcher(3)  # type: ignore[arg-type]


def test_make_searcher_refuses_unknown_options() -> None:
    """A misspelt option is an error listing the valid options, never silently dropped."""
    with pytest.raises(
        SpecError,
        match=r"unknown option\(s\) 'scrambel' for searcher 'sobol' "
        r"\(did you mean 'scramble'\?\); valid options: seed, scramble",
    ):
        make_searcher("sobol", {"scrambel": False})


def test_make_searcher_returns_instances_as_they_are() -> None:
    """An instance passes through unchanged; options with an instance are an error."""
    searcher = RandomSearcher(seed=1)
    assert make_searcher(searcher) is searcher
    assert make_searcher(searcher, {}) is searcher
    with pytest.raises(SpecError, match=r"options \['seed'\] cannot be applied"):
        make_searcher(searcher, {"seed": 2})
