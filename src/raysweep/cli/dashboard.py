"""``raysweep dashboard DIR``: a local web page that follows an experiment live.

It listens on 127.0.0.1 by default; another interface only with an explicit
``--host`` (the page shows configurations and errors to whoever reaches it).
From a laptop, reach a dashboard on a cluster's login node through a tunnel:
``ssh -L 8765:127.0.0.1:8765 login-node``, then open http://127.0.0.1:8765/.
"""

from __future__ import annotations

import click

__all__ = ["dashboard_command"]


@click.command("dashboard")
@click.argument("directory", metavar="DIR")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8765,
    show_default=True,
    help="Port to listen on (0: any free port, printed at start).",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Interface to listen on; anything but loopback exposes the experiment to the network.",
)
def dashboard_command(directory: str, port: int, host: str) -> None:
    """Serve a live dashboard of an experiment: plots and a trials table that
    refresh while it runs.

    DIR is the experiment folder (runs/NAME), its experiment.db, or a file:// URL.
    The store is read read-only; the run is never blocked. Ctrl-C stops the server.
    Needs: pip install "raysweep[dashboard]".
    """
    from raysweep.dashboard import bind, create_app, is_loopback, serve

    app = create_app(directory)
    try:
        sock = bind(host, port)
    except BaseException:
        app.state.live.close()
        raise
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    name = app.state.live.exp.name
    click.echo(f"dashboard of {name} on http://{shown}:{bound}/ (Ctrl-C stops it)")
    if not is_loopback(host):
        click.echo(
            f"warning: listening on {host}: anyone who can reach this machine can see the "
            "experiment; prefer the default 127.0.0.1 and an SSH tunnel (ssh -L)",
            err=True,
        )
    serve(app, sock)
