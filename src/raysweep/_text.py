"""How numbers, configurations and durations read in one line of text.

Shared by the progress display (used by ``raysweep.run`` and the CLI) and the
CLI's commands, so a value looks the same wherever a person sees it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["format_config", "format_duration", "format_value"]


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
