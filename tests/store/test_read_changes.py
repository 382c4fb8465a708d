"""read_changes: a complete first read, then only what changed, from one consistent state."""

from __future__ import annotations

import shutil
from pathlib import Path

from raysweep.store import NewTrial, SQLiteStore, TrialUpdate, open_experiment
from raysweep.trial import TrialState
from tests.store.helpers import fingerprint, old_experiment

KEYS = ("spec", "status")


def _writer(folder: Path, trials: int = 3) -> SQLiteStore:
    store = SQLiteStore.create(folder, {"kind": "sweep", "name": "w"})
    store.commit(
        new=[NewTrial(i, {"x": i}, TrialState.RUNNING, 1.0) for i in range(trials)],
        meta={"status": "running"},
    )
    return store


def test_first_read_is_complete_then_nothing_changed(tmp_path: Path) -> None:
    """The first read holds everything; the next, with nothing written, is None."""
    writer = _writer(tmp_path / "w")
    reader = open_experiment(tmp_path / "w")
    try:
        first = reader.read_changes(None, KEYS)
        assert first is not None
        assert first.complete
        assert [t.trial_id for t in first.trials] == [0, 1, 2]
        assert first.meta == {"spec": {"kind": "sweep", "name": "w"}, "status": "running"}
        assert [e["kind"] for e in first.events] == ["created"]
        assert reader.read_changes(first.position, KEYS) is None
    finally:
        reader.close()
        writer.close()


def test_only_the_changed_trials_steps_and_events_are_read(tmp_path: Path) -> None:
    """After an update of one trial, an event and a meta value, just those come back."""
    writer = _writer(tmp_path / "w")
    reader = open_experiment(tmp_path / "w")
    try:
        first = reader.read_changes(None, KEYS)
        assert first is not None
        writer.commit(
            updates=[TrialUpdate(1, reports=[{"step": 0, "loss": 0.5}])],
            meta={"status": "stopping"},
        )
        writer.add_event("note", {"n": 1})
        second = reader.read_changes(first.position, KEYS)
        assert second is not None
        assert not second.complete
        assert [(t.trial_id, len(t.intermediate)) for t in second.trials] == [(1, 1)]
        assert [e["kind"] for e in second.events] == ["note"]
        assert second.meta["status"] == "stopping"
        writer.commit(updates=[TrialUpdate(2, state=TrialState.COMPLETED, metrics={"loss": 1.0})])
        third = reader.read_changes(second.position, KEYS)
        assert third is not None
        assert [(t.trial_id, t.state) for t in third.trials] == [(2, TrialState.COMPLETED)]
        assert third.events == ()
    finally:
        reader.close()
        writer.close()


def test_a_reader_does_not_keep_the_writers_files(tmp_path: Path) -> None:
    """A reader holding a store between reads lets the closing writer remove -wal and -shm."""
    folder = tmp_path / "w"
    writer = _writer(folder)
    reader = open_experiment(folder)
    try:
        first = reader.read_changes(None, KEYS)
        writer.commit(meta={"status": "completed"})
        writer.close()
        assert sorted(p.name for p in folder.iterdir()) == ["experiment.db"]
        last = reader.read_changes(first.position if first else None, KEYS)
        assert last is not None
        assert last.meta["status"] == "completed"
    finally:
        reader.close()
    assert sorted(p.name for p in folder.iterdir()) == ["experiment.db"]


def test_an_old_store_is_read_again_once_its_file_changes(tmp_path: Path) -> None:
    """A store of an older schema (read through a copy) is read complete, and again only
    after the file changed; the file itself is never written by the reader."""
    folder = old_experiment(tmp_path, "v2-sweep")
    before = fingerprint(folder)
    reader = open_experiment(folder)
    try:
        first = reader.read_changes(None, KEYS)
        assert first is not None
        assert first.complete
        assert len(first.trials) == 6
        assert reader.read_changes(first.position, KEYS) is None
        assert fingerprint(folder) == before
        writer = SQLiteStore.open(folder)  # migrates the file: the reader takes a new look
        writer.commit(updates=[TrialUpdate(0, state=TrialState.FAILED, error="by hand")])
        writer.close()
        again = reader.read_changes(first.position, KEYS)
        assert again is not None
        assert again.trials[0].state is TrialState.FAILED
    finally:
        reader.close()


def test_a_new_experiment_at_the_same_place_is_read_complete(tmp_path: Path) -> None:
    """An experiment removed and created again under the same name is not merged with the old."""
    folder = tmp_path / "w"
    _writer(folder, trials=3).close()
    reader = open_experiment(folder)
    try:
        first = reader.read_changes(None, KEYS)
        assert first is not None
        shutil.rmtree(folder)
        _writer(folder, trials=1).close()
        again = reader.read_changes(first.position, KEYS)
        assert again is not None
        assert again.complete
        assert [t.trial_id for t in again.trials] == [0]
    finally:
        reader.close()
