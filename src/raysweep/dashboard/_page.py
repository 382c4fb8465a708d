"""The dashboard's page and its script, served by the app itself (no CDN).

They live here as text, not as package data files, so an installed wheel holds
them without a ``package-data`` entry and the app never reads a file at request
time. The script polls the JSON endpoints with the version it last drew
(``?since=N``); an unchanged experiment answers in a few bytes. Figures are
redrawn with ``Plotly.react`` and a ``uirevision`` per plot, so a zoom or an axis
filter survives a refresh.
"""

from __future__ import annotations

import html

from raysweep.plots.html import PAGE_STYLE

__all__ = ["SCRIPT", "page"]

_EXTRA_STYLE = """
#status { color: #666; font-size: 0.85em; }
#trials-controls { margin: 0.5em 0; }
#trials-controls input { width: 24em; }
th.asc::after { content: " ▲"; } th.desc::after { content: " ▼"; }
"""


def page(title: str, poll_ms: int) -> str:
    """The HTML shell; the script fills it from the JSON endpoints."""
    name = html.escape(title)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{name} · raysweep dashboard</title>
<link rel="icon" href="data:,">
<style>{PAGE_STYLE}{_EXTRA_STYLE}</style>
<script src="static/plotly.min.js"></script>
<script src="static/dashboard.js"></script>
</head><body data-poll-ms="{poll_ms}">
<h1>{name}</h1>
<p id="status">loading…</p>
<table class="summary" id="summary"></table>
<div id="sections"></div>
<section id="section-trials"><h2>Trials</h2>
<p class="about">Every trial (every step of a gradient run) as stored; type to filter
(any cell, or <code>column=value</code>), click a heading to sort.</p>
<div id="trials-controls">
<input id="trials-filter" placeholder="filter, e.g. COMPLETED or node=10.0.0.1">
<span id="trials-count"></span></div>
<table class="rows" id="trials-table"><thead></thead><tbody></tbody></table>
</section>
<footer>raysweep dashboard: read-only, refreshes while the experiment runs.</footer>
</body></html>
"""


SCRIPT = r"""
"use strict";
const state = {sections: null, trials: null, columns: [], rows: [], sort: null, desc: false};

function el(tag, attrs, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}

async function getJSON(path, since) {
  const url = since === null ? path : `${path}?since=${since}`;
  const response = await fetch(url, {cache: "no-store"});
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

function drawSummary(lines) {
  const table = document.getElementById("summary");
  table.replaceChildren(...lines.map(([k, v]) => {
    const row = el("tr"); row.append(el("td", {}, k), el("td", {}, v)); return row;
  }));
}

function sectionBox(section) {
  let box = document.getElementById(`section-${section.key}`);
  if (!box) {
    box = el("section", {id: `section-${section.key}`});
    const key = section.key;
    box.append(el("h2"), el("p", {class: "about"}), el("div", {class: "plot", id: `plot-${key}`}),
               el("div", {id: `table-${key}`}), el("p", {class: "note", id: `note-${key}`}));
    document.getElementById("sections").append(box);
  }
  return box;
}

function drawTable(holder, rows) {
  if (!rows) { holder.replaceChildren(); return; }
  const table = el("table", {class: "rows"});
  const head = el("tr"); rows[0].forEach(c => head.append(el("th", {}, c)));
  const body = el("tbody");
  rows.slice(1).forEach(r => {
    const tr = el("tr"); r.forEach(c => tr.append(el("td", {}, c))); body.append(tr);
  });
  const thead = el("thead"); thead.append(head); table.append(thead, body);
  holder.replaceChildren(table);
}

function drawSections(payload) {
  document.title = `${payload.name} · raysweep dashboard`;
  drawSummary(payload.summary);
  for (const section of payload.sections) {
    const box = sectionBox(section);
    box.querySelector("h2").textContent = section.title;
    box.querySelector("p.about").textContent = section.about;
    box.querySelector("p.note").textContent = section.note || "";
    drawTable(document.getElementById(`table-${section.key}`), section.table);
    const plot = document.getElementById(`plot-${section.key}`);
    if (section.figure) {
      const layout = Object.assign({}, section.figure.layout, {uirevision: section.key});
      Plotly.react(plot, section.figure.data, layout, {responsive: true, displaylogo: false});
    } else if (plot.data) {
      Plotly.purge(plot);
    }
  }
}

function cellText(value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "number" && !Number.isInteger(value)) return value.toPrecision(6);
  return String(value);
}

function matches(row, filter) {
  if (!filter) return true;
  return filter.split(/\s+/).filter(Boolean).every(term => {
    const eq = term.indexOf("=");
    if (eq > 0) {
      const col = state.columns.indexOf(term.slice(0, eq));
      return col >= 0 && cellText(row[col]).toLowerCase() === term.slice(eq + 1).toLowerCase();
    }
    return row.some(v => cellText(v).toLowerCase().includes(term.toLowerCase()));
  });
}

function compare(a, b) {
  if (a === b) return 0;
  if (a === null || a === undefined) return 1;
  if (b === null || b === undefined) return -1;
  if (typeof a === "number" && typeof b === "number") return a - b;
  return String(a).localeCompare(String(b));
}

function drawTrials() {
  const table = document.getElementById("trials-table");
  const head = el("tr");
  state.columns.forEach((c, i) => {
    const th = el("th", {"data-column": c}, c);
    if (state.sort === i) th.className = state.desc ? "desc" : "asc";
    th.addEventListener("click", () => {
      state.desc = state.sort === i ? !state.desc : false; state.sort = i; drawTrials();
    });
    head.append(th);
  });
  table.querySelector("thead").replaceChildren(head);
  const filter = document.getElementById("trials-filter").value.trim();
  let rows = state.rows.filter(r => matches(r, filter));
  if (state.sort !== null) {
    const sign = state.desc ? -1 : 1;
    rows = rows.slice().sort((a, b) => compare(a[state.sort], b[state.sort]) * sign);
  }
  const id = 0;  // trial_id, or a gradient run's step
  table.querySelector("tbody").replaceChildren(...rows.map(r => {
    const tr = el("tr", {"data-id": cellText(r[id])});
    r.forEach(v => tr.append(el("td", {}, cellText(v)))); return tr;
  }));
  const count = document.getElementById("trials-count");
  count.textContent = `${rows.length} of ${state.rows.length} shown`;
}

async function refresh() {
  const status = document.getElementById("status");
  try {
    const sections = await getJSON("api/sections", state.sections);
    if (sections.changed) drawSections(sections);
    state.sections = sections.version;
    const trials = await getJSON("api/trials", state.trials);
    if (trials.changed) { state.columns = trials.columns; state.rows = trials.rows; drawTrials(); }
    state.trials = trials.version;
    status.textContent = `version ${state.sections} · checked ${new Date().toLocaleTimeString()}`;
    status.dataset.version = String(state.sections);
  } catch (err) {
    status.textContent = `cannot reach the dashboard: ${err.message}`;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("trials-filter").addEventListener("input", drawTrials);
  const every = Number(document.body.dataset.pollMs) || 2000;
  const loop = async () => { await refresh(); setTimeout(loop, every); };
  loop();
});
"""
