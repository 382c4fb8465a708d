"""A sweep stored by the previous release (schema 3) reads unchanged and migrates to 4.

``fixtures/v3-sweep.db`` was written by the code of commit ``24ea779`` (the last
one of schema 3): 6 trials on a ``SimulatedBackend``, one failed; see
``fixtures/README.md``.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import raysweep as rs
from raysweep.store import SCHEMA_VERSION, SQLiteStore, TrialUpdate, open_experiment
from raysweep.trial import TrialState
from tests.store.helpers import FIXTURES, fingerprint, old_experiment


def _raw(db: Path, sql: str) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` read straight from the file, bypassing raysweep."""
    conn = sqlite3.connect(f"{db.as_uri()}?mode=ro&immutable=1", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_the_fixture_is_version_3() -> None:
    """The committed fixture really is a schema 3 file, without trials.changed."""
    db = FIXTURES / "v3-sweep.db"
    assert _raw(db, "PRAGMA user_version") == [(3,)]
    assert "changed" not in [row[1] for row in _raw(db, "PRAGMA table_info(trials)")]


def test_v3_loads_read_only_byte_identical(tmp_path: Path) -> None:
    """raysweep.load reads a v3 store (a migrated copy in memory) and writes nothing."""
    folder = old_experiment(tmp_path, "v3-sweep")
    before = fingerprint(folder)
    with rs.load(folder) as exp:
        assert exp.status == "completed"
        assert sorted(exp.counts().items(), key=lambda kv: kv[0].value) == [
            (TrialState.COMPLETED, 5),
            (TrialState.FAILED, 1),
        ]
        assert len(exp.reports_dataframe()) == 18
        assert not exp.refresh()
    assert fingerprint(folder) == before


def test_v3_opened_for_writing_is_migrated_and_read_incrementally(tmp_path: Path) -> None:
    """Opening v3 for writing adds trials.changed (0 for the old rows, kept as they were);
    the next commit stamps what it writes, and a reader gets just that trial."""
    folder = old_experiment(tmp_path, "v3-sweep")
    db = folder / "experiment.db"
    rows = _raw(db, "SELECT * FROM trials ORDER BY trial_id")
    SQLiteStore.open(folder).close()  # closing checkpoints the migration into the file
    assert _raw(db, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert _raw(db, "SELECT * FROM trials ORDER BY trial_id") == [(*r, 0) for r in rows]
    writer = SQLiteStore.open(folder)
    try:
        reader = open_experiment(folder)
        try:
            first = reader.read_changes(None, ("status",))
            assert first is not None
            writer.commit(updates=[TrialUpdate(3, state=TrialState.FAILED, error="by hand")])
            second = reader.read_changes(first.position, ("status",))
            assert second is not None
            assert not second.complete
            assert [(t.trial_id, t.state) for t in second.trials] == [(3, TrialState.FAILED)]
        finally:
            reader.close()
    finally:
        writer.close()
    assert _raw(db, "SELECT trial_id, changed FROM trials WHERE changed > 0") == [(3, 1)]
