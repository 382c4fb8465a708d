"""The default experiment store: one embedded SQLite file per experiment.

Why SQLite: one file per sweep instead of thousands of small ones, atomic
multi-row transactions (a trial and the searcher state that produced it are
written together), and concurrent readers while the run writes (WAL mode).
``synchronous=NORMAL`` in WAL mode survives a killed process: a committed
transaction is in the WAL file before ``commit()`` returns; only a power loss can
drop the last transactions, and even then the file is never corrupted.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from raysweep.errors import ExperimentExistsError, ExperimentNotFoundError, RaysweepError
from raysweep.store._base import ExperimentStore, NewTrial, StepRecord, TrialUpdate
from raysweep.trial import Trial, TrialState

__all__ = ["DB_FILENAME", "SCHEMA_VERSION", "SQLiteStore"]

DB_FILENAME = "experiment.db"
SCHEMA_VERSION = 1

_SCHEMA = """
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
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS trials_by_state ON trials (state);
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

_UPDATABLE = ("started_at", "ended_at", "node", "attempts")
_CLEARABLE = ("error", "ended_at", "node")


def _exists(path: Path) -> ExperimentExistsError:
    return ExperimentExistsError(
        f"an experiment already exists at {path.parent}; pass resume=True "
        f"(CLI: --resume) to continue it, or choose another name or storage"
    )


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


class SQLiteStore(ExperimentStore):
    """An experiment stored in ``<directory>/experiment.db``.

    Use :meth:`create` for a new experiment and :meth:`open` for an existing one;
    neither ever overwrites what is stored.

    Example:
        >>> import tempfile
        >>> d = tempfile.mkdtemp()
        >>> store = SQLiteStore.create(d, {"name": "demo"})
        >>> SQLiteStore.open(d, readonly=True).read_spec()["name"]
        'demo'
    """

    __slots__ = ("_conn", "path", "readonly")

    def __init__(self, path: Path, conn: sqlite3.Connection, readonly: bool) -> None:
        self.path = path
        self._conn = conn
        self.readonly = readonly

    # -- opening ------------------------------------------------------------------
    @staticmethod
    def db_path(directory: str | Path) -> Path:
        """Where the database of the experiment in ``directory`` lives."""
        return Path(directory) / DB_FILENAME

    @classmethod
    def exists(cls, directory: str | Path) -> bool:
        """Whether ``directory`` holds an experiment."""
        return cls.db_path(directory).is_file()

    @classmethod
    def create(cls, directory: str | Path, spec: Mapping[str, Any]) -> SQLiteStore:
        """Create a new experiment; refuses if one is already stored there.

        The database is built complete (tables and spec) under a temporary name
        and then hard-linked into place: a reader never sees a half-made file,
        and of two processes creating the same experiment exactly one wins.
        """
        path = cls.db_path(directory)
        if path.exists():
            raise _exists(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{path.name}.{os.getpid()}.creating")
        draft.unlink(missing_ok=True)
        conn = sqlite3.connect(draft, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("INSERT INTO meta (key, value) VALUES ('spec', ?)", (_dumps(dict(spec)),))
            conn.execute(
                "INSERT INTO events (time, kind, trial_id, data) VALUES (?, 'created', NULL, '{}')",
                (time.time(),),
            )
            conn.execute("COMMIT")
        finally:
            conn.close()  # the last close checkpoints the WAL into the file
        try:
            os.link(draft, path)
        except FileExistsError:
            raise _exists(path) from None
        finally:
            draft.unlink(missing_ok=True)
        return cls(path, cls._connect(path, readonly=False), readonly=False)

    @classmethod
    def open(cls, directory: str | Path, *, readonly: bool = False) -> SQLiteStore:
        """Open an existing experiment (``readonly`` for status and export)."""
        path = cls.db_path(directory)
        if not path.is_file():
            raise ExperimentNotFoundError(
                f"no experiment found at {Path(directory)} (no {DB_FILENAME})"
            )
        store = cls(path, cls._connect(path, readonly=readonly), readonly=readonly)
        version = store._conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise RaysweepError(
                f"{path} was written by a newer raysweep (schema {version}, this one reads "
                f"up to {SCHEMA_VERSION}); upgrade raysweep to read it"
            )
        return store

    @staticmethod
    def _connect(path: Path, *, readonly: bool) -> sqlite3.Connection:
        if readonly:
            conn = sqlite3.connect(
                f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None, timeout=30.0
            )
        else:
            conn = sqlite3.connect(path, isolation_level=None, timeout=30.0)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Cursor]:
        if self.readonly:
            raise RaysweepError(f"{self.path} is open read-only")
        cur = self._conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            yield cur
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        cur.execute("COMMIT")

    def close(self) -> None:
        self._conn.close()

    # -- experiment ---------------------------------------------------------------
    def read_spec(self) -> dict[str, Any]:
        spec = self.get_meta("spec")
        if not isinstance(spec, dict):
            raise RaysweepError(f"{self.path} holds no experiment specification")
        return spec

    def write_spec(self, spec: Mapping[str, Any]) -> None:
        self.set_meta("spec", dict(spec))

    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def set_meta(self, key: str, value: Any) -> None:
        with self._transaction() as cur:
            self._put_meta(cur, key, value)

    @staticmethod
    def _put_meta(cur: sqlite3.Cursor, key: str, value: Any) -> None:
        cur.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, _dumps(value)),
        )

    def add_event(
        self, kind: str, data: Mapping[str, Any] | None = None, trial_id: int | None = None
    ) -> None:
        with self._transaction() as cur:
            cur.execute(
                "INSERT INTO events (time, kind, trial_id, data) VALUES (?, ?, ?, ?)",
                (time.time(), kind, trial_id, _dumps(dict(data or {}))),
            )

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT time, kind, trial_id, data FROM events"
        args: tuple[Any, ...] = ()
        if kind is not None:
            sql += " WHERE kind = ?"
            args = (kind,)
        rows = self._conn.execute(sql + " ORDER BY id", args).fetchall()
        return [
            {"time": t, "kind": k, "trial_id": tid, "data": json.loads(d)} for t, k, tid, d in rows
        ]

    # -- trials -------------------------------------------------------------------
    def commit(
        self,
        new: Sequence[NewTrial] = (),
        updates: Sequence[TrialUpdate] = (),
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        if not new and not updates and not meta:
            return
        with self._transaction() as cur:
            if new:
                cur.executemany(
                    "INSERT INTO trials (trial_id, state, config, created_at, started_at, "
                    "attempts) VALUES (?, ?, ?, ?, ?, ?)",
                    [
                        (
                            t.trial_id,
                            t.state.value,
                            _dumps(dict(t.config)),
                            t.created_at,
                            t.started_at,
                            t.attempts,
                        )
                        for t in new
                    ],
                )
            for update in updates:
                self._apply(cur, update)
            for key, value in (meta or {}).items():
                self._put_meta(cur, key, value)

    @staticmethod
    def _apply(cur: sqlite3.Cursor, u: TrialUpdate) -> None:
        sets: list[str] = []
        args: list[Any] = []
        if u.state is not None:
            sets.append("state = ?")
            args.append(u.state.value)
        if u.metrics is not None:
            sets.append("metrics = ?")
            args.append(_dumps(dict(u.metrics)))
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
        if sets:
            cur.execute(
                f"UPDATE trials SET {', '.join(sets)} WHERE trial_id = ?", (*args, u.trial_id)
            )
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
                [(u.trial_id, start + i, _dumps(dict(r))) for i, r in enumerate(u.reports)],
            )

    def trials(self, states: Sequence[TrialState] | None = None) -> list[Trial]:
        sql = (
            "SELECT trial_id, state, config, metrics, error, created_at, started_at, ended_at, "
            "node, attempts FROM trials"
        )
        args: list[str] = []
        if states is not None:
            if not states:
                return []
            sql += f" WHERE state IN ({', '.join('?' for _ in states)})"
            args = [s.value for s in states]
        rows = self._conn.execute(sql + " ORDER BY trial_id", args).fetchall()
        reports: dict[int, list[Mapping[str, Any]]] = {}
        for tid, data in self._conn.execute(
            "SELECT trial_id, data FROM reports ORDER BY trial_id, seq"
        ):
            reports.setdefault(tid, []).append(json.loads(data))
        return [self._row_to_trial(row, reports.get(row[0], [])) for row in rows]

    def get_trial(self, trial_id: int) -> Trial:
        row = self._conn.execute(
            "SELECT trial_id, state, config, metrics, error, created_at, started_at, ended_at, "
            "node, attempts FROM trials WHERE trial_id = ?",
            (trial_id,),
        ).fetchone()
        if row is None:
            raise KeyError(f"no trial with id {trial_id}")
        reps = [
            json.loads(d)
            for (d,) in self._conn.execute(
                "SELECT data FROM reports WHERE trial_id = ? ORDER BY seq", (trial_id,)
            )
        ]
        return self._row_to_trial(row, reps)

    @staticmethod
    def _row_to_trial(row: tuple[Any, ...], reports: list[Mapping[str, Any]]) -> Trial:
        tid, state, config, metrics, error, created, started, ended, node, attempts = row
        return Trial(
            trial_id=tid,
            state=TrialState(state),
            config=json.loads(config),
            metrics=json.loads(metrics),
            intermediate=tuple(reports),
            error=error,
            created_at=created,
            started_at=started,
            ended_at=ended,
            node=node,
            attempts=attempts,
        )

    def count_by_state(self) -> dict[TrialState, int]:
        rows = self._conn.execute("SELECT state, COUNT(*) FROM trials GROUP BY state").fetchall()
        return {TrialState(s): n for s, n in rows}

    # -- gradient runs ------------------------------------------------------------
    def record_step(
        self, step: int, data: Mapping[str, Any], checkpoint: Mapping[str, Any]
    ) -> None:
        with self._transaction() as cur:
            cur.execute(
                "INSERT OR REPLACE INTO steps (step, time, data, checkpoint) VALUES (?, ?, ?, ?)",
                (step, time.time(), _dumps(dict(data)), _dumps(dict(checkpoint))),
            )

    def steps(self) -> list[StepRecord]:
        rows = self._conn.execute("SELECT step, time, data FROM steps ORDER BY step").fetchall()
        return [StepRecord(step=s, time=t, data=json.loads(d)) for s, t, d in rows]

    def latest_checkpoint(self) -> StepRecord | None:
        row = self._conn.execute(
            "SELECT step, time, data, checkpoint FROM steps ORDER BY step DESC LIMIT 1"
        ).fetchone()
        if row is None:
            return None
        s, t, d, c = row
        return StepRecord(step=s, time=t, data=json.loads(d), checkpoint=json.loads(c))
