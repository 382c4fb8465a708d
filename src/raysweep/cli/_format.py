"""Small helpers shared by the commands: numbers, configs, durations, paths, the stored spec."""

from __future__ import annotations

import shlex
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from raysweep._text import format_config, format_duration, format_value
from raysweep.errors import SpecError, StoreError
from raysweep.objectives import Objectives
from raysweep.store import ExperimentStore

__all__ = [
    "checked_spec",
    "display_path",
    "flatten_scalars",
    "format_config",
    "format_duration",
    "format_value",
    "shell_path",
    "spec_objectives",
]


def display_path(path: str | Path) -> str:
    """``path`` relative to the working directory when it is inside it, else absolute."""
    resolved = Path(path).resolve()
    try:
        rel = resolved.relative_to(Path.cwd().resolve())
    except ValueError:
        return str(resolved)
    return str(rel) if str(rel) != "." else "."


def shell_path(path: str | Path) -> str:
    """:func:`display_path`, quoted to paste into a shell."""
    return shlex.quote(display_path(path))


def checked_spec(store: ExperimentStore) -> dict[str, Any]:
    """The stored spec, checked for what ``status`` and ``export`` read from it.

    A hand-edited spec (a ``mode`` of ``'up'``, a space that is not a mapping)
    becomes one line naming the file, rather than a traceback half-way through
    the output.

    Raises:
        StoreError: ``"<file>: stored spec: <problem>"``.
    """
    spec = store.read_spec()
    try:
        _check_spec(spec)
    except (SpecError, TypeError, ValueError) as exc:
        raise StoreError(f"{store.describe()}: stored spec: {exc}") from None
    return spec


def spec_objectives(spec: Mapping[str, Any]) -> Objectives:
    """What a stored sweep optimizes, as the run saw it: its metric(s) and mode(s)
    (a single string from older versions, or lists) and the primary metric
    ``stop.metric`` named. Call it on a :func:`checked_spec`."""
    stop = spec.get("stop")
    primary = stop.get("metric") if isinstance(stop, Mapping) else None
    objectives = Objectives.parse(spec.get("metric", "loss"), spec.get("mode", "min"))
    return objectives.with_primary(primary if primary in objectives.names else None)


def _check_spec(spec: Mapping[str, Any]) -> None:
    kind = spec.get("kind", "sweep")
    if kind not in ("sweep", "gradient"):
        raise SpecError(f"kind: expected 'sweep' or 'gradient', got {kind!r}")
    if not isinstance(spec.get("name", ""), str):
        raise SpecError(f"name: expected a string, got {spec['name']!r}")
    if kind == "gradient":
        for key in ("simulators", "objectives"):
            names = spec.get(key)
            if names is not None and not (
                isinstance(names, list) and all(isinstance(n, str) for n in names)
            ):
                raise SpecError(f"{key}: expected a list of names, got {names!r}")
        _check_count(spec, "n_steps")
        return
    from raysweep.sweep.config import SweepConfig

    SweepConfig.check_stored(spec)  # the rules the values were given under


def _check_count(spec: Mapping[str, Any], key: str) -> None:
    value = spec.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise SpecError(f"{key}: expected a whole number >= 0, got {value!r}")


def flatten_scalars(value: Any, prefix: str = "", max_list: int = 64) -> Iterator[tuple[str, Any]]:
    """``(path, scalar)`` pairs of nested dicts, keys joined with ``/``.

    Short lists of numbers become one column per element (``params/w/0``);
    lists of strings are joined with ``;``; larger arrays are left out, since a
    table cell cannot hold them usefully (the JSON export keeps them whole).
    """
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from flatten_scalars(item, f"{prefix}/{key}" if prefix else str(key), max_list)
    elif isinstance(value, list | tuple):
        if value and all(isinstance(v, str) for v in value):
            yield prefix, ";".join(value)
        elif len(value) <= max_list and all(_is_scalar(v) for v in value):
            for i, item in enumerate(value):
                yield f"{prefix}/{i}", item
        elif len(value) <= max_list and all(isinstance(v, list | tuple | Mapping) for v in value):
            total = sum(_size(v) for v in value)
            if total <= max_list:
                for i, item in enumerate(value):
                    yield from flatten_scalars(item, f"{prefix}/{i}", max_list)
    elif _is_scalar(value):
        yield prefix, value


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, bool | int | float | str)


def _size(value: Any) -> int:
    if isinstance(value, Mapping):
        return sum(_size(v) for v in value.values())
    if isinstance(value, list | tuple):
        return sum(_size(v) for v in value)
    return 1
