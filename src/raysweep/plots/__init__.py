"""Figures of an experiment, and ``raysweep report``: one self-contained HTML file.

(Not ``raysweep.report``: that name is the function a trial calls to report a
metric, and a subpackage of that name would shadow it once imported.)

The figures are pure functions of the experiment's tables (:mod:`.figures`,
:mod:`.params`, :mod:`.timeline`, :mod:`.gradient`), assembled per kind of
experiment by :func:`build_sections`; the report (:func:`write_report`) and the
dashboard (:mod:`raysweep.dashboard`) lay out the same sections. plotly is the
optional ``report`` extra, imported on first use.

Example:
    >>> from raysweep.plots import write_report
    >>> write_report("runs/demo", "report.html")  # doctest: +SKIP
    PosixPath('report.html')
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from raysweep._files import write_text_atomic
from raysweep.plots._data import Section
from raysweep.plots.sections import ExperimentLike, build_sections, summary

__all__ = ["ExperimentLike", "Section", "build_sections", "render", "summary", "write_report"]


def render(exp: ExperimentLike) -> str:
    """The report of ``exp`` as it stands, as HTML text."""
    from raysweep.plots.html import render_report

    return render_report(exp.name, summary(exp), build_sections(exp))


def write_report(source: str | os.PathLike[str] | Any, path: str | os.PathLike[str]) -> Path:
    """Write the report of ``source`` (an experiment folder or URL, or an experiment
    from ``raysweep.load``) to ``path``, replacing it in one step (a reader never sees
    half a file). Works on a running experiment: it shows the state when read."""
    import raysweep

    exp = raysweep.load(source) if isinstance(source, str | os.PathLike) else source
    return write_text_atomic(path, render(exp))
