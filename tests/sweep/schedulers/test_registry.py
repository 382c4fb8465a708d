"""Tests of the scheduler names, aliases and options the CLI and YAML files use."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

import raysweep.sweep.schedulers as schedulers
from raysweep.errors import SpecError
from raysweep.sweep.schedulers import (
    ASHA,
    FIFO,
    PBT,
    SCHEDULERS,
    Exploit,
    HyperBand,
    MedianStopping,
    canonical_name,
    make_scheduler,
)
from tests.conftest import run_python


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("fifo", FIFO),
        ("asha", ASHA),
        ("hyperband", HyperBand),
        ("median", MedianStopping),
        ("pbt", PBT),
    ],
)
def test_every_name_builds_its_class(name: str, cls: type) -> None:
    """Each registered name builds its scheduler, which knows itself by that name."""
    options = {"hyperparam_mutations": ["lr"]} if name == "pbt" else {}
    scheduler = make_scheduler(name, options)
    assert type(scheduler) is cls
    assert scheduler.name == name
    assert name in SCHEDULERS


@pytest.mark.parametrize(
    ("alias", "name"),
    [
        ("ASHA", "asha"),
        ("successive_halving", "asha"),
        ("ASHAScheduler", "asha"),
        ("async_hyperband", "hyperband"),
        ("AsyncHyperBandScheduler", "hyperband"),
        ("ahb", "hyperband"),
        ("median_stopping", "median"),
        ("MedianStoppingRule", "median"),
        ("median-stopping-rule", "median"),
        ("FIFOScheduler", "fifo"),
        ("none", "fifo"),
        ("PopulationBasedTraining", "pbt"),
        (" Hyper-Band ", "hyperband"),
    ],
)
def test_aliases_and_spellings(alias: str, name: str) -> None:
    """Case, '_' and '-' are ignored, and names from other tools map to ours."""
    assert canonical_name(alias) == name


def test_a_typo_names_the_closest_scheduler() -> None:
    """An unknown name is a one-line SpecError with a did-you-mean and the valid names."""
    with pytest.raises(SpecError) as info:
        make_scheduler("ashaa")
    message = str(info.value)
    assert "unknown scheduler 'ashaa' (did you mean 'asha'?)" in message
    assert "valid names: fifo, asha, hyperband, median, pbt" in message
    assert "\n" not in message


def test_a_scheduler_is_a_name_or_an_instance() -> None:
    """Anything else is refused, naming what is accepted."""
    with pytest.raises(SpecError, match="a scheduler is a name"):
        make_scheduler(3)  # type: ignore[arg-type]


def test_an_unknown_option_is_refused_with_the_valid_ones() -> None:
    """A misspelled option is an error naming the closest valid one and all of them."""
    with pytest.raises(SpecError) as info:
        make_scheduler("asha", {"grace_peroid": 2})
    message = str(info.value)
    assert "option(s) 'grace_peroid' for scheduler 'asha' (did you mean 'grace_period'?)" in (
        message
    )
    assert "valid options: time_attr, max_t, grace_period, reduction_factor, stop_grace_s" in (
        message
    )
    assert "\n" not in message


def test_several_unknown_options_are_listed() -> None:
    """All unknown options are named at once."""
    with pytest.raises(SpecError, match="unknown option\\(s\\) 'a', 'b' for scheduler 'median'"):
        make_scheduler("median", {"a": 1, "b": 2})


def test_a_bad_value_is_the_schedulers_own_error() -> None:
    """A known option with a bad value fails with the constructor's one-line message."""
    with pytest.raises(SpecError, match="scheduler 'hyperband': brackets must be"):
        make_scheduler("hyperband", {"brackets": 0})


def test_an_instance_is_used_as_it_is() -> None:
    """An instance passes through; options next to it are an error."""
    asha = ASHA(max_t=9)
    assert make_scheduler(asha) is asha
    with pytest.raises(SpecError, match="cannot be applied to the ASHA instance"):
        make_scheduler(asha, {"max_t": 3})


@pytest.mark.parametrize(
    "options",
    [
        {"name": "asha", "max_t": 27, "grace_period": 3, "reduction_factor": 2},
        {"name": "hyperband", "max_t": 81, "brackets": 4},
        {"name": "median", "grace_period": 5, "min_samples_required": 2, "hard_stop": False},
        {
            "name": "pbt",
            "perturbation_interval": 4,
            "hyperparam_mutations": {"lr": {"type": "loguniform", "low": 1e-4, "high": 0.1}},
            "seed": 3,
        },
    ],
)
def test_made_schedulers_pickle(options: dict[str, Any]) -> None:
    """A scheduler built from YAML-style options pickles with its settings."""
    options = dict(options)
    scheduler = make_scheduler(options.pop("name"), options)
    copy = pickle.loads(pickle.dumps(scheduler))
    assert type(copy) is type(scheduler)
    settings = {k: v for k, v in options.items() if k != "hyperparam_mutations"}
    assert {k: getattr(copy, k) for k in settings} == settings


def test_exploit_pickles() -> None:
    """The plan handed to the runner pickles, as it crosses into a trial's task."""
    plan = Exploit(config={"lr": 0.1}, donor=3)
    assert pickle.loads(pickle.dumps(plan)) == plan


def test_public_names() -> None:
    """The package exports the interface, every scheduler and the registry helpers."""
    assert set(schedulers.__all__) >= {
        "Decision",
        "Exploit",
        "Scheduler",
        "SchedulerContext",
        "FIFO",
        "ASHA",
        "HyperBand",
        "MedianStopping",
        "PBT",
        "make_scheduler",
        "canonical_name",
        "SCHEDULERS",
    }
    assert all(hasattr(schedulers, name) for name in schedulers.__all__)


def test_importing_schedulers_loads_no_numpy() -> None:
    """The scheduler package stays light: numpy comes only when PBT explores a domain."""
    proc = run_python("import sys\nimport raysweep.sweep.schedulers\nprint('numpy' in sys.modules)")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"
