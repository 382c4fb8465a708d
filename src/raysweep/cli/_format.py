"""Small helpers shared by the commands: numbers, configs, durations, paths."""

from __future__ import annotations

import shlex
from pathlib import Path

from raysweep._text import format_config, format_duration, format_value

__all__ = [
    "display_path",
    "format_config",
    "format_duration",
    "format_value",
    "shell_path",
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
