"""One self-contained HTML file of an experiment: opens offline, anywhere.

plotly.js is inlined from the plotly package (about 4.6 MB; no CDN, so the file
opens on a cluster's login node or in a mail attachment), each figure is its
JSON in the page, and :func:`page_style` is shared with the dashboard so both
look the same. Each plot sits in ``<div id="plot-<key>">`` (the browser tests,
and any reader's script, find it there).
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from raysweep.plots._data import Section
from raysweep.plots._plotly import plotly_js

__all__ = ["PAGE_STYLE", "figure_json", "render_report", "section_html"]

PAGE_STYLE = """
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 1200px; padding: 1em 2em;
       color: #222; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
h2 { font-size: 1.15em; margin: 1.6em 0 0.2em; border-bottom: 1px solid #ddd; }
table.summary td:first-child { color: #666; padding-right: 1em; }
p.about { color: #555; margin: 0.2em 0 0.6em; font-size: 0.92em; }
p.note { color: #8a5a00; font-size: 0.92em; }
table.rows { border-collapse: collapse; font-size: 0.9em; width: 100%; }
table.rows th, table.rows td { border-bottom: 1px solid #eee; padding: 0.25em 0.6em;
                               text-align: left; vertical-align: top; }
table.rows th { background: #f6f6f6; cursor: pointer; user-select: none; }
footer { color: #888; font-size: 0.8em; margin-top: 2em; }
"""


def figure_json(figure: Any) -> str:
    """A figure as JSON that is safe inside ``<script>`` (no ``</`` can close it)."""
    return str(figure.to_json()).replace("</", "<\\/")


def table_html(rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in rows[0])
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows[1:]
    )
    return f'<table class="rows"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def section_html(section: Section) -> str:
    """A section's heading, how to read it, its plot's ``div`` or table, and its note."""
    key = html.escape(section.key)
    parts = [
        f'<section id="section-{key}">',
        f"<h2>{html.escape(section.title)}</h2>",
        f'<p class="about">{html.escape(section.about)}</p>',
    ]
    if section.figure is not None:
        parts.append(f'<div class="plot" id="plot-{key}"></div>')
    if section.table is not None:
        parts.append(f'<div id="table-{key}">{table_html(section.table)}</div>')
    if section.note:
        parts.append(f'<p class="note" id="note-{key}">{html.escape(section.note)}</p>')
    parts.append("</section>")
    return "\n".join(parts)


def render_report(
    title: str, summary: Sequence[tuple[str, str]], sections: Sequence[Section]
) -> str:
    """The whole page: summary table, sections, and the scripts that draw them."""
    rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>" for k, v in summary
    )
    draws = "\n".join(
        f"Plotly.newPlot({json.dumps('plot-' + s.key)}, ...spec({figure_json(s.figure)}));"
        for s in sections
        if s.figure is not None
    )
    made = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{html.escape(title)} · raysweep report</title>
<style>{PAGE_STYLE}</style>
<script>{plotly_js()}</script>
</head><body>
<h1>{html.escape(title)}</h1>
<table class="summary" id="summary">{rows}</table>
{"".join(section_html(s) for s in sections)}
<footer>raysweep report, made {made} from the experiment store.</footer>
<script>
function spec(f) {{ return [f.data, f.layout, {{responsive: true, displaylogo: false}}]; }}
{draws}
</script>
</body></html>
"""
