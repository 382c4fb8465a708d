"""The SQLite schema, its version, and the steps that bring an older file up to date.

A store records its schema version in ``PRAGMA user_version``. A file written by
an older raysweep is brought forward by the steps below, in order, all in ONE
transaction together with the new version number: a crash mid-migration rolls
back to the old file, which this raysweep migrates again the next time. A file
opened read-only is never migrated in place; its in-memory copy is.

Adding a version: write the new ``SCHEMA`` (what :meth:`SQLiteStore.create`
builds), append a step from the previous version, and bump ``SCHEMA_VERSION``.
``tests/store/test_migrations.py`` checks that a migrated file has exactly the
columns of a new one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from raysweep.errors import StoreError

__all__ = [
    "MIGRATIONS",
    "SCHEMA",
    "SCHEMA_VERSION",
    "TABLES",
    "Migration",
    "check_version",
    "migrate",
]

#: The version :data:`SCHEMA` is; files of a higher one are refused.
SCHEMA_VERSION = 4

#: The schema of a new store (version :data:`SCHEMA_VERSION`). Columns added by a
#: migration go last, so that a migrated and a new table look the same.
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trials (
    trial_id INTEGER PRIMARY KEY,
    state TEXT NOT NULL,
    config TEXT NOT NULL,
    metrics TEXT NOT NULL DEFAULT '{}',
    error TEXT,
    created_at REAL,
    started_at REAL,
    ended_at REAL,
    node TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    queued_at REAL,
    parent_id INTEGER,
    changed INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS trials_by_state ON trials (state);
CREATE INDEX IF NOT EXISTS trials_by_change ON trials (changed);
CREATE TABLE IF NOT EXISTS reports (
    trial_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (trial_id, seq)
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    kind TEXT NOT NULL,
    trial_id INTEGER,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS steps (
    step INTEGER PRIMARY KEY,
    time REAL NOT NULL,
    data TEXT NOT NULL,
    checkpoint TEXT NOT NULL
);
"""

#: Tables every raysweep store has had since version 1; a file without them is
#: damaged or belongs to another program.
TABLES = ("meta", "trials", "reports", "events", "steps")


@dataclass(frozen=True, slots=True)
class Migration:
    """One step from ``from_version`` to ``from_version + 1``."""

    from_version: int
    what: str
    apply: Callable[[sqlite3.Cursor], None]


def _add_queued_at(cur: sqlite3.Cursor) -> None:
    # v1 did not record when a trial was handed to the backend; the start time is
    # the closest thing it knew (it was set at that moment).
    cur.execute("ALTER TABLE trials ADD COLUMN queued_at REAL")
    cur.execute("UPDATE trials SET queued_at = started_at")


def _add_parent_id(cur: sqlite3.Cursor) -> None:
    # v2 had no population-based training: no trial was ever started from another's
    # checkpoint, so every lineage is empty.
    cur.execute("ALTER TABLE trials ADD COLUMN parent_id INTEGER")


def _add_changed(cur: sqlite3.Cursor) -> None:
    # Readers (raysweep.load, status --watch) read only the trials changed since
    # their last read: every commit that writes a trial stamps it with a number
    # above all stamps so far. Rows written before carry 0, which a reader's
    # first, complete read covers.
    cur.execute("ALTER TABLE trials ADD COLUMN changed INTEGER NOT NULL DEFAULT 0")
    cur.execute("CREATE INDEX IF NOT EXISTS trials_by_change ON trials (changed)")


#: Ordered: entry ``i`` goes from version ``i + 1`` to ``i + 2``.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "trials.queued_at (backfilled with started_at)", _add_queued_at),
    Migration(2, "trials.parent_id (lineage of exploited trials; empty)", _add_parent_id),
    Migration(3, "trials.changed (the commit that last wrote a trial, for readers)", _add_changed),
)


def check_version(path: Path | str, version: int) -> None:
    """Refuse a file this raysweep cannot read: a newer schema, or none at all.

    Raises:
        StoreError: naming ``path`` and both versions.
    """
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path} was written by a newer raysweep (schema version {version}; this "
            f"raysweep reads versions 1 to {SCHEMA_VERSION}); upgrade raysweep to open it"
        )
    if version < 1:
        raise StoreError(
            f"{path} has raysweep's tables but no schema version (user_version {version}); "
            f"it was not written by raysweep, or was damaged"
        )


def migrate(conn: sqlite3.Connection, path: Path | str) -> int:
    """Bring the database on ``conn`` to :data:`SCHEMA_VERSION` in one transaction.

    The version is read again under the write lock, so of two processes opening
    the same old file, one migrates and the other finds it done. Returns the
    version the file had.

    Raises:
        StoreError: the file is of a newer schema or a step failed (nothing is
            changed then).
    """
    cur = conn.cursor()
    cur.execute("BEGIN IMMEDIATE")
    try:
        version = int(cur.execute("PRAGMA user_version").fetchone()[0])
        check_version(path, version)
        for step in MIGRATIONS[version - 1 :]:
            try:
                step.apply(cur)
            except sqlite3.Error as exc:
                raise StoreError(
                    f"{path}: cannot migrate schema {step.from_version} to "
                    f"{step.from_version + 1} ({step.what}): {exc}"
                ) from exc
        if version != SCHEMA_VERSION:
            cur.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except BaseException:
        cur.execute("ROLLBACK")
        raise
    cur.execute("COMMIT")
    return version
