"""SchedulerHints: the shorthand, validation, and translation into Ray task options."""

from __future__ import annotations

import pytest

from raysweep.errors import SpecError
from raysweep.resources import Resources, SchedulerHints, task_env


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


# -- gpu_memory: JAX/PyTorch limits on a shared GPU ----------------------------------


def test_gpu_memory_share_sets_the_jax_fraction_of_the_share() -> None:

    hints = Resources.coerce({"cpu": 1, "gpu": 0.25, "gpu_memory": "share"})
    env = task_env(hints.to_ray_options({"num_cpus": 1}), hints.gpu_memory)
    assert env["XLA_PYTHON_CLIENT_MEM_FRACTION"] == "0.225"  # 0.25 less the CUDA headroom
    assert env["RAYSWEEP_GPU_MEMORY_FRACTION"] == "0.225"
    assert "XLA_PYTHON_CLIENT_PREALLOCATE" not in env


def test_gpu_memory_grow_turns_preallocation_off() -> None:

    env = task_env({"num_cpus": 2, "num_gpus": 1}, "grow")
    assert env == {
        "OMP_NUM_THREADS": "2",
        "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
        "PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True",
    }


def test_gpu_memory_is_opt_in_and_share_needs_a_fraction() -> None:

    assert task_env({"num_cpus": 1, "num_gpus": 0.5}) == {"OMP_NUM_THREADS": "1"}
    assert "XLA_PYTHON_CLIENT_MEM_FRACTION" not in task_env({"num_gpus": 1}, "share")


def test_gpu_memory_typos_are_one_line() -> None:
    with pytest.raises(SpecError, match=r"^gpu_memory: expected 'share' .* got 'shared'"):
        Resources.coerce({"gpu_memory": "shared"})
    with pytest.raises(SpecError, match=r"did you mean 'gpu_memory'"):
        Resources.coerce({"gpu_mem": "share"})
    assert Resources.coerce({"gpu_memory": "grow"}).to_json() == {"gpu_memory": "grow"}
