"""The timeline of trials per node and worker: how busy the cluster was, and where the gaps were.

The store records the node of each trial, not the worker slot on it, so slots
are rebuilt here: on each node a trial takes the first slot free at its start
(greedy interval colouring, which uses as many slots as the most trials that
ran there at once). That is the least number of workers the node needed, which
on Ray is what it ran. A bar per trial spans its run; a pale bar before it is the
time it waited in the cluster's queue.

Example:
    >>> lanes = assign_lanes([("n1", 0.0, 5.0), ("n1", 1.0, 2.0), ("n1", 5.0, 6.0)])
    >>> lanes
    [0, 1, 0]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from raysweep.plots._data import Section, state_of, utc
from raysweep.plots._plotly import go
from raysweep.plots.figures import STATE_COLORS, layout

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Usage", "assign_lanes", "timeline", "usage"]


def assign_lanes(spans: Sequence[tuple[str, float, float]]) -> list[int]:
    """A slot per ``(node, start, end)``: the lowest slot of that node free at ``start``."""
    order = sorted(range(len(spans)), key=lambda i: (spans[i][1], i))
    free_at: dict[str, list[float]] = {}
    lanes = [0] * len(spans)
    for i in order:
        node, start, end = spans[i]
        slots = free_at.setdefault(node, [])
        lane = next((k for k, t in enumerate(slots) if t <= start), len(slots))
        if lane == len(slots):
            slots.append(end)
        else:
            slots[lane] = end
        lanes[i] = lane
    return lanes


@dataclass(frozen=True, slots=True)
class Usage:
    """How busy the workers were between the first start and the last end.

    Attributes:
        busy: the share of worker time (slots times span) spent running trials.
        longest_gap_s: the longest time in which no trial ran anywhere.
        slots: workers (slots over all nodes).
    """

    busy: float
    longest_gap_s: float
    slots: int


def usage(spans: Sequence[tuple[str, float, float]], lanes: Sequence[int]) -> Usage | None:
    """The :class:`Usage` of ``spans`` on ``lanes``; ``None`` without a span of positive length."""
    if not spans:
        return None
    first = min(s[1] for s in spans)
    last = max(s[2] for s in spans)
    if last <= first:
        return None
    slots = len({(s[0], lane) for s, lane in zip(spans, lanes, strict=True)})
    busy = sum(s[2] - s[1] for s in spans) / (slots * (last - first))
    gap, reach = 0.0, first
    for _, start, end in sorted(spans, key=lambda s: s[1]):
        gap = max(gap, start - reach)
        reach = max(reach, end)
    return Usage(busy, gap, slots)


def timeline(trials: pd.DataFrame, now: pd.Timestamp) -> Section:
    """A bar per started trial on its node's slot, coloured by state; the running
    ones end at ``now``."""
    about = (
        "One row per worker slot (slots rebuilt from the nodes and times the store records), "
        "one bar per trial, coloured by its state; pale bars are time spent queued for "
        "resources. White space between bars is idle capacity; a wide gap across every row "
        "is time when nothing ran (the driver, the searcher, or a wait for resources)."
    )
    if trials.empty or "started_at" not in trials:
        return Section("timeline", "Timeline", about, note="no trial has started yet")
    started = trials[utc(trials["started_at"]).notna()].sort_values("trial_id")
    if started.empty:
        return Section("timeline", "Timeline", about, note="no trial has started yet")
    begin = utc(started["started_at"])
    end = utc(started["ended_at"]).fillna(now)
    queued = utc(started["queued_at"]) if "queued_at" in started else begin
    nodes = [n if isinstance(n, str) and n else "unknown node" for n in started["node"]]
    spans = [
        (node, b.timestamp(), max(e, b).timestamp())
        for node, b, e in zip(nodes, begin, end, strict=True)
    ]
    lanes = assign_lanes(spans)
    labels = [f"{node} · {lane + 1}" for node, lane in zip(nodes, lanes, strict=True)]
    states = [state_of(s) for s in started["state"]]
    ids = [int(t) for t in started["trial_id"]]
    g = go()
    figure = g.Figure()
    waits = [
        (label, q, b)
        for label, q, b in zip(labels, queued, begin, strict=True)
        if q == q and q is not None and b > q
    ]
    if waits:
        figure.add_trace(
            _bars(
                g,
                "queued",
                "#deebf7",
                [w[0] for w in waits],
                [w[1] for w in waits],
                [w[2] for w in waits],
                None,
            )
        )
    for state in dict.fromkeys(states):
        pick = [i for i, s in enumerate(states) if s == state]
        figure.add_trace(
            _bars(
                g,
                state.lower(),
                STATE_COLORS.get(state, "#636363"),
                [labels[i] for i in pick],
                [begin.iloc[i] for i in pick],
                [end.iloc[i] for i in pick],
                [ids[i] for i in pick],
            )
        )
    figure.update_xaxes(type="date")
    figure.update_yaxes(categoryorder="category descending")
    figure.update_layout(barmode="overlay")
    rows = len(set(labels))
    figure = layout(figure, x="time (UTC)", y="node · slot", height=max(260, 80 + 22 * rows))
    use = usage(spans, lanes)
    note = None
    if use is not None:
        note = (
            f"{use.slots} worker slot(s) busy {use.busy:.0%} of the time from the first start "
            f"to the last end; longest time with nothing running: {use.longest_gap_s:.3g} s"
        )
    return Section("timeline", "Timeline of trials per node", about, figure, note=note)


def _bars(
    g: Any,
    name: str,
    color: str,
    rows: list[str],
    starts: list[Any],
    ends: list[Any],
    ids: list[int] | None,
) -> Any:
    """Horizontal bars from ``starts`` to ``ends`` (a date axis: base is the start, the
    length in milliseconds), one per row label."""
    base = [s.strftime("%Y-%m-%d %H:%M:%S.%f") for s in starts]
    length = [(e - s).total_seconds() * 1000.0 for s, e in zip(starts, ends, strict=True)]
    hover = (
        ("trial %{customdata} " + name + "<br>%{base} +%{x:.0f} ms<extra></extra>")
        if ids
        else ("queued<br>%{base} +%{x:.0f} ms<extra></extra>")
    )
    return g.Bar(
        x=length,
        base=base,
        y=rows,
        orientation="h",
        name=name,
        customdata=ids,
        marker={"color": color},
        hovertemplate=hover,
    )
