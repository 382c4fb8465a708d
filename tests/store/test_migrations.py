"""Schema versions: v1 stores read, migrate and resume; newer ones are refused."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from raysweep.errors import StoreError
from raysweep.store import SCHEMA_VERSION, NewTrial, SQLiteStore, TrialUpdate, locate
from raysweep.trial import TrialState
from tests.store.helpers import fingerprint, old_experiment, v1_experiment


def _raw(db: Path, sql: str) -> list[tuple[object, ...]]:
    """Rows of ``sql`` read straight from the file, bypassing raysweep."""
    conn = sqlite3.connect(f"{db.as_uri()}?mode=ro&immutable=1", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def _counts(db: Path) -> dict[str, int]:
    tables = ("meta", "trials", "reports", "events", "steps")
    return {t: int(_raw(db, f"SELECT COUNT(*) FROM {t}")[0][0]) for t in tables}


def test_fixtures_are_version_1() -> None:
    """The committed fixtures really are schema 1 files, without the v2 column."""
    for kind in ("sweep", "gradient"):
        db = Path(__file__).parent / "fixtures" / f"v1-{kind}.db"
        assert _raw(db, "PRAGMA user_version") == [(1,)]
        assert "queued_at" not in [row[1] for row in _raw(db, "PRAGMA table_info(trials)")]


@pytest.mark.parametrize("kind", ["sweep", "gradient"])
def test_v1_opens_readonly_without_writing(tmp_path: Path, kind: str) -> None:
    """A v1 store opened read-only is readable as v2 and its folder stays byte-identical."""
    folder = v1_experiment(tmp_path, kind)
    before = fingerprint(folder)
    store = locate(tmp_path / "runs", f"v1-{kind}").open(readonly=True)
    try:
        assert store.read_spec()["name"] == f"v1-{kind}"
        trials = store.trials()
        steps = store.steps()
        assert store.get_meta("status") in ("completed", "running")
    finally:
        store.close()
    assert fingerprint(folder) == before
    if kind == "sweep":
        assert len(trials) == 6
        assert all(t.queued_at == t.started_at is not None for t in trials)
        assert all(len(t.intermediate) == 3 for t in trials)
    else:
        assert [s.step for s in steps] == [0, 1, 2]


def test_v1_opened_for_writing_is_migrated(tmp_path: Path) -> None:
    """Opening v1 for writing sets user_version 2, backfills queued_at and keeps every row."""
    db = v1_experiment(tmp_path, "sweep") / "experiment.db"
    before = _counts(db)
    started = dict(_raw(db, "SELECT trial_id, started_at FROM trials"))
    store = locate(tmp_path / "runs", "v1-sweep").open()
    try:
        assert {t.trial_id: t.queued_at for t in store.trials()} == started
        store.commit(
            new=[NewTrial(6, {"x": 0.5}, TrialState.RUNNING, 1.0, queued_at=2.0)],
            updates=[TrialUpdate(6, started_at=3.0)],
        )
        assert (store.get_trial(6).queued_at, store.get_trial(6).started_at) == (2.0, 3.0)
    finally:
        store.close()
    assert _raw(db, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert _counts(db) == {**before, "trials": before["trials"] + 1}
    assert dict(_raw(db, "SELECT trial_id, queued_at FROM trials WHERE trial_id < 6")) == started


@pytest.mark.parametrize("name", ["v1-gradient", "v1-sweep", "v2-sweep", "v3-sweep"])
def test_migrated_schema_equals_a_new_one(tmp_path: Path, name: str) -> None:
    """A migrated v1, v2 or v3 file has exactly the tables, columns and indexes of a new store."""
    old = old_experiment(tmp_path, name)
    locate(tmp_path / "runs", name).open().close()
    locate(tmp_path / "runs", "new").create({"name": "new"}).close()

    def shape(db: Path) -> dict[str, object]:
        tables = [r[0] for r in _raw(db, "SELECT name FROM sqlite_master ORDER BY name")]
        return {t: _raw(db, f"PRAGMA table_info({t})") for t in tables}

    assert shape(old / "experiment.db") == shape(tmp_path / "runs" / "new" / "experiment.db")


def test_v1_gradient_run_resumes(tmp_path: Path) -> None:
    """A gradient run stored by v1 resumes: its checkpoint decodes into this run's trees."""
    pytest.importorskip("optax")
    import jax.numpy as jnp
    import optax

    from raysweep.gradient.checkpoint import RunStore, build_spec, decode_tree

    v1_experiment(tmp_path, "gradient")
    spec = build_spec("v1-gradient", ["sim.0"], ["energy"], 5, {"optimizer": "adam"})
    run = RunStore.resume(tmp_path / "runs", spec)
    try:
        latest = run.latest()
        assert latest is not None
        params = {"eps": jnp.asarray(1.0), "sigma": jnp.asarray([0.5, 0.25])}
        restored = decode_tree(params, latest.checkpoint["params"], "parameters")
        opt_state = optax.adam(0.1).init(restored)
        decode_tree(opt_state, latest.checkpoint["opt_state"], "optimizer state")
        assert latest.checkpoint["next_step"] == 3
        assert float(restored["eps"]) == pytest.approx(latest.data["params"]["eps"])
    finally:
        run.close()


def _version(db: Path, version: int) -> None:
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {version}")
    conn.commit()
    conn.close()


@pytest.mark.parametrize("readonly", [True, False])
def test_newer_schema_is_refused(tmp_path: Path, readonly: bool) -> None:
    """A store of schema 99 is refused, naming the file and both versions, and left as it was."""
    locate(tmp_path / "runs", "future").create({"name": "future"}).close()
    folder = tmp_path / "runs" / "future"
    _version(folder / "experiment.db", 99)
    before = fingerprint(folder)
    with pytest.raises(StoreError) as caught:
        locate(tmp_path / "runs", "future").open(readonly=readonly)
    message = str(caught.value)
    assert str(folder / "experiment.db") in message
    assert "99" in message
    assert f"versions 1 to {SCHEMA_VERSION}" in message
    assert "\n" not in message
    assert fingerprint(folder) == before


_CRASH = """
import os, sys
from raysweep.store import _migrations, locate

def crash(cur):
    cur.execute("ALTER TABLE trials ADD COLUMN queued_at REAL")
    cur.execute("UPDATE trials SET queued_at = started_at")
    os._exit(9)  # killed half-way: the ALTER is done, the transaction is not

step = _migrations.MIGRATIONS[0]
_migrations.MIGRATIONS = (_migrations.Migration(step.from_version, step.what, crash),)
locate(sys.argv[1], "v1-sweep").open()
"""


def test_crash_mid_migration_leaves_the_v1_file(tmp_path: Path) -> None:
    """A process killed inside the migration leaves a v1 file, which the next open migrates."""
    db = v1_experiment(tmp_path, "sweep") / "experiment.db"
    before = _counts(db)
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_CRASH), str(tmp_path / "runs")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 9, proc.stderr
    reader = SQLiteStore.open(db.parent, readonly=True)  # reads the WAL the crash left
    reader.close()
    conn = sqlite3.connect(db)  # a plain connection recovers the WAL like any reader
    try:
        assert conn.execute("PRAGMA user_version").fetchone() == (1,)
        columns = [row[1] for row in conn.execute("PRAGMA table_info(trials)")]
        assert "queued_at" not in columns
    finally:
        conn.close()
    store = locate(tmp_path / "runs", "v1-sweep").open()
    store.close()
    assert _raw(db, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert _counts(db) == before
