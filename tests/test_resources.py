"""SchedulerHints: the shorthand, validation, and translation into Ray task options."""

from __future__ import annotations

import pytest

from raysweep.errors import SpecError
from raysweep.resources import SchedulerHints, task_env


def test_shorthand_maps_to_fields() -> None:
    """{'cpu': 2, 'gpu': 0.25} means num_cpus=2, num_gpus=0.25."""
    hints = SchedulerHints.coerce({"cpu": 2, "gpu": 0.25, "mem_mb": 512, "max_retries": 1})
    assert hints == SchedulerHints(num_cpus=2, num_gpus=0.25, mem_mb=512, max_retries=1)


def test_unknown_resource_key_is_an_error() -> None:
    """A typo in resources is refused with the valid keys, never dropped."""
    with pytest.raises(SpecError, match=r"unknown key 'gpus'.*'gpu'"):
        SchedulerHints.coerce({"gpus": 1})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_cpus": -1}, "num_cpus: expected a finite number >= 0, got -1"),
        ({"num_gpus": 1.5}, "num_gpus: a GPU count above 1 must be whole"),
        ({"mem_mb": "lots"}, "mem_mb: expected a finite number >= 0, got 'lots'"),
        ({"max_retries": 1.5}, "max_retries: expected a whole number, got 1.5"),
        ({"custom": {"ray": 3}}, "custom: expected a mapping of engine name to options"),
    ],
)
def test_invalid_hints_name_the_field(kwargs: dict[str, object], match: str) -> None:
    """Each invalid hint raises SpecError naming the field and the value."""
    with pytest.raises(SpecError, match=match):
        SchedulerHints(**kwargs)  # type: ignore[arg-type]


def test_hints_override_defaults_and_custom_wins() -> None:
    """Per-unit hints win over defaults; custom['ray'] options are passed through as is."""
    hints = SchedulerHints(
        num_cpus=4, num_gpus=0.5, mem_mb=2048, custom={"ray": {"scheduling_strategy": "SPREAD"}}
    )
    options = hints.to_ray_options({"num_cpus": 1, "max_retries": 5})
    assert options == {
        "num_cpus": 4,
        "num_gpus": 0.5,
        "memory": 2048 * 1024 * 1024,
        "max_retries": 5,
        "scheduling_strategy": "SPREAD",
    }


def test_task_env_follows_cpus() -> None:
    """OMP_NUM_THREADS follows the reserved CPUs; fractional or unset CPUs set nothing."""
    assert task_env({"num_cpus": 4}) == {"OMP_NUM_THREADS": "4"}
    assert task_env({"num_cpus": 0.5}) == {}
    assert task_env({}) == {}
