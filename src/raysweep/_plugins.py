"""One name -> class table for each kind of plugin (searchers, schedulers).

The CLI and sweep files name plugins; :class:`PluginTable` turns a name into an
instance through a ``"module:Class"`` table imported only on use, so plugins
built on optional libraries can be listed, named in help and suggested by a
did-you-mean without importing them. Every kind reads a name and checks
options the same way, with the same messages: case, ``_`` and ``-`` ignored,
aliases resolved, a constructor option that does not exist refused (a typo
must not be dropped).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping
from typing import Any, Generic, TypeVar

from raysweep._checks import did_you_mean
from raysweep.errors import SpecError

__all__ = ["PluginTable"]

T = TypeVar("T")


class PluginTable(Generic[T]):
    """The plugins of one kind.

    Args:
        kind: what messages call one ("searcher", "scheduler").
        base: the plugin base class (an instance given instead of a name).
        entries: canonical name -> ``"module:Class"``.
        aliases: other spellings (already lower case, without ``_``/``-``) -> name.
    """

    def __init__(
        self, kind: str, base: type[Any], entries: Mapping[str, str], aliases: Mapping[str, str]
    ) -> None:
        self.kind = kind
        self.base = base
        self.entries = entries
        self.aliases = aliases

    def canonical(self, name: Any) -> str:
        """``name`` as registered.

        Raises:
            SpecError: for an unknown name, with a did-you-mean and the valid names.
        """
        valid = ", ".join(self.entries)
        if not isinstance(name, str):
            raise SpecError(
                f"a {self.kind} is a name ({valid}) or a {self.base.__name__} instance, "
                f"got {name!r}"
            )
        key = name.strip().lower().replace("_", "").replace("-", "")
        key = self.aliases.get(key, key)
        if key in self.entries:
            return key
        hint = did_you_mean(key, [*self.entries, *self.aliases])
        raise SpecError(f"unknown {self.kind} {name!r}{hint}; valid names: {valid}")

    def load(self, name: str) -> type[T]:
        """The class registered under ``name`` (any spelling), imported now."""
        module_name, _, class_name = self.entries[self.canonical(name)].partition(":")
        cls: type[T] = getattr(importlib.import_module(module_name), class_name)
        return cls

    def check_options(self, name: str, cls: type[T], options: Mapping[str, Any]) -> None:
        """Refuse options ``cls``'s constructor does not take, naming the closest."""
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
                f"unknown option(s) {', '.join(map(repr, unknown))} for {self.kind} "
                f"{name!r}{hint}; valid options: {', '.join(valid) or 'none'}"
            )

    def make(self, spec: Any, options: Mapping[str, Any] | None = None) -> T:
        """An instance from a name and options, or ``spec`` itself if it is one.

        Raises:
            SpecError: an unknown name or option, a bad value, or options given
                together with an instance.
        """
        if isinstance(spec, self.base):
            given: T = spec
            if options:
                raise SpecError(
                    f"options {sorted(options)} cannot be applied to the "
                    f"{type(spec).__name__} instance given; pass them to its constructor"
                )
            return given
        key = self.canonical(spec)
        cls = self.load(key)
        options = dict(options or {})
        self.check_options(key, cls, options)
        made: T = cls(**options)
        return made
