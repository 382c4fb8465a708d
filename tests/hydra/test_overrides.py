"""Hydra overrides as raysweep parameters, and the job objective crossing processes."""

from __future__ import annotations

import pickle

import cloudpickle
import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser

from raysweep.errors import SpecError
from raysweep.hydra.job import HydraJob
from raysweep.hydra.overrides import (
    format_value,
    from_jobs,
    from_overrides,
    parameter_name,
    space_of,
    to_overrides,
)
from raysweep.sweep.space import Fixed, choice, lograndint, loguniform, randint, uniform


@pytest.fixture(scope="module")
def parser() -> OverridesParser:
    return OverridesParser.create()


def test_sweep_syntax_becomes_raysweep_domains(parser: OverridesParser) -> None:
    """Each Hydra sweep form becomes the raysweep domain a user would write."""
    params = from_overrides(
        {"lr": "tag(log, interval(1e-4, 1))", "act": ["relu", "gelu"]},
        [
            "model=small,large",
            "n=range(1,4)",
            "w=interval(0,1)",
            "k=tag(int, interval(1, 8))",
            "m=tag(int, log, interval(1, 64))",
            "seed=3",
        ],
        parser,
    )
    space = space_of(params)
    assert dict(space.items()) == {
        "lr": loguniform(1e-4, 1.0),
        "act": choice(["relu", "gelu"]),
        "model": choice(["small", "large"]),
        "n": randint(1, 3),
        "w": uniform(0.0, 1.0),
        "k": randint(1, 8),
        "m": lograndint(1, 64),
        "seed": Fixed(3),
    }


def test_command_line_replaces_a_params_entry(parser: OverridesParser) -> None:
    """An override on the command line wins over the params block's entry for that key."""
    params = from_overrides({"x": "interval(0, 1)"}, ["x=1,2"], parser)
    assert [(p.name, p.domain) for p in params] == [("x", choice([1, 2]))]


def test_overrides_round_trip_exact_values(parser: OverridesParser) -> None:
    """A trial's values come back as overrides Hydra reads as the same values: strings
    that look like numbers stay strings, fixed overrides keep their spelling."""
    params = from_overrides({}, ["+opt.name='1',adam", "lr=interval(0,1)", "~extra", "b=x"], parser)
    assert [p.name for p in params] == ["opt_name", "lr", "extra", "b"]
    overrides = to_overrides(params, {"opt_name": "1", "lr": 0.25, "extra": None, "b": "x"})
    assert overrides == ["+opt.name='1'", "lr=0.25", "~extra", "b=x"]
    assert parser.parse_override(overrides[0]).value() == "1"


def test_format_value_reads_back(parser: OverridesParser) -> None:
    """Every formatted value parses back to itself."""
    for value in (0.1, 1e-5, 3, True, None, "true", "a b", "it's", "x,y", 1.0):
        text = format_value(value)
        parsed = parser.parse_override(f"k={text}").value()
        assert parsed == value
        assert type(parsed) is type(value)


def test_bad_overrides_are_one_line(parser: OverridesParser) -> None:
    """An unknown tag, a tag on a choice and two keys with one name are refused."""
    with pytest.raises(SpecError, match=r"unknown tag 'ordered'"):
        from_overrides({}, ["x=tag(ordered, interval(0, 1))"], parser)
    with pytest.raises(SpecError, match=r"tags apply only to interval"):
        from_overrides({}, ["x=tag(log, choice(1, 2))"], parser)
    with pytest.raises(SpecError, match=r"'a.b' and 'a_b' both become"):
        from_overrides({}, ["a.b=1,2", "a_b=3,4"], parser)
    assert parameter_name("db@backup") == "db_backup"


def test_jobs_become_given_configs(parser: OverridesParser) -> None:
    """A launcher's jobs give one config each; a key equal in all jobs is fixed."""
    params, configs = from_jobs([["a=1", "b=x"], ["a=2", "b=x"]], parser)
    assert [(p.name, p.domain) for p in params] == [("a", choice([1, 2])), ("b", Fixed("x"))]
    assert configs == [{"a": 1, "b": "x"}, {"a": 2, "b": "x"}]
    with pytest.raises(SpecError, match="set the same keys"):
        from_jobs([["a=1"], ["b=2"]], parser)


def _task(cfg: object) -> float:
    return 1.0


def test_job_objective_pickles() -> None:
    """The objective shipped to workers survives pickling, config loader included."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra._internal.utils import create_config_search_path
    from hydra.types import HydraContext
    from omegaconf import OmegaConf

    loader = ConfigLoaderImpl(config_search_path=create_config_search_path(None))
    context = HydraContext(config_loader=loader, callbacks=None)  # type: ignore[arg-type]
    params = from_overrides({}, ["x=1,2"], OverridesParser.create())
    job = HydraJob(
        task_function=_task,
        hydra_context=context,
        config=OmegaConf.create({"x": 0}),
        params=params,
    )
    copy = pickle.loads(cloudpickle.dumps(job))
    assert copy.job_of({"x": 2}, 5) == (5, ["x=2"])
    assert copy.__qualname__ == "_task"
