"""Schedulers: when to stop (or pause) a running trial.

Schedulers are passed to the runner as instances; the CLI and YAML files name them
instead, and :func:`make_scheduler` turns a name into an instance through one
name -> ``module:Class`` table, the same way searchers are named. See
:mod:`~raysweep.sweep.schedulers._base` for the interface.

Example:
    >>> make_scheduler("asha", {"max_t": 27}).rungs
    (1, 3, 9)
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping
from typing import Any

from raysweep._checks import did_you_mean
from raysweep.errors import SpecError
from raysweep.sweep.schedulers._base import Decision, Exploit, Scheduler, SchedulerContext
from raysweep.sweep.schedulers.asha import ASHA
from raysweep.sweep.schedulers.fifo import FIFO
from raysweep.sweep.schedulers.hyperband import HyperBand
from raysweep.sweep.schedulers.median import MedianStopping
from raysweep.sweep.schedulers.pbt import PBT

__all__ = [
    "ASHA",
    "FIFO",
    "PBT",
    "SCHEDULERS",
    "Decision",
    "Exploit",
    "HyperBand",
    "MedianStopping",
    "Scheduler",
    "SchedulerContext",
    "canonical_name",
    "make_scheduler",
    "scheduler_class",
]

#: Scheduler name (as in the CLI and YAML) -> "module:Class", imported on use.
SCHEDULERS: dict[str, str] = {
    "fifo": "raysweep.sweep.schedulers.fifo:FIFO",
    "asha": "raysweep.sweep.schedulers.asha:ASHA",
    "hyperband": "raysweep.sweep.schedulers.hyperband:HyperBand",
    "median": "raysweep.sweep.schedulers.median:MedianStopping",
    "pbt": "raysweep.sweep.schedulers.pbt:PBT",
}
#: Names users bring from other tools (Ray Tune's class names among them), written
#: as :func:`canonical_name` normalizes them, for the one they mean here.
ALIASES: dict[str, str] = {
    "none": "fifo",
    "fifoscheduler": "fifo",
    "ashascheduler": "asha",
    "successivehalving": "asha",
    "asynchyperband": "hyperband",
    "asynchyperbandscheduler": "hyperband",
    "ahb": "hyperband",
    "medianstopping": "median",
    "medianstoppingrule": "median",
    "populationbasedtraining": "pbt",
}


def scheduler_class(name: str) -> type[Scheduler]:
    """The class registered under ``name`` (any case, or an alias), imported now.

    Raises:
        SpecError: for an unknown name, with the closest valid one.
    """
    key = canonical_name(name)
    module_name, _, class_name = SCHEDULERS[key].partition(":")
    cls: type[Scheduler] = getattr(importlib.import_module(module_name), class_name)
    return cls


def canonical_name(name: Any) -> str:
    """``name`` as registered: case, ``_`` and ``-`` ignored, aliases resolved.

    Raises:
        SpecError: for an unknown name, with a did-you-mean and the valid names.

    Example:
        >>> canonical_name("Async_HyperBand"), canonical_name("median-stopping-rule")
        ('hyperband', 'median')
    """
    valid = ", ".join(SCHEDULERS)
    if not isinstance(name, str):
        raise SpecError(f"a scheduler is a name ({valid}) or a Scheduler instance, got {name!r}")
    key = name.strip().lower().replace("_", "").replace("-", "")
    key = ALIASES.get(key, key)
    if key in SCHEDULERS:
        return key
    raise SpecError(
        f"unknown scheduler {name!r}{did_you_mean(key, [*SCHEDULERS, *ALIASES])}; "
        f"valid names: {valid}"
    )


def _check_options(name: str, cls: type[Scheduler], options: Mapping[str, Any]) -> None:
    """Refuse options the constructor does not take: a typo must not be dropped."""
    parameters = inspect.signature(cls).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return
    valid = [
        p.name
        for p in parameters
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    ]
    unknown = [key for key in options if key not in valid]
    if unknown:
        hint = did_you_mean(unknown[0], valid) if len(unknown) == 1 else ""
        raise SpecError(
            f"unknown option(s) {', '.join(map(repr, unknown))} for scheduler {name!r}{hint}; "
            f"valid options: {', '.join(valid) or 'none'}"
        )


def make_scheduler(spec: str | Scheduler, options: Mapping[str, Any] | None = None) -> Scheduler:
    """A scheduler from its name and options, or ``spec`` itself if it is one.

    Args:
        spec: a name from :data:`SCHEDULERS` (``"fifo"``, ``"asha"``, ``"hyperband"``,
            ``"median"``, ``"pbt"``; any case, or an alias) or a :class:`Scheduler`.
        options: constructor arguments for a named scheduler, e.g. ``{"max_t": 27}``.

    Raises:
        SpecError: for an unknown name, an unknown option, a bad value, or options
            given together with an instance.

    Example:
        >>> make_scheduler("median", {"grace_period": 5}).grace_period
        5
    """
    if isinstance(spec, Scheduler):
        if options:
            raise SpecError(
                f"options {sorted(options)} cannot be applied to the {type(spec).__name__} "
                "instance given; pass them to its constructor"
            )
        return spec
    key = canonical_name(spec)
    cls = scheduler_class(key)
    options = dict(options or {})
    _check_options(key, cls, options)
    scheduler: Scheduler = cls(**options)
    return scheduler
