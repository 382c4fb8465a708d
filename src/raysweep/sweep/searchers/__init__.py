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

import importlib
import inspect
from collections.abc import Mapping
from typing import Any

from raysweep.errors import SpecError
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
    "make_searcher",
]

#: Searcher name (as in the CLI and YAML) -> "module:Class", imported on use.
SEARCHERS: dict[str, str] = {
    "grid": "raysweep.sweep.searchers.grid:GridSearcher",
    "random": "raysweep.sweep.searchers.random:RandomSearcher",
    "sobol": "raysweep.sweep.searchers.sobol:SobolSearcher",
}


def _check_options(name: str, cls: type[Searcher], options: Mapping[str, Any]) -> None:
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
        raise SpecError(
            f"unknown option(s) {', '.join(map(repr, unknown))} for searcher {name!r}; "
            f"valid options: {', '.join(valid) or 'none'}"
        )


def make_searcher(spec: str | Searcher, options: Mapping[str, Any] | None = None) -> Searcher:
    """A searcher from its name and options, or ``spec`` itself if it is one.

    Args:
        spec: a name from :data:`SEARCHERS` (``"random"``, ``"grid"``, ``"sobol"``, ...)
            or a :class:`Searcher` instance.
        options: constructor arguments for a named searcher, e.g. ``{"seed": 0}``.

    Raises:
        SpecError: for an unknown name, an unknown option, or options given
            together with an instance.

    Example:
        >>> make_searcher("random", {"seed": 0}).seed
        0
    """
    if isinstance(spec, Searcher):
        if options:
            raise SpecError(
                f"options {sorted(options)} cannot be applied to the {type(spec).__name__} "
                "instance given; pass them to its constructor"
            )
        return spec
    valid = ", ".join(sorted(SEARCHERS))
    if not isinstance(spec, str):
        raise SpecError(f"a searcher is a name ({valid}) or a Searcher instance, got {spec!r}")
    target = SEARCHERS.get(spec)
    if target is None:
        raise SpecError(f"unknown searcher {spec!r}; valid names: {valid}")
    module_name, _, class_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    options = dict(options or {})
    _check_options(spec, cls, options)
    searcher: Searcher = cls(**options)
    return searcher
