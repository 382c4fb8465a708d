"""The experiment store interface: everything an experiment knows, durably.

The runner commits every state change through this interface *before* it acts on
it, so a crash at any moment loses at most the work of trials that were running.
Everything is stored as JSON, never pickle, so an experiment stays readable by
any later version and by other tools.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from raysweep.trial import Trial, TrialState

__all__ = ["Changes", "ExperimentStore", "NewTrial", "ReadPosition", "StepRecord", "TrialUpdate"]


@dataclass(frozen=True, slots=True)
class NewTrial:
    """A trial the searcher proposed, written together with the searcher's state."""

    trial_id: int
    config: Mapping[str, Any]
    state: TrialState = TrialState.PENDING
    created_at: float = 0.0
    started_at: float | None = None
    attempts: int = 0
    queued_at: float | None = None


@dataclass(frozen=True, slots=True)
class TrialUpdate:
    """A change of one trial; ``None`` fields are left as stored.

    ``reports`` are appended to the trial's intermediate series; ``replace_reports``
    first clears the series (a re-run attempt starts a new series). ``clear`` names
    columns to reset to NULL (``"error"``, ``"started_at"``, ``"ended_at"``,
    ``"node"``), which a ``None`` field cannot express. ``config`` and
    ``parent_id`` change only when population-based training exploits another
    trial: the trial goes on with a new configuration from ``parent_id``'s checkpoint.
    """

    trial_id: int
    state: TrialState | None = None
    metrics: Mapping[str, float] | None = None
    error: str | None = None
    started_at: float | None = None
    ended_at: float | None = None
    node: str | None = None
    attempts: int | None = None
    reports: Sequence[Mapping[str, Any]] = ()
    replace_reports: bool = False
    clear: frozenset[str] = frozenset()
    queued_at: float | None = None
    config: Mapping[str, Any] | None = None
    parent_id: int | None = None


@dataclass(frozen=True, slots=True)
class StepRecord:
    """One completed step of a gradient run, as stored."""

    step: int
    data: Mapping[str, Any]
    time: float
    checkpoint: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ReadPosition:
    """Where a reader's last :meth:`ExperimentStore.read_changes` left off.

    Opaque to readers: they hand it back on their next call. ``None`` fields
    mean "unknown": the next read is a complete one.

    Attributes:
        generation: what tells this stored experiment from another one put at the
            same place later; a different one means the reader starts again.
        trials: the change number of the newest trial change seen.
        events: the id of the newest event seen.
        step: the newest gradient step seen.
        version: the store's own "has anything changed" token.
    """

    generation: Any = None
    trials: int | None = None
    events: int | None = None
    step: int | None = None
    version: Any = None


@dataclass(frozen=True, slots=True)
class Changes:
    """What :meth:`ExperimentStore.read_changes` returns: one consistent state.

    ``complete``: these are ALL trials, steps and events (replace what you hold);
    otherwise only the trials that are new or changed (each whole, with all its
    reports), and the steps and events after the position read from. ``meta``
    always holds every key asked for (``None`` where unset).
    """

    position: ReadPosition
    complete: bool
    trials: tuple[Trial, ...] = ()
    steps: tuple[StepRecord, ...] = ()
    events: tuple[dict[str, Any], ...] = ()
    meta: Mapping[str, Any] = field(default_factory=dict)


class ExperimentStore(abc.ABC):
    """Durable state of one experiment (a sweep or a gradient run).

    Implementations must be safe for one writer process and any number of reader
    processes at once (``raysweep status`` while a run writes).
    """

    # -- the experiment ---------------------------------------------------------
    @abc.abstractmethod
    def read_spec(self) -> dict[str, Any]:
        """The stored experiment specification (JSON dict)."""

    @abc.abstractmethod
    def write_spec(self, spec: Mapping[str, Any]) -> None:
        """Replace the stored specification (a resume that extends or forces)."""

    @abc.abstractmethod
    def get_meta(self, key: str, default: Any = None) -> Any:
        """A JSON value stored under ``key`` (status, searcher state, ...)."""

    @abc.abstractmethod
    def set_meta(self, key: str, value: Any) -> None:
        """Store a JSON value under ``key``, committed at once."""

    @abc.abstractmethod
    def add_event(
        self, kind: str, data: Mapping[str, Any] | None = None, trial_id: int | None = None
    ) -> None:
        """Append to the event log (starts, resumes, retries, stops)."""

    @abc.abstractmethod
    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        """The event log, oldest first, optionally of one kind."""

    # -- trials -----------------------------------------------------------------
    @abc.abstractmethod
    def commit(
        self,
        new: Sequence[NewTrial] = (),
        updates: Sequence[TrialUpdate] = (),
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        """Write new trials, trial updates and meta values in ONE transaction.

        The runner batches everything it learned in one loop iteration here, then
        acts; that keeps the store exact and the commit count low.
        """

    @abc.abstractmethod
    def trials(self, states: Sequence[TrialState] | None = None) -> list[Trial]:
        """All trials (optionally only those in ``states``), by id."""

    @abc.abstractmethod
    def get_trial(self, trial_id: int) -> Trial:
        """One trial; ``KeyError`` if there is none with that id."""

    @abc.abstractmethod
    def count_by_state(self) -> dict[TrialState, int]:
        """How many trials are in each state (states with none are omitted)."""

    # -- gradient runs ----------------------------------------------------------
    @abc.abstractmethod
    def record_step(
        self, step: int, data: Mapping[str, Any], checkpoint: Mapping[str, Any]
    ) -> None:
        """Store one completed gradient step and the checkpoint to resume after it,
        in one transaction (a crash leaves either both or neither)."""

    @abc.abstractmethod
    def steps(self) -> list[StepRecord]:
        """Every stored step, oldest first (checkpoints omitted, for reading)."""

    @abc.abstractmethod
    def latest_checkpoint(self) -> StepRecord | None:
        """The last stored step with its checkpoint, or ``None`` before the first."""

    # -- readers ------------------------------------------------------------------
    def read_changes(
        self, since: ReadPosition | None, meta_keys: Sequence[str] = ()
    ) -> Changes | None:
        """What changed since ``since`` (everything when ``None``), read in one
        consistent state; ``None`` when nothing changed at all.

        What ``raysweep.load(...).refresh()`` and ``raysweep status --watch`` call.
        This default reads everything every time (``complete``); a store that can
        tell what changed (SQLite) reads only that.
        """
        return Changes(
            position=ReadPosition(),
            complete=True,
            trials=tuple(self.trials()),
            steps=tuple(self.steps()),
            events=tuple(self.events()),
            meta={key: self.get_meta(key) for key in meta_keys},
        )

    def address(self) -> str:
        """The URL (or path) that opens this experiment again."""
        return self.describe()

    def close(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Release the connection."""

    def describe(self) -> str:
        """What messages name this store by: its file, or its address."""
        return type(self).__name__
