"""What changed in an SQLite store since a reader's last read, read in one transaction.

Every commit that writes trials stamps them with one change number, above every
number before it (``trials.changed``, schema 4). So a reader that read up to
number ``n`` finds each trial written since with ``changed > n`` (through an
index), each new event with ``id > e`` and each new step with ``step > s``;
whether anything changed at all it tells from those three maxima and the meta
values it reads. A file of an older schema (read through a migrated copy, whose
numbers are all 0) is read complete, and only when the copy was taken afresh.

Steps are written once each (``record_step`` after the step, never again for
the same number), so the newest step seen is enough to find the new ones.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from raysweep.store._base import Changes, ReadPosition, StepRecord
from raysweep.store._rows import TRIAL_COLUMNS, json_object, loads, row_to_trial
from raysweep.trial import Trial

__all__ = ["read_changes"]


def read_changes(
    path: Path,
    db: sqlite3.Connection,
    since: ReadPosition | None,
    meta_keys: Sequence[str],
    *,
    native: bool,
    epoch: int,
) -> Changes | None:
    """The changes since ``since`` on ``db`` (inside the caller's read transaction).

    Args:
        path: the database file, for messages.
        native: ``db`` reads a file of the current schema (its change numbers hold).
        epoch: how many times the store connected afresh (a copy is static between).
    """
    meta_rows = _meta_rows(db, meta_keys)
    digest = hashlib.sha256(repr(meta_rows).encode()).hexdigest()
    generation = _generation(db)
    marks = db.execute(
        "SELECT (SELECT COALESCE(MAX(changed), 0) FROM trials), "
        "(SELECT COALESCE(MAX(id), 0) FROM events), "
        "(SELECT COALESCE(MAX(step), -1) FROM steps)"
    ).fetchone()
    trial_mark, event_mark, step_mark = (int(v) for v in marks)
    version: tuple[Any, ...] = (
        (generation, trial_mark, event_mark, step_mark, digest) if native else ("copy", epoch)
    )
    if since is not None and since.version == version:
        return None
    position = ReadPosition(generation, trial_mark, event_mark, step_mark, version)
    meta = dict.fromkeys(meta_keys)
    meta.update({key: loads(path, text, f"meta {key!r}") for key, text in meta_rows})
    if (
        not native
        or since is None
        or since.generation != generation
        or since.trials is None
        or since.events is None
        or since.step is None
    ):
        return Changes(
            position=position,
            complete=True,
            trials=_trials(path, db, None),
            steps=_steps(path, db, -1),
            events=_events(path, db, 0),
            meta=meta,
        )
    return Changes(
        position=position,
        complete=False,
        trials=_trials(path, db, since.trials) if since.trials != trial_mark else (),
        steps=_steps(path, db, since.step) if since.step != step_mark else (),
        events=_events(path, db, since.events) if since.events != event_mark else (),
        meta=meta,
    )


def _meta_rows(db: sqlite3.Connection, keys: Sequence[str]) -> list[tuple[str, str]]:
    if not keys:
        return []
    marks = ", ".join("?" for _ in keys)
    rows = db.execute(
        f"SELECT key, value FROM meta WHERE key IN ({marks}) ORDER BY key", tuple(keys)
    ).fetchall()
    return [(str(k), v) for k, v in rows]


def _generation(db: sqlite3.Connection) -> float | None:
    """When the experiment was created (its first event): tells this experiment from
    another one created at the same place later."""
    row = db.execute("SELECT time FROM events ORDER BY id LIMIT 1").fetchone()
    return None if row is None else row[0]


def _trials(path: Path, db: sqlite3.Connection, after: int | None) -> tuple[Trial, ...]:
    """Trials whose change number is above ``after`` (all of them for ``None``)."""
    where, args = ("", ()) if after is None else (" WHERE changed > ?", (after,))
    rows = db.execute(f"SELECT {TRIAL_COLUMNS} FROM trials{where} ORDER BY trial_id", args)
    trials = rows.fetchall()
    reports: dict[int, list[Mapping[str, Any]]] = {}
    changed = " WHERE trial_id IN (SELECT trial_id FROM trials WHERE changed > ?)"
    texts = db.execute(
        f"SELECT trial_id, data FROM reports{'' if after is None else changed} "
        "ORDER BY trial_id, seq",
        args,
    )
    for tid, data in texts.fetchall():
        reports.setdefault(tid, []).append(json_object(path, data, f"a report of trial {tid}"))
    return tuple(row_to_trial(path, row, reports.get(row[0], [])) for row in trials)


def _steps(path: Path, db: sqlite3.Connection, after: int) -> tuple[StepRecord, ...]:
    rows = db.execute(
        "SELECT step, time, data FROM steps WHERE step > ? ORDER BY step", (after,)
    ).fetchall()
    return tuple(
        StepRecord(step=s, time=t, data=json_object(path, d, f"step {s}")) for s, t, d in rows
    )


def _events(path: Path, db: sqlite3.Connection, after: int) -> tuple[dict[str, Any], ...]:
    rows = db.execute(
        "SELECT time, kind, trial_id, data FROM events WHERE id > ? ORDER BY id", (after,)
    ).fetchall()
    return tuple(
        {"time": t, "kind": k, "trial_id": tid, "data": loads(path, d, f"a {k!r} event")}
        for t, k, tid, d in rows
    )
