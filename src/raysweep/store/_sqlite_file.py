"""The database file itself: is it whole, and how to read it without writing anything.

``raysweep status`` and ``export`` are run on folders of every kind: one a run
is writing right now, a finished one, someone else's that this user may only
read, a half-copied one. SQLite's own defaults are wrong for some of them: it
happily treats a 0-byte file as an empty database (and would write one there),
and a read-only connection to a WAL database still creates ``-wal`` and
``-shm`` files beside it. So a reader here

* checks the 100-byte header before SQLite sees the file (empty, foreign,
  truncated files get a precise one-line :class:`StoreError`);
* reads a file that no writer has open (no ``-wal`` beside it) as immutable:
  no lock, nothing created (the store reconnects when a writer shows up, see
  :func:`file_stamp`);
* reads a file a writer has open through an ordinary read-only connection
  (WAL readers never block the writer), and, when the folder does not let
  this user share the writer's ``-shm`` index, through a private copy of the
  database and its ``-wal``, read into memory.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from pathlib import Path

from raysweep.errors import StoreError
from raysweep.store._shared import remote_writer, snapshot_path

__all__ = [
    "check_header",
    "connect_readonly",
    "connect_writable",
    "file_stamp",
    "memory_copy",
    "sqlite_error",
    "table_names",
    "wal_path",
]

_MAGIC = b"SQLite format 3\x00"
_HEADER = 100
#: Seconds a connection waits for a lock held by another process.
BUSY_TIMEOUT_S = 30.0
#: Tries to take a private copy that no writer changed meanwhile.
_COPY_TRIES = 3


def wal_path(path: Path) -> Path:
    """The write-ahead log beside ``path``; it exists while any connection has it open."""
    return path.with_name(path.name + "-wal")


def _declared_size(head: bytes) -> int | None:
    """Bytes the header says the file has, when that field is valid (SQLite file format §1.3)."""
    page_size = int.from_bytes(head[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(head[28:32], "big")
    valid = head[24:28] == head[92:96]  # "in-header database size" is valid only then
    return pages * page_size if valid and pages > 0 and page_size >= 512 else None


def check_header(path: Path, *, check_size: bool) -> None:
    """Refuse a file that cannot be an intact SQLite database, before SQLite opens it.

    ``check_size`` compares the file's length with the length its header
    declares; only valid while no writer has the file open (a checkpoint may
    write the header before it extends the file).

    Raises:
        StoreError: the file is unreadable, empty, not SQLite, or truncated.
    """
    try:
        with path.open("rb") as fh:
            head = fh.read(_HEADER)
            size = os.fstat(fh.fileno()).st_size
    except PermissionError:
        raise StoreError(f"cannot read {path}: permission denied") from None
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not head:
        raise StoreError(
            f"{path} is empty (0 bytes), not an experiment database "
            f"(an interrupted copy?); restore it from a backup or remove it"
        )
    if head[:16] != _MAGIC:
        if _MAGIC.startswith(head):
            raise StoreError(f"{path} is truncated ({size} bytes): not a whole SQLite database")
        raise StoreError(f"{path} is not an SQLite database (damaged, or another kind of file)")
    if len(head) < _HEADER:
        raise StoreError(f"{path} is truncated ({size} bytes, shorter than an SQLite header)")
    declared = _declared_size(head)
    if check_size and declared is not None and size < declared:
        raise StoreError(
            f"{path} is truncated ({size} bytes, its header says {declared}); "
            f"restore it from a backup"
        )


def sqlite_error(path: Path, exc: sqlite3.Error, doing: str = "") -> StoreError:
    """A one-line :class:`StoreError` for an SQLite error on ``path``."""
    name = getattr(exc, "sqlite_errorname", "")
    where = f"{path}: {doing}: " if doing else f"{path}: "
    if name.startswith("SQLITE_CORRUPT") or name == "SQLITE_NOTADB":
        try:
            with path.open("rb") as fh:
                declared = _declared_size(fh.read(_HEADER))
            size = path.stat().st_size
        except OSError:
            declared, size = None, 0
        if declared is not None and size < declared:
            return StoreError(f"{path} is truncated ({size} bytes, its header says {declared})")
        return StoreError(f"{path} is damaged ({exc}); restore it from a backup")
    if name.startswith("SQLITE_READONLY"):
        return StoreError(f"{where}it, or its folder, is read-only for this user ({exc})")
    if name.startswith(("SQLITE_CANTOPEN", "SQLITE_PERM", "SQLITE_AUTH")):
        return StoreError(f"{where}this user cannot open it or its -wal/-shm files ({exc})")
    return StoreError(f"{where}{exc}")


def table_names(conn: sqlite3.Connection) -> set[str]:
    """The tables of the database; the first query, where SQLite reads the file."""
    return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _connect(target: str, *, uri: bool = False) -> sqlite3.Connection:
    # Any thread may use a connection (a reader in a web server's worker thread); the
    # store's users take turns (the runner is one thread, raysweep.load locks).
    conn = sqlite3.connect(
        target, uri=uri, isolation_level=None, timeout=BUSY_TIMEOUT_S, check_same_thread=False
    )
    conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
    return conn


def connect_writable(path: Path) -> sqlite3.Connection:
    """A read-write connection (the caller checks the file before it writes)."""
    return _connect(str(path))


def connect_readonly(path: Path) -> tuple[sqlite3.Connection, Path | None, str]:
    """A connection that reads ``path`` and never writes it, its ``-wal`` or its folder
    (except the ``-shm`` index a live writer on this host already shares with its
    readers); the file to watch when the connection is immutable or a copy (it does
    not see later changes: whoever holds it must reconnect once :func:`file_stamp`
    of that file changes), else ``None``; and what it reads: ``"file"`` (no writer), ``"live"``
    (a writer on this host), ``"snapshot"`` (a writer on another host: its
    published ``snapshot.db``, see ``_shared.py``) or ``"copy"``.

    Raises:
        StoreError: the file is not an intact SQLite database or cannot be read.
    """
    live = wal_path(path).exists()
    check_header(path, check_size=not live)
    if live and remote_writer(path) is not None:
        snapshot = snapshot_path(path)
        if snapshot.exists():
            check_header(snapshot, check_size=True)
            uri = snapshot.absolute().as_uri()
            conn = _connect(f"{uri}?mode=ro&immutable=1", uri=True)
            _probe(conn, snapshot)
            return conn, snapshot, "snapshot"
        # The writer has not published yet (it does on its first commit): a private
        # copy of the file and its log, checked for changes while it was taken.
        return _private_copy(path), path, "copy"
    uri = path.absolute().as_uri()
    if not live:
        # Nobody has it open: read it as an unchanging file, without locks or -shm.
        conn = _connect(f"{uri}?mode=ro&immutable=1", uri=True)
        _probe(conn, path)
        return conn, path, "file"
    conn = _connect(f"{uri}?mode=ro", uri=True)
    try:
        table_names(conn)
    except sqlite3.OperationalError:
        # This user cannot open or create the -shm index beside the file (someone
        # else's run, a read-only folder): read a private copy instead.
        conn.close()
        return _private_copy(path), path, "copy"
    except sqlite3.Error as exc:
        conn.close()
        raise sqlite_error(path, exc) from None
    return conn, None, "live"


def _probe(conn: sqlite3.Connection, path: Path) -> None:
    try:
        table_names(conn)
    except sqlite3.Error as exc:
        conn.close()
        raise sqlite_error(path, exc) from None


def memory_copy(conn: sqlite3.Connection) -> sqlite3.Connection:
    """The database on ``conn`` copied into memory (SQLite's backup API)."""
    copy = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    conn.backup(copy)
    return copy


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_size, st.st_mtime_ns


def file_stamp(path: Path) -> tuple[tuple[int, int] | None, tuple[int, int] | None]:
    """What changes when a writer opens or writes ``path``: the size and mtime of
    the file and of the ``-wal`` beside it (``None`` where there is none)."""
    return _stamp(path), _stamp(wal_path(path))


def _private_copy(path: Path) -> sqlite3.Connection:
    """Copy the database and its ``-wal`` to a private folder, read them into memory.

    The copy is retried when either file changed while it was taken, so a live
    writer's checkpoint never leaves a database paired with the wrong log.
    """
    wal = wal_path(path)
    for _ in range(_COPY_TRIES):
        before = (_stamp(path), _stamp(wal))
        with tempfile.TemporaryDirectory(prefix="raysweep-read-") as tmp:
            copy = Path(tmp) / path.name
            try:
                shutil.copyfile(path, copy)
                if before[1] is not None:
                    shutil.copyfile(wal, wal_path(copy))
            except PermissionError:
                raise StoreError(f"cannot read {path} or its -wal: permission denied") from None
            except FileNotFoundError:
                continue  # the writer closed and removed its -wal meanwhile
            except OSError as exc:
                raise StoreError(f"cannot copy {path} for reading: {exc}") from None
            if (_stamp(path), _stamp(wal)) != before:
                continue
            src = _connect(str(copy))
            try:
                table_names(src)
                return memory_copy(src)
            except sqlite3.Error as exc:
                raise sqlite_error(path, exc) from None
            finally:
                src.close()
    raise StoreError(f"{path} kept changing while it was copied for reading; try again")
