"""``raysweep dashboard``: a local web page that follows an experiment as it runs.

The app (:func:`create_app`, Starlette) serves a page that polls JSON endpoints
and redraws the report's figures (:mod:`raysweep.plots`) and a sortable,
filterable trials table whenever the store changed. It reads the store
read-only through ``raysweep.load``, at a bounded rate, so the run is never
blocked. Starlette and uvicorn are the optional ``dashboard`` extra.

Example:
    >>> import raysweep
    >>> from raysweep.dashboard import bind, create_app, serve
    >>> serve(create_app(raysweep.load("runs/demo")), bind("127.0.0.1", 8765))  # doctest: +SKIP
"""

from __future__ import annotations

from raysweep.dashboard.app import DEFAULT_HOST, DEFAULT_PORT, bind, create_app, is_loopback, serve
from raysweep.dashboard.live import LiveExperiment

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "LiveExperiment",
    "bind",
    "create_app",
    "is_loopback",
    "serve",
]
