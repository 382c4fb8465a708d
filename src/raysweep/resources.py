"""Per-task resources shared by the black-box runner and the gradient optimizer.

The type is :class:`Resources`; ``SchedulerHints`` is the same class under the
name mythos users know. It was renamed because raysweep also has trial
*schedulers* (early stopping), and a resource request is not one of those.

One value type describes what a trial, a simulator or an objective needs, and is
translated into Ray task options in exactly one place (:meth:`to_ray_options`),
so both halves of raysweep schedule the same way.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from raysweep.errors import SpecError

__all__ = ["Resources", "SchedulerHints", "task_env"]

_RESOURCE_KEYS = {
    "cpu": "num_cpus",
    "gpu": "num_gpus",
    "mem_mb": "mem_mb",
    "max_retries": "max_retries",
}


@dataclass(frozen=True, slots=True)
class Resources:
    """Resources and retry policy of one task.

    Attributes:
        num_cpus: CPUs reserved; also sets ``OMP_NUM_THREADS`` inside the task.
        num_gpus: GPUs reserved; fractional values share a GPU (``0.25`` = four per GPU).
        mem_mb: memory reserved, in MiB (Ray receives bytes).
        max_retries: how many times a task lost to a worker or node death is re-run.
        custom: engine-specific options, e.g. ``{"ray": {"scheduling_strategy": "SPREAD"}}``.

    Example:
        >>> Resources(num_cpus=2, num_gpus=0.5).to_ray_options()["num_gpus"]
        0.5
    """

    num_cpus: float | None = None
    num_gpus: float | None = None
    mem_mb: int | None = None
    max_retries: int | None = None
    custom: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("num_cpus", "num_gpus", "mem_mb", "max_retries"):
            value = getattr(self, name)
            if value is None:
                continue
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
            ):
                raise SpecError(f"Resources.{name} must be a number, got {value!r}")
            if value < 0:
                raise SpecError(f"Resources.{name} must be >= 0, got {value!r}")
        if self.num_gpus is not None and self.num_gpus > 1 and self.num_gpus != int(self.num_gpus):
            raise SpecError(
                f"Resources.num_gpus above 1 must be a whole number, got {self.num_gpus!r}"
            )
        if self.max_retries is not None and self.max_retries != int(self.max_retries):
            raise SpecError(f"Resources.max_retries must be an integer, got {self.max_retries!r}")
        if not isinstance(self.custom, Mapping) or any(
            not isinstance(v, Mapping) for v in self.custom.values()
        ):
            raise SpecError(
                f"Resources.custom must map an engine name to a dict of options, "
                f"e.g. {{'ray': {{...}}}}, got {self.custom!r}"
            )

    @classmethod
    def coerce(cls, value: Resources | Mapping[str, Any] | None) -> Resources:
        """Accept a hints value or the ``{"cpu": 1, "gpu": 0.25}`` shorthand.

        The shorthand also takes the field names themselves (``num_cpus``...).
        Unknown keys are an error, never dropped.
        """
        if value is None:
            return cls()
        if isinstance(value, Resources):
            return value
        if not isinstance(value, Mapping):
            raise SpecError(
                f"resources must be a mapping such as {{'cpu': 1, 'gpu': 0.25}} or a "
                f"Resources, got {value!r}"
            )
        kwargs: dict[str, Any] = {}
        valid = sorted({*_RESOURCE_KEYS, "num_cpus", "num_gpus", "custom"})
        for key, item in value.items():
            target = _RESOURCE_KEYS.get(key, key)
            if target not in {"num_cpus", "num_gpus", "mem_mb", "max_retries", "custom"}:
                raise SpecError(f"resources: unknown key {key!r}; expected one of {valid}")
            kwargs[target] = item
        return cls(**kwargs)

    def to_ray_options(self, defaults: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Ray ``.options(...)`` for this task: ``defaults`` first, these hints on top.

        Example:
            >>> Resources(mem_mb=1).to_ray_options({"num_cpus": 2})
            {'num_cpus': 2, 'memory': 1048576}
        """
        options: dict[str, Any] = dict(defaults or {})
        if self.num_cpus is not None:
            options["num_cpus"] = self.num_cpus
        if self.num_gpus is not None:
            options["num_gpus"] = self.num_gpus
        if self.mem_mb is not None:
            options["memory"] = int(self.mem_mb) * 1024 * 1024
        if self.max_retries is not None:
            options["max_retries"] = int(self.max_retries)
        options.update(self.custom.get("ray", {}))
        return options


def task_env(ray_options: Mapping[str, Any]) -> dict[str, str]:
    """Environment a task sets for itself (and its subprocesses) from its options.

    ``OMP_NUM_THREADS`` follows the CPUs reserved, so an OpenMP simulator binary
    started by the task does not oversubscribe the node. It is set inside the task
    rather than through a per-task ``runtime_env``, which would make Ray keep a
    separate worker pool for every distinct value.
    """
    cpus = ray_options.get("num_cpus")
    if cpus is None or cpus < 1:
        return {}
    return {"OMP_NUM_THREADS": str(int(cpus))}


#: The name mythos users know; the same class as :class:`Resources`.
SchedulerHints = Resources
