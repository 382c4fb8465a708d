"""Trials to rows and back: the SQL of a :class:`TrialUpdate`, and stored text to values.

Reading is strict about what it hands on. A row that a damaged page or a hand
edit left with invalid JSON, an unknown state or a time that is not a number
becomes one :class:`StoreError` line naming the file and the trial, instead of
an exception deep inside ``raysweep status``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from raysweep.errors import RaysweepError, StoreError
from raysweep.store._base import TrialUpdate
from raysweep.trial import Trial, TrialState

__all__ = [
    "TRIAL_COLUMNS",
    "apply_update",
    "dumps",
    "json_object",
    "loads",
    "next_change",
    "row_to_trial",
    "trial_state",
]

_UPDATABLE = ("queued_at", "started_at", "ended_at", "node", "attempts", "parent_id")
_CLEARABLE = ("error", "started_at", "ended_at", "node")
#: The columns :func:`row_to_trial` reads, in its order.
TRIAL_COLUMNS = (
    "trial_id, state, config, metrics, error, created_at, queued_at, started_at, ended_at, "
    "node, attempts, parent_id"
)


def dumps(value: Any) -> str:
    """Compact JSON, the only encoding of stored values."""
    return json.dumps(value, separators=(",", ":"))


def loads(path: Path, text: Any, what: str) -> Any:
    """A stored JSON value; :class:`StoreError` naming ``path`` and ``what`` if it is not."""
    try:
        return json.loads(text)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"{path}: {what} is not valid JSON ({exc})") from None


def json_object(path: Path, text: Any, what: str) -> dict[str, Any]:
    """A stored JSON object (configs, metrics, reports, step data)."""
    value = loads(path, text, what)
    if not isinstance(value, dict):
        raise StoreError(
            f"{path}: {what} is {type(value).__name__} {value!r:.60}, expected an object"
        )
    return value


def trial_state(path: Path, value: Any, what: str) -> TrialState:
    """A stored trial state."""
    try:
        return TrialState(value)
    except ValueError:
        known = ", ".join(s.value for s in TrialState)
        raise StoreError(
            f"{path}: {what} has the unknown state {value!r} (known: {known})"
        ) from None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def row_to_trial(path: Path, row: Sequence[Any], reports: Sequence[Mapping[str, Any]]) -> Trial:
    """A :data:`TRIAL_COLUMNS` row and its reports as a :class:`Trial`."""
    tid, state, config, metrics, error, created, queued, started, ended, node, attempts = row[:11]
    parent = row[11]
    what = f"trial {tid}"
    for column, value in (
        ("created_at", created),
        ("queued_at", queued),
        ("started_at", started),
        ("ended_at", ended),
    ):
        if value is not None and not _is_number(value):
            raise StoreError(f"{path}: {what}: {column} {value!r} is not a time")
    if not isinstance(attempts, int) or not (node is None or isinstance(node, str)):
        raise StoreError(f"{path}: {what}: attempts {attempts!r} or node {node!r} is bad")
    if parent is not None and (not isinstance(parent, int) or isinstance(parent, bool)):
        raise StoreError(f"{path}: {what}: parent_id {parent!r} is not a trial id")
    return Trial(
        trial_id=tid,
        state=trial_state(path, state, what),
        config=json_object(path, config, f"the config of {what}"),
        metrics=json_object(path, metrics, f"the metrics of {what}"),
        intermediate=tuple(reports),
        error=None if error is None else str(error),
        created_at=created,
        started_at=started,
        ended_at=ended,
        node=node,
        attempts=attempts,
        queued_at=queued,
        parent_id=parent,
    )


def next_change(cur: sqlite3.Cursor) -> int:
    """The change number of the commit under way: above every trial's ``changed``, so
    a reader that saw number ``n`` finds every trial written since by ``changed > n``
    (one writer at a time: the transaction holds the write lock)."""
    return int(cur.execute("SELECT COALESCE(MAX(changed), 0) + 1 FROM trials").fetchone()[0])


def apply_update(cur: sqlite3.Cursor, u: TrialUpdate, change: int) -> None:
    """Write one :class:`TrialUpdate` inside the caller's transaction, stamping the
    trial with the commit's ``change`` number (see :func:`next_change`)."""
    sets: list[str] = ["changed = ?"]
    args: list[Any] = [change]
    if u.state is not None:
        sets.append("state = ?")
        args.append(u.state.value)
    if u.metrics is not None:
        sets.append("metrics = ?")
        args.append(dumps(dict(u.metrics)))
    if u.config is not None:
        sets.append("config = ?")
        args.append(dumps(dict(u.config)))
    if u.error is not None:
        sets.append("error = ?")
        args.append(u.error)
    for name in sorted(u.clear):
        if name not in _CLEARABLE:
            raise RaysweepError(f"cannot clear trial column {name!r}; one of {_CLEARABLE}")
        sets.append(f"{name} = NULL")
    for name in _UPDATABLE:
        value = getattr(u, name)
        if value is not None:
            sets.append(f"{name} = ?")
            args.append(value)
    cur.execute(f"UPDATE trials SET {', '.join(sets)} WHERE trial_id = ?", (*args, u.trial_id))
    if cur.rowcount != 1:
        raise RaysweepError(f"cannot update trial {u.trial_id}: no such trial")
    if u.replace_reports:
        cur.execute("DELETE FROM reports WHERE trial_id = ?", (u.trial_id,))
    if u.reports:
        row = cur.execute(
            "SELECT COALESCE(MAX(seq), -1) FROM reports WHERE trial_id = ?", (u.trial_id,)
        ).fetchone()
        start = int(row[0]) + 1
        cur.executemany(
            "INSERT INTO reports (trial_id, seq, data) VALUES (?, ?, ?)",
            [(u.trial_id, start + i, dumps(dict(r))) for i, r in enumerate(u.reports)],
        )
