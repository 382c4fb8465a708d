"""The dashboard's web app (Starlette) and the server that runs it (uvicorn).

Routes, all read-only (GET):

===========================  =========================================================
``/``                        the page (:mod:`._page`)
``/static/plotly.min.js``    plotly.js from the installed plotly package (no CDN)
``/static/dashboard.js``     the page's script
``/api/sections?since=N``    summary and sections (plotly JSON figures, notes, tables)
``/api/trials?since=N``      the trials table (a gradient run: its steps)
===========================  =========================================================

``since`` is the version the client last drew; when nothing changed the answer
is ``{"version": N, "changed": false}``. Endpoints are plain functions, which
Starlette runs in its thread pool, so a slow store read never stalls the server.

It listens on 127.0.0.1 unless another host is asked for: the page shows the
experiment's configurations and errors to whoever can reach it. Over SSH, use a
tunnel (``ssh -L 8765:127.0.0.1:8765 login-node``) rather than ``--host 0.0.0.0``.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable
from typing import Any

from raysweep._extras import require
from raysweep.dashboard._page import SCRIPT, page
from raysweep.dashboard.live import LiveExperiment, Refreshable
from raysweep.errors import SpecError
from raysweep.plots._plotly import plotly_js

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "POLL_MS", "bind", "create_app", "is_loopback", "serve"]

#: What needs the ``dashboard`` extra, for the missing-library message.
_FEATURE = "raysweep dashboard"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
#: How often the page asks for changes.
POLL_MS = 2000


def create_app(
    source: str | os.PathLike[str] | Callable[[], Refreshable],
    poll_ms: int = POLL_MS,
    min_interval_s: float = 1.0,
) -> Any:
    """The Starlette app serving the experiment at ``source`` (a folder or URL, as
    ``raysweep.load`` takes, or a function opening it), re-read at most every
    ``min_interval_s``. The experiment is opened here: a missing one raises now.
    :func:`serve` closes it when the server stops (``app.state.live.close()``)."""
    applications = require("starlette.applications", "dashboard", _FEATURE)
    responses = require("starlette.responses", "dashboard", _FEATURE)
    routing = require("starlette.routing", "dashboard", _FEATURE)
    bundle = plotly_js("raysweep dashboard")
    if callable(source):
        opener = source
    else:
        from raysweep.view import load

        def opener() -> Refreshable:
            return load(source)

    live = LiveExperiment(opener, min_interval_s=min_interval_s)
    shell = page(live.exp.name, poll_ms)

    def since(request: Any) -> int | None:
        value = request.query_params.get("since")
        return int(value) if value is not None and value.isdigit() else None

    def text(body: str, media: str) -> Callable[[Any], Any]:
        def endpoint(request: Any) -> Any:
            return responses.Response(body, media_type=media)

        return endpoint

    def sections(request: Any) -> Any:
        return responses.Response(live.sections_json(since(request)), media_type="application/json")

    def trials(request: Any) -> Any:
        return responses.Response(live.trials_json(since(request)), media_type="application/json")

    js = "application/javascript; charset=utf-8"
    routes = [
        routing.Route("/", text(shell, "text/html; charset=utf-8")),
        routing.Route("/static/plotly.min.js", text(bundle, js)),
        routing.Route("/static/dashboard.js", text(SCRIPT, js)),
        routing.Route("/api/sections", sections),
        routing.Route("/api/trials", trials),
    ]
    app = applications.Starlette(routes=routes)
    app.state.live = live
    return app


def is_loopback(host: str) -> bool:
    """Whether ``host`` is only reachable from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: any free one).

    Raises:
        SpecError: the port is taken or the host is not an address of this machine.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise SpecError(f"--host: cannot resolve {host!r}: {exc.strerror}") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise SpecError(
            f"cannot listen on {host}:{port}: {exc.strerror}; choose another --port (0: any free)"
        ) from None
    sock.listen(64)
    return sock


def serve(app: Any, sock: socket.socket) -> None:
    """Run ``app`` on the bound ``sock`` until interrupted (Ctrl-C, SIGTERM), then
    release the experiment."""
    try:
        uvicorn = require("uvicorn", "dashboard", _FEATURE)
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        app.state.live.close()
        sock.close()
