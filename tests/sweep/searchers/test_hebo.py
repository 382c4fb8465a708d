"""Tests of the hebo searcher, which is refused: HEBO does not install beside raysweep
(see raysweep.sweep.searchers.hebo_search). What a user sees is the reason, in one
line, with the searchers to use instead, whatever options they passed."""

from __future__ import annotations

from pathlib import Path

import pytest

import raysweep as rs
from raysweep.errors import MissingExtraError
from raysweep.sweep.searchers import make_searcher, searcher_class
from raysweep.sweep.searchers.hebo_search import HEBOSearcher, HEBOUnavailableError


def test_constructing_it_names_the_conflicting_pins() -> None:
    """The error says why HEBO cannot be installed (its exact pins) and what to use."""
    with pytest.raises(HEBOUnavailableError) as info:
        HEBOSearcher()
    message = str(info.value)
    assert "\n" not in message
    for fragment in ("numpy>=1.16,<1.25", "pymoo==0.6.0", "numpy>=1.26", "'bayesopt'"):
        assert fragment in message
    assert "pip install" not in message  # no extra can fix it
    assert isinstance(info.value, MissingExtraError)
    assert (info.value.package, info.value.extra) == ("HEBO", "hebo")


def test_name_and_any_options_give_the_same_reason() -> None:
    """make_searcher('hebo', ...) is refused for the real reason, not an unknown option."""
    assert searcher_class("HEBO") is HEBOSearcher
    with pytest.raises(HEBOUnavailableError, match="HEBO does not install beside raysweep"):
        make_searcher("hebo", {"n_suggestions": 4, "seed": 1})


def test_a_run_asking_for_it_stops_before_anything_is_written(tmp_path: Path) -> None:
    """raysweep.run(searcher='hebo') fails with the reason and writes no experiment."""
    with pytest.raises(HEBOUnavailableError):
        rs.run(
            lambda config: config["x"],
            {"x": rs.uniform(0, 1)},
            searcher="hebo",
            num_trials=2,
            name="hebo",
            storage=tmp_path,
            verbose=0,
        )
    assert list(tmp_path.iterdir()) == []
