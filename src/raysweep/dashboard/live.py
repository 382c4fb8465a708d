"""The dashboard's view of a running experiment: refreshed on demand, at a bounded rate.

Every browser tab polls; the store is read at most once per ``min_interval_s``
whatever the number of tabs, and :meth:`Experiment.refresh` reads only what
changed since the last read (new and changed trials, new steps), from a
read-only connection, so the run writing the store is never blocked. Each change
bumps a version; the JSON payloads are built once per version and kept, so a
poll that finds nothing new costs one comparison (``since`` equal to the
version answers ``{"version": N, "changed": false}``).

Example:
    >>> live = LiveExperiment(lambda: raysweep.load("runs/demo"))  # doctest: +SKIP
    >>> live.sections_json(since=None)[:40]  # doctest: +SKIP
    '{"version": 1, "changed": true, "summa'
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from raysweep.plots._data import Section, state_of
from raysweep.plots.sections import ExperimentLike, build_sections, summary

__all__ = ["MIN_INTERVAL_S", "TABLE_COLUMNS", "LiveExperiment", "Refreshable"]

#: The shortest time between two reads of the store, whatever the number of polls.
MIN_INTERVAL_S = 1.0
#: The trials table's first columns; the config and metric columns follow.
TABLE_COLUMNS = ("trial_id", "state", "node", "attempts", "started_at", "duration_s", "error")


class Refreshable(ExperimentLike, Protocol):
    """An experiment that can read its store again (``raysweep.load()``'s)."""

    def refresh(self) -> bool: ...


class LiveExperiment:
    """One experiment behind the dashboard: its version and cached JSON payloads.

    The store's connection belongs to the thread that opened it (SQLite's rule),
    and the web server answers from a pool of threads; so the experiment is opened,
    re-read and drawn on one thread of its own, and every request waits for it
    there. That also serializes reads: two tabs never read the store at once.

    Args:
        open_experiment: opens the experiment, read-only (``lambda: raysweep.load(path)``);
            called once, on that thread. Its errors are raised here.
        min_interval_s: the least time between two store reads.
        clock: a monotonic time source (tests pass their own).
    """

    def __init__(
        self,
        open_experiment: Callable[[], Refreshable],
        min_interval_s: float = MIN_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="raysweep-dashboard")
        try:
            self.exp = self._thread.submit(open_experiment).result()
        except BaseException:
            self._thread.shutdown(wait=False)
            raise
        self.min_interval_s = min_interval_s
        self._clock = clock
        self._read_at = clock()
        self.version = 1
        self._cache: dict[str, tuple[int, str]] = {}

    def close(self) -> None:
        """Release the store and the thread."""
        close = getattr(self.exp, "close", None)
        if close is not None:
            self._thread.submit(close).result()
        self._thread.shutdown(wait=True)

    def poll(self) -> int:
        """Read the store again if the last read is old enough; the current version."""
        return self._thread.submit(self._poll).result()

    def _poll(self) -> int:
        now = self._clock()
        if now - self._read_at >= self.min_interval_s:
            self._read_at = now
            if self.exp.refresh():
                self.version += 1
        return self.version

    def sections_json(self, since: int | None) -> str:
        """The summary and every section (figures as plotly JSON), or ``changed: false``."""
        return self._payload("sections", since, self._sections)

    def trials_json(self, since: int | None) -> str:
        """The trials table (columns and rows), or ``changed: false``."""
        return self._payload("trials", since, self._trials)

    def _payload(self, name: str, since: int | None, build: Callable[[], str]) -> str:
        return self._thread.submit(self._answer, name, since, build).result()

    def _answer(self, name: str, since: int | None, build: Callable[[], str]) -> str:
        version = self._poll()
        if since == version:
            return json.dumps({"version": version, "changed": False})
        cached = self._cache.get(name)
        if cached is None or cached[0] != version:
            body = build()
            cached = (version, f'{{"version": {version}, "changed": true, {body}}}')
            self._cache[name] = cached
        return cached[1]

    def _sections(self) -> str:
        head = json.dumps([list(line) for line in summary(self.exp)])
        parts = ", ".join(_section_json(s) for s in build_sections(self.exp))
        return f'"name": {json.dumps(self.exp.name)}, "summary": {head}, "sections": [{parts}]'

    def _trials(self) -> str:
        if self.exp.kind == "gradient":
            frame = self.exp.steps_dataframe()
            columns = [str(c) for c in frame.columns]
        else:
            frame = self.exp.trials_dataframe()
            extra = [c for c in frame.columns if str(c).startswith(("metrics/", "config/"))]
            columns = [c for c in TABLE_COLUMNS if c in frame.columns] + sorted(
                extra, key=lambda c: (not str(c).startswith("metrics/"), str(c))
            )
        rows = [[_cell(v) for v in row] for row in frame[columns].itertuples(index=False)]
        return (
            f'"kind": {json.dumps(self.exp.kind)}, '
            + json.dumps({"columns": columns, "rows": rows}, allow_nan=False)[1:-1]
        )


def _section_json(section: Section) -> str:
    fields = {
        "key": section.key,
        "title": section.title,
        "about": section.about,
        "note": section.note,
        "table": section.table,
    }
    figure = "null" if section.figure is None else str(section.figure.to_json())
    return json.dumps(fields)[:-1] + f', "figure": {figure}}}'


def _cell(value: Any) -> Any:
    """A table cell as JSON: times as UTC text to the second, NaN and NaT as null."""
    import pandas as pd

    if value is None or (not isinstance(value, list | dict | tuple) and pd.isna(value)):
        return None
    if hasattr(value, "strftime"):  # UTC; sorts as text
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, bool | int | str):
        return value
    return state_of(value) if hasattr(value, "value") else str(value)
