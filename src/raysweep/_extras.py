"""Importing an optional dependency (an extra) at the moment a feature needs it.

``import raysweep`` loads none of them; the first use of a feature imports its
library here, and a missing one is a :class:`~raysweep.errors.MissingExtraError`
naming the ``pip install "raysweep[<extra>]"`` to run.
"""

from __future__ import annotations

import importlib
from typing import Any

from raysweep.errors import MissingExtraError

__all__ = ["require"]


def require(module: str, extra: str, feature: str, package: str | None = None) -> Any:
    """Import ``module`` now, or raise :class:`MissingExtraError` naming the extra.

    Args:
        module: what to import (``"plotly.graph_objects"``).
        extra: the raysweep extra that installs it (``"report"``).
        feature: what needs it, for the message (``"raysweep report"``).
        package: the distribution's name where it is not the module's first part
            (``"mlflow-skinny"``, ``"bayesian-optimization"``).

    Example:
        >>> require("json", "none", "a doctest").__name__
        'json'
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(package or module.split(".")[0], extra, feature) from exc
