"""The lazy import of plotly, shared by the report and the dashboard.

``import raysweep`` must not load plotly (it is the optional ``report`` extra); the
first figure imports it here, and a missing one is a
:class:`~raysweep.errors.MissingExtraError` naming ``pip install "raysweep[report]"``.
"""

from __future__ import annotations

import importlib
from typing import Any

from raysweep._extras import require

__all__ = ["go", "plotly_js", "subplots"]


def go(feature: str = "raysweep report") -> Any:
    """``plotly.graph_objects``, or ``MissingExtraError`` naming ``feature``."""
    return require("plotly.graph_objects", "report", feature)


def subplots(feature: str = "raysweep report") -> Any:
    """``plotly.subplots.make_subplots``, or ``MissingExtraError`` naming ``feature``."""
    go(feature)
    return importlib.import_module("plotly.subplots").make_subplots


def plotly_js(feature: str = "raysweep report") -> str:
    """The plotly.js bundle that ships inside the plotly package (no CDN, works offline)."""
    go(feature)
    offline: Any = importlib.import_module("plotly.offline")
    return str(offline.get_plotlyjs())
