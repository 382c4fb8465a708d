"""The default experiment store: one embedded SQLite file per experiment.

Why SQLite: one file per sweep instead of thousands of small ones, atomic
multi-row transactions (a trial and the searcher state that produced it are
written together), and concurrent readers while the run writes (WAL mode).
``synchronous=NORMAL`` in WAL mode survives a killed process: a committed
transaction is in the WAL file before ``commit()`` returns; only a power loss can
drop the last transactions, and even then the file is never corrupted.

Opening checks the file before trusting it (see ``_sqlite_file.py``), brings an
older schema forward (``_migrations.py``), and turns every SQLite or JSON
problem met later into one :class:`StoreError` line naming the file.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from raysweep.errors import (
    ExperimentExistsError,
    ExperimentNotFoundError,
    RaysweepError,
    StoreError,
    StoreWriteError,
)
from raysweep.store import _migrations as migrations
from raysweep.store._base import (
    Changes,
    ExperimentStore,
    NewTrial,
    ReadPosition,
    StepRecord,
    TrialUpdate,
)
from raysweep.store._migrations import SCHEMA, SCHEMA_VERSION, TABLES, check_version
from raysweep.store._reader import read_changes
from raysweep.store._rows import (
    TRIAL_COLUMNS,
    apply_update,
    dumps,
    json_object,
    loads,
    next_change,
    row_to_trial,
    trial_state,
)
from raysweep.store._shared import Publisher
from raysweep.store._sqlite_file import (
    check_header,
    connect_readonly,
    connect_writable,
    file_stamp,
    memory_copy,
    sqlite_error,
    table_names,
    wal_path,
)
from raysweep.trial import Trial, TrialState

__all__ = ["DB_FILENAME", "SCHEMA_VERSION", "SQLiteStore"]

DB_FILENAME = "experiment.db"


def _exists(path: Path) -> ExperimentExistsError:
    return ExperimentExistsError(
        f"an experiment already exists at {path.parent}; pass resume=True "
        f"(CLI: --resume) to continue it, or choose another name or storage"
    )


def _claim(draft: Path, path: Path) -> None:
    """Put the finished ``draft`` at ``path`` unless an experiment is there already.

    A hard link does it atomically, and of two processes exactly one wins. Some
    filesystems have no hard links; there a lock folder (``mkdir`` is atomic on
    every filesystem, network ones included) makes the check and the rename one
    step.
    """
    try:
        os.link(draft, path)
        return
    except FileExistsError:
        raise _exists(path) from None
    except OSError as exc:
        if exc.errno not in _NO_LINKS:
            raise
    lock = path.with_name(f".{path.name}.creating.lock")
    try:
        lock.mkdir()
    except FileExistsError:
        raise _exists(path) from None  # another process is creating it right now
    try:
        if path.exists():
            raise _exists(path)
        os.replace(draft, path)
    finally:
        lock.rmdir()


#: What ``link()`` says on a filesystem without hard links.
_NO_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV, errno.EMLINK, errno.ENOSYS}


class SQLiteStore(ExperimentStore):
    """An experiment stored in ``<directory>/experiment.db``.

    Use :meth:`create` for a new experiment and :meth:`open` for an existing one;
    neither ever overwrites what is stored. Code outside ``raysweep.store`` opens
    stores through :func:`raysweep.store.locate` or
    :func:`raysweep.store.open_experiment`.

    Example:
        >>> import tempfile
        >>> d = tempfile.mkdtemp()
        >>> store = SQLiteStore.create(d, {"name": "demo"})
        >>> SQLiteStore.open(d, readonly=True).read_spec()["name"]
        'demo'
    """

    __slots__ = (
        "_conn",
        "_epoch",
        "_native",
        "_publisher",
        "_released",
        "_watch",
        "_watched",
        "path",
        "readonly",
        "source",
    )

    def __init__(
        self,
        path: Path,
        conn: sqlite3.Connection,
        readonly: bool,
        watch: tuple[tuple[int, int] | None, tuple[int, int] | None] | None = None,
        watched: Path | None = None,
        source: str = "live",
        native: bool = True,
    ) -> None:
        self.path = path
        self._conn = conn
        self.readonly = readonly
        #: Whether the file itself has the current schema (not a migrated copy), so
        #: its change numbers tell a reader what changed (:meth:`read_changes`).
        self._native = native
        #: How many times this reader connected afresh (a new copy or snapshot).
        self._epoch = 0
        #: A reader of a live file closed its connection after a read (see
        #: :meth:`read_changes`); the next read connects again.
        self._released = False
        #: For an immutable reader: the stamp of the file it reads when it was opened.
        self._watch = watch
        self._watched = watched or path
        #: What a reader reads: "file", "live", "snapshot" or "copy" (see
        #: ``_sqlite_file.connect_readonly``); "live" for the writer.
        self.source = source
        #: The writer publishes snapshots for readers on other hosts (``_shared.py``).
        self._publisher = None if readonly else Publisher(path)

    def describe(self) -> str:
        return str(self.path)

    def address(self) -> str:
        return self.path.parent.absolute().as_uri()

    # -- opening ------------------------------------------------------------------
    @staticmethod
    def db_path(directory: str | os.PathLike[str]) -> Path:
        """Where the database of the experiment in ``directory`` lives."""
        return Path(directory) / DB_FILENAME

    @classmethod
    def exists(cls, directory: str | os.PathLike[str]) -> bool:
        """Whether ``directory`` holds an experiment (a damaged one included).

        Raises:
            StoreError: this user may not look into ``directory``.
        """
        try:
            return cls.db_path(directory).is_file()
        except PermissionError:
            raise StoreError(f"cannot look into {directory}: permission denied") from None

    @classmethod
    def create(cls, directory: str | os.PathLike[str], spec: Mapping[str, Any]) -> SQLiteStore:
        """Create a new experiment; refuses if one is already stored there.

        The database is built complete (tables and spec) under a temporary name
        and then hard-linked into place: a reader never sees a half-made file,
        and of two processes creating the same experiment exactly one wins.
        """
        path = cls.db_path(directory)
        if cls.exists(directory):
            raise _exists(path)
        draft = path.with_name(f".{path.name}.{os.getpid()}.creating")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            draft.unlink(missing_ok=True)
            conn = connect_writable(draft)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.executescript(SCHEMA)
                conn.execute("BEGIN IMMEDIATE")
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('spec', ?)", (dumps(dict(spec)),)
                )
                conn.execute(
                    "INSERT INTO events (time, kind, trial_id, data) "
                    "VALUES (?, 'created', NULL, '{}')",
                    (time.time(),),
                )
                conn.execute("COMMIT")
            finally:
                conn.close()  # the last close checkpoints the WAL into the file
            _claim(draft, path)
        except sqlite3.Error as exc:
            raise sqlite_error(path, exc, "cannot create it") from None
        except OSError as exc:
            raise StoreError(f"cannot create {path}: {exc.strerror or exc}") from None
        finally:
            draft.unlink(missing_ok=True)
        return cls(path, connect_writable(path), readonly=False)._ready()

    @classmethod
    def open(cls, directory: str | os.PathLike[str], *, readonly: bool = False) -> SQLiteStore:
        """Open an existing experiment (``readonly`` for status and export).

        Raises:
            ExperimentNotFoundError: ``directory`` holds no experiment.
            StoreError: the file is damaged, not a raysweep experiment, of a newer
                schema, or cannot be read (or written, unless ``readonly``).
        """
        if not cls.exists(directory):
            raise ExperimentNotFoundError(
                f"no experiment found at {Path(directory)} (no {DB_FILENAME})"
            )
        return cls.open_file(cls.db_path(directory), readonly=readonly)

    @classmethod
    def open_file(cls, path: Path, *, readonly: bool) -> SQLiteStore:
        """Open the database file ``path`` itself (see :meth:`open`).

        Read-only, nothing on disk is written: an older schema is migrated in a
        copy in memory. For writing, an older schema is migrated in place, in one
        transaction.

        A read-only store sees what writers commit later; where it had to read a
        copy (an older schema, or a folder where this user cannot share the
        writer's ``-shm``) it takes a new copy once the file has changed.
        """
        watch, watched, source = None, None, "live"
        if readonly:
            conn, watched, source = connect_readonly(path)
            watch = file_stamp(watched) if watched is not None else None
        else:
            check_header(path, check_size=not wal_path(path).exists())
            folder = path.parent
            if not (os.access(path, os.W_OK) and os.access(folder, os.W_OK | os.X_OK)):
                raise StoreError(
                    f"cannot open {path} for writing: this user may not write it or its "
                    f"folder (someone else's experiment?); raysweep status and export can "
                    f"still read it"
                )
            conn = connect_writable(path)
        try:
            version = cls._inspect(conn, path)
            if readonly and version < SCHEMA_VERSION:
                copy = memory_copy(conn)
                conn.close()
                conn, source = copy, "copy"
                watched = watched or path  # read again once the file changes
                watch = file_stamp(watched)
            if not readonly:
                # Only after the file proved to be ours: this pragma may write it.
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
            if version < SCHEMA_VERSION:
                migrations.migrate(conn, path)
        except sqlite3.Error as exc:
            conn.close()
            raise sqlite_error(path, exc) from None
        except BaseException:
            conn.close()
            raise
        native = version == SCHEMA_VERSION
        return cls(
            path,
            conn,
            readonly=readonly,
            watch=watch,
            watched=watched,
            source=source,
            native=native,
        )

    def _db(self) -> sqlite3.Connection:
        """The connection to read from; an immutable reader, or one of a copy,
        reconnects once a writer has opened or changed the file since (else it would
        read stale pages), and a released one connects again."""
        if self._released or (self._watch is not None and file_stamp(self._watched) != self._watch):
            fresh = SQLiteStore.open_file(self.path, readonly=True)
            if not self._released:
                self._conn.close()
            self._conn, self._watch = fresh._conn, fresh._watch
            self._watched, self.source = fresh._watched, fresh.source
            self._native, self._released = fresh._native, False
            self._epoch += 1
        return self._conn

    @staticmethod
    def _inspect(conn: sqlite3.Connection, path: Path) -> int:
        """The schema version of a file that is a raysweep store; StoreError otherwise."""
        tables = table_names(conn)
        if "meta" not in tables:
            found = ", ".join(sorted(tables)) or "none"
            raise StoreError(
                f"{path} is an SQLite database but not a raysweep experiment "
                f"(no 'meta' table; its tables: {found})"
            )
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        check_version(path, version)
        missing = [t for t in TABLES if t not in tables]
        if missing:
            raise StoreError(
                f"{path} is damaged or not a raysweep experiment: "
                f"table(s) {', '.join(missing)} missing"
            )
        return version

    def _ready(self) -> SQLiteStore:
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        return self

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Cursor]:
        if self.readonly:
            raise RaysweepError(f"{self.path} is open read-only")
        try:
            with self._errors("cannot write"):
                cur = self._conn.cursor()
                cur.execute("BEGIN IMMEDIATE")
                try:
                    yield cur
                except BaseException:
                    cur.execute("ROLLBACK")
                    raise
                cur.execute("COMMIT")
            if self._publisher is not None:
                self._publisher.after_commit(self._conn)
        except StoreWriteError:
            raise
        except StoreError as exc:  # disk full, file removed: the run failed, not the input
            raise StoreWriteError(str(exc)) from None

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """SQLite errors as one :class:`StoreError` line naming the file."""
        try:
            yield
        except sqlite3.Error as exc:
            raise sqlite_error(self.path, exc, doing) from None

    @contextmanager
    def _snapshot(self, doing: str) -> Iterator[sqlite3.Connection]:
        """Several reads from one consistent state of the file (a read transaction)."""
        with self._errors(doing):
            db = self._db()
            db.execute("BEGIN")
            try:
                yield db
            finally:
                db.execute("ROLLBACK")

    def close(self) -> None:
        if not self._released:
            self._conn.close()  # the last close checkpoints the WAL into the file
        self._released = False
        if self._publisher is not None:
            self._publisher.close()
            self._publisher = None

    # -- experiment ---------------------------------------------------------------
    def read_spec(self) -> dict[str, Any]:
        spec = self.get_meta("spec")
        if spec is None:
            raise StoreError(f"{self.path} holds no experiment specification (meta 'spec')")
        if not isinstance(spec, dict):
            raise StoreError(
                f"{self.path}: the stored spec is {type(spec).__name__}, expected an object"
            )
        return spec

    def write_spec(self, spec: Mapping[str, Any]) -> None:
        self.set_meta("spec", dict(spec))

    def get_meta(self, key: str, default: Any = None) -> Any:
        with self._errors(f"cannot read meta {key!r}"):
            row = self._db().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else loads(self.path, row[0], f"meta {key!r}")

    def set_meta(self, key: str, value: Any) -> None:
        with self._transaction() as cur:
            self._put_meta(cur, key, value)

    @staticmethod
    def _put_meta(cur: sqlite3.Cursor, key: str, value: Any) -> None:
        cur.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, dumps(value)),
        )

    def add_event(
        self, kind: str, data: Mapping[str, Any] | None = None, trial_id: int | None = None
    ) -> None:
        with self._transaction() as cur:
            cur.execute(
                "INSERT INTO events (time, kind, trial_id, data) VALUES (?, ?, ?, ?)",
                (time.time(), kind, trial_id, dumps(dict(data or {}))),
            )

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT time, kind, trial_id, data FROM events"
        args: tuple[Any, ...] = ()
        if kind is not None:
            sql += " WHERE kind = ?"
            args = (kind,)
        with self._errors("cannot read events"):
            rows = self._db().execute(sql + " ORDER BY id", args).fetchall()
        return [
            {"time": t, "kind": k, "trial_id": tid, "data": loads(self.path, d, f"a {k!r} event")}
            for t, k, tid, d in rows
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
            change = next_change(cur) if new or updates else 0
            if new:
                cur.executemany(
                    "INSERT INTO trials (trial_id, state, config, created_at, queued_at, "
                    "started_at, attempts, changed) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            t.trial_id,
                            t.state.value,
                            dumps(dict(t.config)),
                            t.created_at,
                            t.queued_at,
                            t.started_at,
                            t.attempts,
                            change,
                        )
                        for t in new
                    ],
                )
            for update in updates:
                apply_update(cur, update, change)
            for key, value in (meta or {}).items():
                self._put_meta(cur, key, value)

    def trials(self, states: Sequence[TrialState] | None = None) -> list[Trial]:
        sql = f"SELECT {TRIAL_COLUMNS} FROM trials"
        args: list[str] = []
        if states is not None:
            if not states:
                return []
            sql += f" WHERE state IN ({', '.join('?' for _ in states)})"
            args = [s.value for s in states]
        reports: dict[int, list[Mapping[str, Any]]] = {}
        with self._snapshot("cannot read trials") as db:
            rows = db.execute(sql + " ORDER BY trial_id", args).fetchall()
            texts = db.execute("SELECT trial_id, data FROM reports ORDER BY trial_id, seq")
            for tid, data in texts.fetchall():
                reports.setdefault(tid, []).append(
                    json_object(self.path, data, f"a report of trial {tid}")
                )
        return [row_to_trial(self.path, row, reports.get(row[0], [])) for row in rows]

    def get_trial(self, trial_id: int) -> Trial:
        with self._snapshot(f"cannot read trial {trial_id}") as db:
            row = db.execute(
                f"SELECT {TRIAL_COLUMNS} FROM trials WHERE trial_id = ?", (trial_id,)
            ).fetchone()
            if row is None:
                raise KeyError(f"no trial with id {trial_id}")
            data = db.execute(
                "SELECT data FROM reports WHERE trial_id = ? ORDER BY seq", (trial_id,)
            ).fetchall()
        reps = [json_object(self.path, d, f"a report of trial {trial_id}") for (d,) in data]
        return row_to_trial(self.path, row, reps)

    def count_by_state(self) -> dict[TrialState, int]:
        with self._errors("cannot count trials"):
            db = self._db()
            rows = db.execute("SELECT state, COUNT(*) FROM trials GROUP BY state").fetchall()
            known = {s.value for s in TrialState}
            for state, _ in rows:
                if state not in known:  # name one such trial, as trials() would
                    tid = db.execute(
                        "SELECT MIN(trial_id) FROM trials WHERE state = ?", (state,)
                    ).fetchone()[0]
                    trial_state(self.path, state, f"trial {tid}")
        return {TrialState(s): n for s, n in rows}

    # -- readers ------------------------------------------------------------------
    def read_changes(
        self, since: ReadPosition | None, meta_keys: Sequence[str] = ()
    ) -> Changes | None:
        """See :meth:`ExperimentStore.read_changes` and ``_reader.py``.

        A reader of a live file lets go of it after each read: an open connection,
        even an idle one, would keep the writer from removing its ``-wal`` and
        ``-shm`` when it closes. The next read connects again.
        """
        with self._snapshot("cannot read the experiment") as db:
            changes = read_changes(
                self.path, db, since, meta_keys, native=self._native, epoch=self._epoch
            )
        if self.readonly and self.source == "live":
            self._conn.close()
            self._released = True
        return changes

    # -- gradient runs ------------------------------------------------------------
    def record_step(
        self, step: int, data: Mapping[str, Any], checkpoint: Mapping[str, Any]
    ) -> None:
        with self._transaction() as cur:
            cur.execute(
                "INSERT OR REPLACE INTO steps (step, time, data, checkpoint) VALUES (?, ?, ?, ?)",
                (step, time.time(), dumps(dict(data)), dumps(dict(checkpoint))),
            )

    def steps(self) -> list[StepRecord]:
        with self._errors("cannot read steps"):
            rows = self._db().execute("SELECT step, time, data FROM steps ORDER BY step").fetchall()
        return [
            StepRecord(step=s, time=t, data=json_object(self.path, d, f"step {s}"))
            for s, t, d in rows
        ]

    def latest_checkpoint(self) -> StepRecord | None:
        with self._errors("cannot read the latest checkpoint"):
            row = (
                self._db()
                .execute(
                    "SELECT step, time, data, checkpoint FROM steps ORDER BY step DESC LIMIT 1"
                )
                .fetchone()
            )
        if row is None:
            return None
        s, t, d, c = row
        return StepRecord(
            step=s,
            time=t,
            data=json_object(self.path, d, f"step {s}"),
            checkpoint=json_object(self.path, c, f"the checkpoint of step {s}"),
        )
