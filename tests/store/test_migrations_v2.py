"""A sweep stored by the previous release (schema 2) reads, migrates and resumes.

``fixtures/v2-sweep.db`` was written by the code of commit ``0ea2e63`` (the last
one of schema 2) running ``objective`` below over ``SPACE`` for 6 trials on a
``SimulatedBackend``; see ``fixtures/README.md``. ``objective`` must stay the
code the fixture was made with, so that the resumed trials are the same sweep.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

import raysweep as rs
from raysweep.store import SCHEMA_VERSION, locate, open_experiment
from raysweep.sweep.execution import SimulatedBackend
from raysweep.trial import Trial, TrialState
from tests.store.helpers import FIXTURES, fingerprint, old_experiment

NAME = "v2-sweep"
SPACE = {"x": rs.uniform(0.0, 1.0)}


def objective(config: dict) -> float:
    x = config["x"]
    for step in range(3):
        rs.report(step=step, loss=(x - 0.25) ** 2 + 1.0 / (step + 1))
    return (x - 0.25) ** 2


def _raw(db: Path, sql: str) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` read straight from the file, bypassing raysweep."""
    conn = sqlite3.connect(f"{db.as_uri()}?mode=ro&immutable=1", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def _columns(db: Path) -> list[str]:
    return [row[1] for row in _raw(db, "PRAGMA table_info(trials)")]


def _counts(db: Path) -> dict[str, int]:
    tables = ("meta", "trials", "reports", "events", "steps")
    return {t: int(_raw(db, f"SELECT COUNT(*) FROM {t}")[0][0]) for t in tables}


def _read(folder: Path) -> list[Trial]:
    store = open_experiment(folder, readonly=True)
    try:
        return store.trials()
    finally:
        store.close()


def _resume(storage: Path, num_trials: int) -> rs.Result:
    return rs.run(
        objective,
        SPACE,
        num_trials=num_trials,
        resume=True,
        backend=SimulatedBackend(workers=2, duration=lambda config: 10.0),
        storage=storage,
        name=NAME,
        seed=1,
        verbose=0,
    )


def test_fixture_is_version_2() -> None:
    """The committed fixture really is a schema 2 sweep: queued_at, no parent_id."""
    db = FIXTURES / f"{NAME}.db"
    assert _raw(db, "PRAGMA user_version") == [(2,)]
    columns = _columns(db)
    assert "queued_at" in columns
    assert "parent_id" not in columns
    assert _raw(db, "SELECT state, COUNT(*) FROM trials GROUP BY state") == [("COMPLETED", 6)]
    assert _raw(db, "SELECT COUNT(*) FROM reports") == [(18,)]


def test_v2_opens_readonly_without_writing(tmp_path: Path) -> None:
    """Read-only, a v2 sweep reads as the current schema (no lineage) and stays byte-identical."""
    folder = old_experiment(tmp_path, NAME)
    before = fingerprint(folder)
    store = open_experiment(folder, readonly=True)
    try:
        assert store.read_spec()["name"] == NAME
        assert store.read_spec()["num_trials"] == 6
        assert store.get_meta("status") == "completed"
        trials = store.trials()
    finally:
        store.close()
    assert fingerprint(folder) == before
    assert _raw(folder / "experiment.db", "PRAGMA user_version") == [(2,)]
    assert [t.trial_id for t in trials] == list(range(6))
    assert all(t.state is TrialState.COMPLETED for t in trials)
    assert all(t.parent_id is None for t in trials)
    assert all(t.queued_at == t.started_at is not None for t in trials)
    assert all([r["step"] for r in t.intermediate] == [0, 1, 2] for t in trials)
    for t in trials:
        assert t.metrics == {"loss": pytest.approx((t.config["x"] - 0.25) ** 2)}


def test_v2_opened_for_writing_is_migrated(tmp_path: Path) -> None:
    """Opening v2 for writing adds an empty parent_id and keeps every row and report."""
    folder = old_experiment(tmp_path, NAME)
    db = folder / "experiment.db"
    counts = _counts(db)
    trials = _raw(db, "SELECT * FROM trials ORDER BY trial_id")
    reports = _raw(db, "SELECT * FROM reports ORDER BY trial_id, seq")
    events = _raw(db, "SELECT * FROM events ORDER BY id")
    meta = _raw(db, "SELECT * FROM meta ORDER BY key")
    readonly = _read(folder)
    store = locate(tmp_path / "runs", NAME).open()
    try:
        assert store.trials() == readonly
    finally:
        store.close()
    assert _raw(db, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert _columns(db)[-2:] == ["parent_id", "changed"]
    assert _counts(db) == counts
    assert _raw(db, "SELECT * FROM trials ORDER BY trial_id") == [(*row, None, 0) for row in trials]
    assert _raw(db, "SELECT * FROM reports ORDER BY trial_id, seq") == reports
    assert _raw(db, "SELECT * FROM events ORDER BY id") == events
    assert _raw(db, "SELECT * FROM meta ORDER BY key") == meta
    assert _read(folder) == readonly


def test_v2_sweep_resumes(tmp_path: Path) -> None:
    """A sweep of 6 trials stored by v2 resumes to 10 with this raysweep, the old 6 untouched."""
    folder = old_experiment(tmp_path, NAME)
    old = _read(folder)
    assert len(old) == 6

    result = _resume(tmp_path / "runs", 10)

    assert _raw(folder / "experiment.db", "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert len(result.trials) == 10
    trials = _read(folder)
    assert [t.trial_id for t in trials] == list(range(10))
    assert all(t.state is TrialState.COMPLETED for t in trials)
    assert all(t.parent_id is None for t in trials)
    for before, after in zip(old, trials[:6], strict=True):
        assert after.to_dict() == before.to_dict()
        assert after == before
    new = trials[6:]
    assert all([r["step"] for r in t.intermediate] == [0, 1, 2] for t in new)
    assert all(0.0 <= t.config["x"] <= 1.0 for t in new)
    assert not {t.config["x"] for t in new} & {t.config["x"] for t in old}
    for t in new:
        assert t.metrics == {"loss": pytest.approx((t.config["x"] - 0.25) ** 2)}
        assert t.attempts == 1
        assert t.started_at is not None
        assert t.started_at >= max(o.ended_at or 0.0 for o in old)
    assert {t.trial_id for t in result.trials} == set(range(10))
    best = min(trials, key=lambda t: t.metrics["loss"])
    assert result.best is not None
    assert result.best.trial_id == best.trial_id

    store = open_experiment(folder, readonly=True)
    try:
        spec = store.read_spec()
        assert (spec["name"], spec["num_trials"]) == (NAME, 10)
        assert store.get_meta("status") == "completed"
        assert store.count_by_state() == {TrialState.COMPLETED: 10}
        assert [e["data"] for e in store.events("resumed")] == [{"num_trials": 10}]
    finally:
        store.close()


def test_v2_resumed_twice_keeps_its_trials(tmp_path: Path) -> None:
    """A resumed v2 sweep (now schema 3) resumes again; nothing stored before changes."""
    folder = old_experiment(tmp_path, NAME)
    _resume(tmp_path / "runs", 8)
    first = _read(folder)
    _resume(tmp_path / "runs", 10)
    second = _read(folder)
    assert len(first) == 8
    assert second[:8] == first
    assert [t.state for t in second] == [TrialState.COMPLETED] * 10
