"""One stored experiment as a notebook sees it: :func:`load` and :class:`Experiment`.

An :class:`Experiment` holds what it last read from the store: the spec, the
status, the trials of a sweep or the steps of a gradient run, the event log.
Each read is one consistent state of the store (one read transaction), so a
table never mixes two moments of a running experiment; :meth:`Experiment.refresh`
reads again, and only what changed where the store can tell (SQLite can). The
store is opened read-only: nothing is created or written, an older schema is
read through a migrated copy in memory, and a run writing the experiment is
never blocked.
"""

from __future__ import annotations

import copy
import os
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import unquote, urlsplit

from raysweep._checks import describe
from raysweep.errors import SpecError
from raysweep.objectives import Objectives
from raysweep.store import ExperimentStore, ReadPosition, StepRecord, open_experiment
from raysweep.store._base import Changes
from raysweep.trial import Trial, TrialState
from raysweep.view._frames import reports_frame, steps_frame, trials_frame
from raysweep.view._spec import META_KEYS, check_spec, spec_objectives, standing

if TYPE_CHECKING:
    from types import TracebackType

    import pandas as pd

__all__ = ["Experiment", "load"]


def load(path_or_url: str | os.PathLike[str]) -> Experiment:
    """Open a stored experiment (a sweep or a gradient run) for reading.

    Args:
        path_or_url: the experiment folder (``runs/NAME``), its ``experiment.db``,
            or a URL such as ``file:///abs/runs/NAME``: what ``raysweep status``
            takes.

    Raises:
        ExperimentNotFoundError: nothing is stored there (the message names close
            experiment names, or the experiments a storage folder holds).
        StoreError: the store is damaged, not a raysweep experiment, newer than
            this raysweep, or its stored spec is bad.
        SpecError: not a path or URL (an empty one included), or an unsupported
            URL scheme.

    Example:
        >>> import raysweep as rs
        >>> exp = rs.load("runs/demo")  # doctest: +SKIP
        >>> exp.best, exp.trials_dataframe().head()  # doctest: +SKIP
        >>> exp.refresh()  # doctest: +SKIP
        True
    """
    if not isinstance(path_or_url, str | os.PathLike) or not os.fspath(path_or_url):
        raise SpecError(
            f"load: expected an experiment folder, its experiment.db or a URL "
            f"(e.g. 'runs/demo'), got {describe(path_or_url)}"
        )
    store = open_experiment(path_or_url, readonly=True)
    try:
        return Experiment(store)
    except BaseException:
        store.close()
        raise


class Experiment:
    """A stored experiment, read-only, as of its last read (see :func:`load`).

    Attributes are read from what the experiment held at the last
    :meth:`refresh` (or at :func:`load`); they never touch the store themselves.
    Use it as a context manager, or call :meth:`close`, to release the store.
    """

    __slots__ = (
        "_events",
        "_lock",
        "_meta",
        "_objectives",
        "_position",
        "_spec",
        "_steps",
        "_store",
        "_trial_list",
        "_trials",
    )

    def __init__(self, store: ExperimentStore) -> None:
        """Read ``store`` (opened read-only); :func:`load` is the usual way in."""
        self._store = store
        # Reads may come from any thread (a notebook's, a web server's), one at a time.
        self._lock = threading.Lock()
        self._position: ReadPosition | None = None
        self._trials: dict[int, Trial] = {}
        self._trial_list: list[Trial] = []
        self._steps: dict[int, StepRecord] = {}
        self._events: list[dict[str, Any]] = []
        self._meta: dict[str, Any] = {}
        self._spec: dict[str, Any] = {}
        self._objectives: Objectives | None = None
        self.refresh()

    # -- reading ----------------------------------------------------------------------
    def refresh(self) -> bool:
        """Read the store again; ``True`` if anything changed since the last read.

        Reads only what changed where the store can tell (new and changed trials,
        new steps and events), all from one consistent state of the store.

        Raises:
            StoreError: the store became unreadable, or its spec was edited badly.
        """
        with self._lock:
            changes = self._store.read_changes(self._position, META_KEYS)
            if changes is None:
                return False
            return self._apply(changes)

    def _apply(self, changes: Changes) -> bool:
        spec = check_spec(changes.meta.get("spec"), self._store.describe())
        sweep = spec.get("kind", "sweep") != "gradient"
        objectives = spec_objectives(spec) if sweep else None  # checked before any change
        meta = dict(changes.meta)
        changed = meta != self._meta
        if changes.complete:
            trials = {t.trial_id: t for t in changes.trials}
            steps = {s.step: s for s in changes.steps}
            events = list(changes.events)
            changed = changed or (trials, steps, events) != (
                self._trials,
                self._steps,
                self._events,
            )
            self._trials, self._steps, self._events = trials, steps, events
        else:
            changed = changed or bool(changes.trials or changes.steps or changes.events)
            self._trials.update((t.trial_id, t) for t in changes.trials)
            self._steps.update((s.step, s) for s in changes.steps)
            self._events.extend(changes.events)
        if changes.trials or changes.complete:
            self._trial_list = sorted(self._trials.values(), key=lambda t: t.trial_id)
        self._meta, self._spec, self._objectives = meta, spec, objectives
        self._position = changes.position
        return changed

    def close(self) -> None:
        """Release the store; what was read stays readable."""
        with self._lock:
            self._store.close()

    def __enter__(self) -> Experiment:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        if self.kind == "gradient":
            size = f"{len(self._steps)} steps"
        else:
            size = f"{len(self._trial_list)} trials"
        return f"<Experiment {self.name!r} ({self.kind}, {self.status}, {size}) at {self.location}>"

    # -- what it is -------------------------------------------------------------------
    @property
    def name(self) -> str:
        """The experiment name (its folder's name when the spec has none)."""
        name = self._spec.get("name")
        if isinstance(name, str) and name:
            return name
        directory = self.directory
        return directory.name if directory is not None else self.location

    @property
    def kind(self) -> Literal["sweep", "gradient"]:
        """``"sweep"`` (black-box search) or ``"gradient"`` (a gradient-based fit)."""
        return "gradient" if self._spec.get("kind") == "gradient" else "sweep"

    @property
    def location(self) -> str:
        """The URL that :func:`load` (and ``raysweep status``) opens this experiment by."""
        return self._store.address()

    @property
    def directory(self) -> Path | None:
        """The experiment folder, for stores kept in files (else ``None``)."""
        parts = urlsplit(self.location)
        return Path(unquote(parts.path)) if parts.scheme == "file" else None

    @property
    def spec(self) -> dict[str, Any]:
        """The stored specification (a copy: changing it changes nothing stored)."""
        return copy.deepcopy(self._spec)

    @property
    def status(self) -> str:
        """The status as ``raysweep status`` shows it: the stored one ("running",
        "completed", "stopped", "failed", "unknown"), or "interrupted" for a
        running one whose driver is gone (judged now, from the last read)."""
        return standing(self._meta, time.time()).status

    @property
    def stop_reason(self) -> str | None:
        """Why it stopped, or what is wrong with its driver; ``None`` if nothing is known."""
        return standing(self._meta, time.time()).reason

    @property
    def meta(self) -> dict[str, Any]:
        """The stored meta values readers use (status, stop_reason, started_at,
        driver, heartbeat, ...), as of the last read."""
        return copy.deepcopy(self._meta)

    @property
    def started_at(self) -> datetime | None:
        """When the (last) run of it started, in UTC."""
        return _utc(self._meta.get("started_at"))

    @property
    def last_change(self) -> datetime | None:
        """The newest time stored anywhere: an event, a trial's start or end, a
        report, a step (UTC); ``None`` for an experiment that stored none."""
        times: list[Any] = [e.get("time") for e in self._events[-1:]]
        for t in self._trial_list:
            times += [t.created_at, t.queued_at, t.started_at, t.ended_at]
            times += [t.intermediate[-1].get("time")] if t.intermediate else []
        times += [s.time for s in self._steps.values()]
        numbers = [v for v in times if isinstance(v, int | float) and not isinstance(v, bool)]
        return _utc(max(numbers)) if numbers else None

    # -- sweeps -----------------------------------------------------------------------
    @property
    def objectives(self) -> Objectives | None:
        """What a sweep optimizes (metrics and directions); ``None`` for a gradient run."""
        return self._objectives

    @property
    def trials(self) -> list[Trial]:
        """Every trial of a sweep, by id; ``[]`` for a gradient run."""
        return list(self._trial_list)

    def counts(self) -> dict[TrialState, int]:
        """How many trials are in each state (states with none are left out)."""
        return dict(Counter(t.state for t in self._trial_list))

    def error_trials(self) -> list[Trial]:
        """The FAILED trials, by id (``trial.error`` holds the traceback)."""
        return [t for t in self._trial_list if t.state is TrialState.FAILED]

    @property
    def best(self) -> Trial | None:
        """The COMPLETED trial best on the primary metric (``None`` before one, and
        for a gradient run); with several metrics see :attr:`pareto_front`."""
        return None if self._objectives is None else self._objectives.best(self._trial_list)

    @property
    def pareto_front(self) -> list[Trial]:
        """The COMPLETED trials no other trial beats on every metric, by id (with one
        metric: those sharing the best value); ``[]`` for a gradient run."""
        if self._objectives is None:
            return []
        return self._objectives.pareto_front(self._trial_list)

    def trials_dataframe(self) -> pd.DataFrame:
        """One row per trial: ``trial_id, state, attempts, last_step, parent_id, node,
        queued_at, started_at, ended_at, duration_s, error`` (its last line), with
        several metrics ``pareto``, then ``config/<name>`` and ``metrics/<name>``.
        The ``*_at`` columns are UTC timestamps (``NaT`` where unset).

        Example:
            >>> df = exp.trials_dataframe()  # doctest: +SKIP
            >>> df[df.state == "COMPLETED"].sort_values("metrics/loss").head()  # doctest: +SKIP
        """
        return trials_frame(self._trial_list, self._objectives)

    def reports_dataframe(self) -> pd.DataFrame:
        """The ``raysweep.report()`` series of every trial, long: one row per
        (trial, report, metric) with ``trial_id, step, metric, value``, plus ``time``
        (UTC timestamp) and ``time_total_s`` (seconds since the trial's start)
        where the reports carry them.

        Example:
            >>> long = exp.reports_dataframe()  # doctest: +SKIP
            >>> loss = long[long.metric == "loss"]  # doctest: +SKIP
            >>> loss.pivot(index="step", columns="trial_id", values="value")  # doctest: +SKIP
        """
        return reports_frame(self._trial_list)

    # -- gradient runs ----------------------------------------------------------------
    @property
    def steps(self) -> list[StepRecord]:
        """Every stored step of a gradient run, oldest first; ``[]`` for a sweep."""
        return [self._steps[s] for s in sorted(self._steps)]

    def steps_dataframe(self) -> pd.DataFrame:
        """One row per stored step of a gradient run: ``step``, ``time`` (UTC
        timestamp, when it was stored), then the step data flattened with ``/``:
        ``loss`` (the mean), ``losses/<objective>``, ``grad_norm``,
        ``params/<name>`` (scalars; short arrays one column per element,
        ``params/<name>/<i>``; large arrays are left out, see :attr:`steps`),
        ``timings/step_s``, ``timings/simulators_s/<simulator>``,
        ``timings/objectives_s/<objective>``, ``simulators_run`` (names joined
        with ``;``), ``not_ready_retries`` and ``aux/<objective>/<key>``: whatever
        the run stored.

        Example:
            >>> exp.steps_dataframe().plot(x="step", y="loss")  # doctest: +SKIP
        """
        return steps_frame(self.steps)

    # -- the event log ----------------------------------------------------------------
    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        """The event log (created, started, resumed, retries, stops...), oldest first,
        optionally of one ``kind``: dicts of ``time`` (Unix seconds), ``kind``,
        ``trial_id`` and ``data``."""
        return [copy.deepcopy(e) for e in self._events if kind is None or e.get("kind") == kind]


def _utc(value: Any) -> datetime | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    return None
