"""Searchers: what to try next.

Searchers are passed to the runner as instances; the CLI and YAML files name them
instead, and :func:`make_searcher` turns a name into an instance through one
name -> ``module:Class`` table. Entries are imported only when used, so searchers
with optional dependencies (Optuna, Ax) can be listed without importing them.

Example:
    >>> make_searcher("sobol", {"seed": 3}).name
    'sobol'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from raysweep._plugins import PluginTable
from raysweep.sweep.searchers._base import SearchContext, Searcher
from raysweep.sweep.searchers.grid import GridSearcher
from raysweep.sweep.searchers.random import RandomSearcher
from raysweep.sweep.searchers.sobol import SobolSearcher

__all__ = [
    "GridSearcher",
    "RandomSearcher",
    "SearchContext",
    "Searcher",
    "SobolSearcher",
    "canonical_name",
    "make_searcher",
    "searcher_class",
]

#: Searcher name (as in the CLI and YAML) -> "module:Class", imported on use. The
#: modules of searchers built on optional libraries import them only when a
#: searcher is constructed, so listing, help and did-you-mean never need them.
SEARCHERS: dict[str, str] = {
    "auto": "raysweep.sweep.searchers.auto:AutoSearcher",
    "random": "raysweep.sweep.searchers.random:RandomSearcher",
    "grid": "raysweep.sweep.searchers.grid:GridSearcher",
    "sobol": "raysweep.sweep.searchers.sobol:SobolSearcher",
    "tpe": "raysweep.sweep.searchers.optuna_samplers:TPESearcher",
    "gp": "raysweep.sweep.searchers.optuna_samplers:GPSearcher",
    "cmaes": "raysweep.sweep.searchers.optuna_samplers:CmaEsSearcher",
    "qmc": "raysweep.sweep.searchers.optuna_samplers:QMCSearcher",
    "nsga2": "raysweep.sweep.searchers.optuna_samplers:NSGA2Searcher",
    "nsga3": "raysweep.sweep.searchers.optuna_samplers:NSGA3Searcher",
    "ax": "raysweep.sweep.searchers.ax_client:AxSearcher",
    "hebo": "raysweep.sweep.searchers.hebo_search:HEBOSearcher",
    "bayesopt": "raysweep.sweep.searchers.bayesopt:BayesOptSearcher",
    # Exactly the configurations given, in order (the points of Hydra's launcher jobs).
    "configs": "raysweep.sweep.searchers.given:GivenSearcher",
}
#: Names users bring from other tools, for the one they mean here.
ALIASES: dict[str, str] = {
    "optuna": "tpe",
    "botorch": "ax",
    "bayesianoptimization": "bayesopt",
    "nsgaii": "nsga2",
    "nsgaiii": "nsga3",
}


_TABLE: PluginTable[Searcher] = PluginTable("searcher", Searcher, SEARCHERS, ALIASES)


def searcher_class(name: str) -> type[Searcher]:
    """The class registered under ``name`` (any case, or an alias), imported now.

    Raises:
        SpecError: for an unknown name, with the closest valid one.
    """
    return _TABLE.load(name)


def canonical_name(name: Any) -> str:
    """``name`` as registered: case-insensitive, aliases resolved.

    Raises:
        SpecError: for an unknown name, with a did-you-mean and the valid names.
    """
    return _TABLE.canonical(name)


def make_searcher(spec: str | Searcher, options: Mapping[str, Any] | None = None) -> Searcher:
    """A searcher from its name and options, or ``spec`` itself if it is one.

    Args:
        spec: a name from :data:`SEARCHERS` (``"auto"``, ``"tpe"``, ``"gp"``, ``"ax"``,
            ``"random"``, ...; any case) or a :class:`Searcher` instance.
        options: constructor arguments for a named searcher, e.g. ``{"seed": 0}``.

    Raises:
        SpecError: for an unknown name, an unknown option, or options given
            together with an instance.

    Example:
        >>> make_searcher("random", {"seed": 0}).seed
        0
    """
    return _TABLE.make(spec, options)
