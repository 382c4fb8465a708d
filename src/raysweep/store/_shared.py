"""The store on a shared filesystem: one writer host, readers anywhere.

On a cluster the experiment folder sits on NFS or Lustre: the driver writes it
from a compute node while users run ``raysweep status`` on a login node. SQLite
in WAL mode is correct only while every connection is on one host (its ``-shm``
index is shared memory, which a network filesystem does not keep coherent
between hosts), and file locks over NFS are unreliable. So:

* **One writer.** The driver is the only process that writes the database. When
  it opens it for writing it records its host in ``writer.json`` (written to a
  temporary name and renamed, so it is read whole or not at all), and removes
  it when it closes.
* **A published snapshot.** While it writes, the driver publishes
  ``snapshot.db``: a consistent copy taken with SQLite's backup API into a
  temporary file in the same folder, synced, and renamed over the previous one.
  It is republished at most every :data:`SNAPSHOT_S` seconds (longer for a large
  database: never more than a tenth of the time goes to it). When the writer
  closes, the database holds everything again (closing checkpoints the WAL into
  it), so the snapshot and ``writer.json`` are removed: one file per
  experiment stays.
* **Readers choose.** A reader on the writer's host reads the live database
  (WAL readers never block the writer). A reader on another host, while a
  writer has the database open, reads the newest ``snapshot.db`` as an
  immutable file: no locks, no ``-shm``, nothing written. A rename is atomic on
  every network filesystem, so it sees an old or a new snapshot, never half of
  one. Once the writer has closed (no ``-wal``), every reader reads the
  database itself, immutably.

Nothing here needs hard links (some filesystems have none): creating a store
falls back to an exclusive lock folder when ``os.link`` is refused.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from pathlib import Path
from typing import Any

__all__ = [
    "SNAPSHOT_NAME",
    "SNAPSHOT_S",
    "WRITER_NAME",
    "Publisher",
    "remote_writer",
    "snapshot_path",
    "this_host",
]

#: Files beside ``experiment.db``.
SNAPSHOT_NAME = "snapshot.db"
WRITER_NAME = "writer.json"
#: Seconds between two snapshots of a database being written, at least.
SNAPSHOT_S = 5.0
#: A snapshot may take at most this share of the writer's time.
_SNAPSHOT_SHARE = 0.1


def snapshot_path(db: Path) -> Path:
    return db.with_name(SNAPSHOT_NAME)


def _writer_path(db: Path) -> Path:
    return db.with_name(WRITER_NAME)


def this_host() -> str:
    """This machine's name, as writers record it (``RAYSWEEP_HOSTNAME`` overrides,
    for a test standing in for another host)."""
    return os.environ.get("RAYSWEEP_HOSTNAME") or socket.gethostname()


def remote_writer(db: Path) -> str | None:
    """The host of the process writing ``db``, if that is another host than this one."""
    try:
        record = json.loads(_writer_path(db).read_text())
    except (OSError, ValueError):
        return None
    host = record.get("host") if isinstance(record, dict) else None
    return host if isinstance(host, str) and host != this_host() else None


def _replace(tmp: Path, final: Path, data: bytes | None = None) -> None:
    """Sync ``tmp`` (writing ``data`` first, if given) and rename it over ``final``."""
    if data is not None:
        with open(tmp, "wb") as handle:
            handle.write(data)
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, final)


class Publisher:
    """What a writing store does for readers on other hosts (see the module docstring).

    Failures to publish are never the run's: a snapshot that cannot be written
    (a full disk) is skipped, and the live database stays correct.
    """

    def __init__(self, db: Path) -> None:
        self.db = db
        self._next = 0.0
        self._tmp = db.with_name(f".{SNAPSHOT_NAME}.{os.getpid()}.tmp")
        record = {"host": this_host(), "pid": os.getpid(), "opened_at": time.time()}
        writer_tmp = db.with_name(f".{WRITER_NAME}.{os.getpid()}.tmp")
        try:
            _replace(writer_tmp, _writer_path(db), json.dumps(record).encode())
        except OSError:
            writer_tmp.unlink(missing_ok=True)

    def after_commit(self, conn: sqlite3.Connection) -> None:
        """Publish a snapshot if the last one is old enough."""
        now = time.monotonic()
        if now >= self._next:
            self.publish(conn)

    def publish(self, conn: sqlite3.Connection) -> None:
        started = time.monotonic()
        try:
            self._tmp.unlink(missing_ok=True)
            copy = sqlite3.connect(self._tmp, isolation_level=None)
            try:
                conn.backup(copy)
                copy.execute("PRAGMA journal_mode=DELETE")  # one file, no -wal to pair
            finally:
                copy.close()
            _replace(self._tmp, snapshot_path(self.db))
        except (OSError, sqlite3.Error):
            self._tmp.unlink(missing_ok=True)
        took = time.monotonic() - started
        self._next = time.monotonic() + max(SNAPSHOT_S, took / _SNAPSHOT_SHARE)

    def close(self) -> None:
        """After the writer's connection closed: no snapshot, no writer any more."""
        snapshot_path(self.db).unlink(missing_ok=True)
        self._tmp.unlink(missing_ok=True)
        try:
            record: Any = json.loads(_writer_path(self.db).read_text())
        except (OSError, ValueError):
            return
        if (
            isinstance(record, dict)
            and record.get("pid") == os.getpid()
            and record.get("host") == this_host()
        ):
            _writer_path(self.db).unlink(missing_ok=True)
