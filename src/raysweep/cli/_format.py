"""Small text helpers shared by the commands: numbers, configs, durations, paths."""

from __future__ import annotations

import math
import os
import shlex
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from raysweep.errors import ExperimentNotFoundError
from raysweep.store import DB_FILENAME, SQLiteStore

__all__ = [
    "display_path",
    "flatten_scalars",
    "format_config",
    "format_duration",
    "format_value",
    "open_experiment",
    "shell_path",
]


def format_value(value: Any) -> str:
    """A compact rendering: floats to 4 significant digits, everything else as is."""
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return f"{value:.4g}"
    if isinstance(value, str):
        return value
    return repr(value)


def format_config(config: Mapping[str, Any], sep: str = ", ") -> str:
    """``lr=0.001, layers=3`` for a configuration."""
    return sep.join(f"{k}={format_value(v)}" for k, v in config.items())


def format_duration(seconds: float | None) -> str:
    """``42.0s``, ``3m07s`` or ``2h05m``; ``-`` when unknown."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


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


def open_experiment(path: str | Path) -> SQLiteStore:
    """Open an experiment read-only from its folder or its ``experiment.db``.

    Reading never writes, so this works while a run is writing the same file.

    Raises:
        ExperimentNotFoundError: no experiment there; when ``path`` is a storage
            folder holding experiments, the message lists them.
    """
    given = Path(path)
    directory = given.parent if given.is_file() and given.name == DB_FILENAME else given
    if given.is_file() and given.name != DB_FILENAME:
        raise ExperimentNotFoundError(
            f"{path} is not an experiment folder or an {DB_FILENAME} file"
        )
    if not SQLiteStore.exists(directory) and directory.is_dir():
        inside = sorted(p.name for p in directory.iterdir() if SQLiteStore.exists(p))
        if inside:
            shown = ", ".join(os.path.join(str(path), n) for n in inside[:5])
            more = f" and {len(inside) - 5} more" if len(inside) > 5 else ""
            raise ExperimentNotFoundError(
                f"{path} holds experiments rather than being one; pass one of: {shown}{more}"
            )
    return SQLiteStore.open(directory, readonly=True)


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
