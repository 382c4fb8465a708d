"""Per-task resources shared by the black-box runner and the gradient optimizer.

The type is :class:`Resources`; ``SchedulerHints`` is the same class under the
name mythos users know. It was renamed because raysweep also has trial
*schedulers* (early stopping), and a resource request is not one of those.

One value type describes what a trial, a simulator or an objective needs, and is
translated into Ray task options in exactly one place (:meth:`to_ray_options`),
so both halves of raysweep schedule the same way.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from raysweep._checks import describe, did_you_mean, expect_mapping, is_int, is_number
from raysweep.errors import SpecError

__all__ = ["Resources", "SchedulerHints", "limit_torch_memory", "task_env"]

_FIELDS = ("num_cpus", "num_gpus", "mem_mb", "max_retries", "gpu_memory", "custom")
_RESOURCE_KEYS = {
    "cpu": "num_cpus",
    "gpu": "num_gpus",
    "mem_mb": "mem_mb",
    "max_retries": "max_retries",
    "gpu_memory": "gpu_memory",
}
#: ``gpu_memory`` policies: how a task's JAX/PyTorch take GPU memory on a shared GPU.
GPU_MEMORY = ("share", "grow")
#: Of a fractional GPU's memory, what ``gpu_memory: share`` lets a task take; the rest
#: is headroom for each process's CUDA context, which the fraction does not count.
SHARE_HEADROOM = 0.9


def _check_amount(name: str, value: Any) -> None:
    """One rule per amount, for the dataclass and for the shorthand mapping alike."""
    if value is None or name == "custom":
        return
    if name == "gpu_memory":
        if value not in GPU_MEMORY:
            raise SpecError(
                f"gpu_memory: expected 'share' (each task's JAX/PyTorch limited to its GPU "
                f"share) or 'grow' (allocate as needed), got {describe(value)}"
            )
        return
    if not is_number(value) or value < 0:
        raise SpecError(f"{name}: expected a finite number >= 0, got {describe(value)}")
    if name == "num_gpus" and value > 1 and value != int(value):
        raise SpecError(f"{name}: a GPU count above 1 must be whole, got {value!r}")
    if name in ("mem_mb", "max_retries") and not is_int(value):
        raise SpecError(f"{name}: expected a whole number, got {describe(value)}")


def _check_ray_options(options: Mapping[str, Any]) -> None:
    """A typo in a Ray option (``num_gpu``) is found at start, not by Ray on the first task.

    The valid names come from Ray's own table of task options (a private module,
    imported only when ``custom["ray"]`` is given); if a Ray version moved it, the
    check is skipped and Ray itself refuses the option.
    """
    import importlib

    valid: Any = None
    for module in ("ray._common.ray_option_utils", "ray._private.ray_option_utils"):
        try:
            valid = importlib.import_module(module).task_options
            break
        except (ImportError, AttributeError):
            continue
    if not isinstance(valid, Mapping):
        return
    for key in options:
        if key not in valid:
            raise SpecError(
                f"custom.ray: unknown Ray task option {key!r}{did_you_mean(key, valid)}; "
                f"valid options: {', '.join(sorted(k for k in valid if not k.startswith('_')))}"
            )


@dataclass(frozen=True, slots=True)
class Resources:
    """Resources and retry policy of one task.

    Attributes:
        num_cpus: CPUs reserved; also sets ``OMP_NUM_THREADS`` inside the task.
        num_gpus: GPUs reserved; fractional values share a GPU (``0.25`` = four per GPU).
        mem_mb: memory reserved, in MiB (Ray receives bytes).
        max_retries: how many times a task lost to a worker or node death is re-run.
        gpu_memory: for tasks sharing a GPU, opt in to limiting what JAX and PyTorch
            take: ``"share"`` caps each at its share of the GPU's memory
            (``XLA_PYTHON_CLIENT_MEM_FRACTION``; PyTorch's per-process memory
            fraction), ``"grow"`` makes them allocate as needed
            (``XLA_PYTHON_CLIENT_PREALLOCATE=false``,
            ``PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True``). Unset: the
            libraries' defaults (JAX preallocates 75 % of the GPU).
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
    gpu_memory: str | None = None

    def __post_init__(self) -> None:
        for name in ("num_cpus", "num_gpus", "mem_mb", "max_retries", "gpu_memory"):
            _check_amount(name, getattr(self, name))
        if not isinstance(self.custom, Mapping) or any(
            not isinstance(k, str) or not isinstance(v, Mapping) for k, v in self.custom.items()
        ):
            raise SpecError(
                f"custom: expected a mapping of engine name to options, e.g. "
                f"{{'ray': {{'scheduling_strategy': 'SPREAD'}}}}, got {describe(self.custom)}"
            )
        if "ray" in self.custom:
            _check_ray_options(self.custom["ray"])

    @classmethod
    def coerce(cls, value: Resources | Mapping[str, Any] | None) -> Resources:
        """Accept resources or the ``{"cpu": 1, "gpu": 0.25}`` shorthand.

        The shorthand also takes the field names themselves (``num_cpus``...).
        Unknown keys are an error, never dropped. Messages name the key as the
        user wrote it (``cpu: expected ...``).
        """
        if value is None:
            return cls()
        if isinstance(value, Resources):
            return value
        expect_mapping(value, "{cpu: 1, gpu: 0.25, mem_mb: 2048}")
        kwargs: dict[str, Any] = {}
        valid = sorted({*_RESOURCE_KEYS, *_FIELDS})
        for key, item in value.items():
            target = _RESOURCE_KEYS.get(key, key)
            if target not in _FIELDS:
                raise SpecError(
                    f"unknown key {key!r}{did_you_mean(key, valid)}; expected one of: "
                    f"{', '.join(valid)}"
                )
            if target in kwargs:
                raise SpecError(f"{key!r} and another spelling of {target!r} are both given")
            try:
                _check_amount(target, item)
            except SpecError as exc:
                raise SpecError(str(exc).replace(f"{target}:", f"{key}:", 1)) from None
            kwargs[target] = item
        return cls(**kwargs)

    def to_json(self) -> dict[str, Any]:
        """The fields that are set, by field name (the stored form)."""
        out: dict[str, Any] = {
            name: getattr(self, name)
            for name in ("num_cpus", "num_gpus", "mem_mb", "max_retries", "gpu_memory")
            if getattr(self, name) is not None
        }
        if self.custom:
            out["custom"] = {k: dict(v) for k, v in self.custom.items()}
        return out

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


def task_env(ray_options: Mapping[str, Any], gpu_memory: str | None = None) -> dict[str, str]:
    """Environment a task sets for itself (and its subprocesses) from its options.

    ``OMP_NUM_THREADS`` follows the CPUs reserved, so an OpenMP simulator binary
    started by the task does not oversubscribe the node. It is set inside the task
    rather than through a per-task ``runtime_env``, which would make Ray keep a
    separate worker pool for every distinct value. ``CUDA_VISIBLE_DEVICES`` is
    Ray's: it names the GPU(s) the task was given, the same one for tasks sharing
    a GPU. With ``gpu_memory`` (see :class:`Resources`) the memory limits of JAX
    and PyTorch are set too; ``RAYSWEEP_GPU_MEMORY_FRACTION`` tells the worker
    the PyTorch fraction to apply (PyTorch has no variable for it).

    Example:
        >>> task_env({"num_cpus": 1, "num_gpus": 0.25}, "share")["XLA_PYTHON_CLIENT_MEM_FRACTION"]
        '0.225'
    """
    env: dict[str, str] = {}
    cpus = ray_options.get("num_cpus")
    if cpus is not None and cpus >= 1:
        env["OMP_NUM_THREADS"] = str(int(cpus))
    gpus = ray_options.get("num_gpus") or 0
    if gpu_memory == "grow":
        env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
        env["PYTORCH_CUDA_ALLOC_CONF"] = "expandable_segments:True"
    elif gpu_memory == "share" and 0 < gpus < 1:
        fraction = f"{gpus * SHARE_HEADROOM:.4g}"
        env["XLA_PYTHON_CLIENT_MEM_FRACTION"] = fraction
        env["RAYSWEEP_GPU_MEMORY_FRACTION"] = fraction
    return env


def limit_torch_memory(env: Mapping[str, str]) -> None:
    """Apply PyTorch's share of a shared GPU (``gpu_memory: share``) in this process.

    PyTorch reads no variable for it, so the worker process that runs a trial or
    a gradient unit calls this once, after setting :func:`task_env`'s variables;
    it does nothing unless PyTorch is installed and sees a GPU. JAX reads its
    variable by itself.
    """
    fraction = env.get("RAYSWEEP_GPU_MEMORY_FRACTION")
    if fraction is None or os.environ.get("_RAYSWEEP_TORCH_LIMITED") == fraction:
        return
    try:
        import torch
    except ImportError:
        return
    if torch.cuda.is_available():
        for device in range(torch.cuda.device_count()):
            torch.cuda.set_per_process_memory_fraction(float(fraction), device)
    os.environ["_RAYSWEEP_TORCH_LIMITED"] = fraction


#: The name mythos users know; the same class as :class:`Resources`.
SchedulerHints = Resources
