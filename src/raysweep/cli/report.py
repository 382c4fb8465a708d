"""``raysweep report DIR -o report.html``: an experiment as one HTML file that opens offline.

It reads the store read-only (like ``raysweep status``), so it can be made while
the experiment runs: the file shows the experiment as it was when read.
"""

from __future__ import annotations

from pathlib import Path

import click

from raysweep.cli._format import display_path

__all__ = ["report_command"]


@click.command("report")
@click.argument("directory", metavar="DIR")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("report.html"),
    show_default=True,
    help="The HTML file to write (replaced if it exists).",
)
def report_command(directory: str, output: Path) -> None:
    """Write an HTML report of an experiment: history, importance, timeline, errors...

    DIR is the experiment folder (runs/NAME), its experiment.db, or a file:// URL.
    The file holds plotly.js itself, so it opens without a network. Safe to run
    while the experiment is running. Needs: pip install "raysweep[report]".
    """
    import raysweep
    from raysweep.plots import write_report

    if not output.parent.is_dir():
        raise click.BadParameter(
            f"folder {display_path(output.parent)} does not exist", param_hint="'-o'"
        )
    with raysweep.load(directory) as exp:
        written = write_report(exp, output)
    click.echo(f"wrote {display_path(written)}")
