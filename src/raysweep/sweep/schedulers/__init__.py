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

from collections.abc import Mapping
from typing import Any

from raysweep._plugins import PluginTable
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


_TABLE: PluginTable[Scheduler] = PluginTable("scheduler", Scheduler, SCHEDULERS, ALIASES)


def scheduler_class(name: str) -> type[Scheduler]:
    """The class registered under ``name`` (any case, or an alias), imported now.

    Raises:
        SpecError: for an unknown name, with the closest valid one.
    """
    return _TABLE.load(name)


def canonical_name(name: Any) -> str:
    """``name`` as registered: case, ``_`` and ``-`` ignored, aliases resolved.

    Raises:
        SpecError: for an unknown name, with a did-you-mean and the valid names.

    Example:
        >>> canonical_name("Async_HyperBand"), canonical_name("median-stopping-rule")
        ('hyperband', 'median')
    """
    return _TABLE.canonical(name)


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
    return _TABLE.make(spec, options)
