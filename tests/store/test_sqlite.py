"""The SQLite experiment store: durability, concurrency and no-overwrite rules."""

from __future__ import annotations

import json
import multiprocessing
import sqlite3
from pathlib import Path

import pytest

from raysweep.errors import ExperimentExistsError, ExperimentNotFoundError, RaysweepError
from raysweep.store import NewTrial, SQLiteStore, TrialUpdate
from raysweep.trial import TrialState
from tests.conftest import WAIT_S, wait_until


def _store(tmp_path: Path) -> SQLiteStore:
    return SQLiteStore.create(tmp_path / "exp", {"kind": "sweep", "name": "exp"})


def test_create_refuses_to_overwrite(tmp_path: Path) -> None:
    """Creating an experiment where one exists fails and leaves the stored one intact."""
    store = _store(tmp_path)
    store.commit(new=[NewTrial(0, {"x": 1}, TrialState.RUNNING, 1.0)])
    with pytest.raises(ExperimentExistsError, match="resume"):
        SQLiteStore.create(tmp_path / "exp", {"kind": "sweep", "name": "other"})
    assert store.read_spec()["name"] == "exp"
    assert len(store.trials()) == 1


def test_open_missing_experiment(tmp_path: Path) -> None:
    """Opening a folder without an experiment names the folder."""
    with pytest.raises(ExperimentNotFoundError, match="nothing-here"):
        SQLiteStore.open(tmp_path / "nothing-here")


def test_trial_round_trip_with_reports(tmp_path: Path) -> None:
    """A trial's config, state, metrics, reports, times, node and attempts come back as written."""
    store = _store(tmp_path)
    store.commit(
        new=[NewTrial(0, {"lr": 0.1, "act": "relu"}, TrialState.RUNNING, 10.0)],
        updates=[TrialUpdate(0, started_at=11.0, attempts=1)],
    )
    store.commit(updates=[TrialUpdate(0, reports=[{"step": 0, "loss": 2.0}])])
    store.commit(updates=[TrialUpdate(0, reports=[{"step": 1, "loss": 1.5}])])
    store.commit(
        updates=[
            TrialUpdate(
                0, state=TrialState.COMPLETED, metrics={"loss": 1.0}, ended_at=12.0, node="10.0.0.1"
            )
        ]
    )
    trial = SQLiteStore.open(tmp_path / "exp", readonly=True).get_trial(0)
    assert trial.state is TrialState.COMPLETED
    assert trial.config == {"lr": 0.1, "act": "relu"}
    assert trial.metrics == {"loss": 1.0}
    assert [r["step"] for r in trial.intermediate] == [0, 1]
    assert (trial.created_at, trial.started_at, trial.ended_at) == (10.0, 11.0, 12.0)
    assert (trial.node, trial.attempts) == ("10.0.0.1", 1)


def test_replace_reports_starts_a_new_series(tmp_path: Path) -> None:
    """A re-run attempt replaces the intermediate series instead of appending to it."""
    store = _store(tmp_path)
    store.commit(
        new=[NewTrial(0, {}, TrialState.RUNNING)],
        updates=[TrialUpdate(0, reports=[{"step": 0, "loss": 9.0}])],
    )
    store.commit(updates=[TrialUpdate(0, reports=[{"step": 0, "loss": 1.0}], replace_reports=True)])
    assert store.get_trial(0).intermediate == ({"step": 0, "loss": 1.0},)


def test_commit_is_atomic(tmp_path: Path) -> None:
    """A commit that fails half-way (update of a missing trial) writes nothing at all."""
    store = _store(tmp_path)
    with pytest.raises(RaysweepError, match="no such trial"):
        store.commit(
            new=[NewTrial(0, {"x": 1})],
            updates=[TrialUpdate(5, state=TrialState.FAILED)],
            meta={"searcher_state": {"n": 1}},
        )
    assert store.trials() == []
    assert store.get_meta("searcher_state") is None


def test_stored_as_json_not_pickle(tmp_path: Path) -> None:
    """Every stored column holds JSON text readable by any SQLite client."""
    store = _store(tmp_path)
    store.commit(new=[NewTrial(0, {"x": 1.5})], meta={"k": [1, 2]})
    conn = sqlite3.connect(SQLiteStore.db_path(tmp_path / "exp"))
    (config,) = conn.execute("SELECT config FROM trials").fetchone()
    (value,) = conn.execute("SELECT value FROM meta WHERE key = 'k'").fetchone()
    assert json.loads(config) == {"x": 1.5}
    assert json.loads(value) == [1, 2]


def test_readonly_store_refuses_writes(tmp_path: Path) -> None:
    """A store opened for status/export cannot modify the experiment."""
    _store(tmp_path)
    reader = SQLiteStore.open(tmp_path / "exp", readonly=True)
    with pytest.raises(RaysweepError, match="read-only"):
        reader.set_meta("x", 1)


def _writer(directory: str, count: int) -> None:
    store = SQLiteStore.open(directory)
    for i in range(count):
        store.commit(new=[NewTrial(i, {"i": i}, TrialState.COMPLETED)])


def test_reader_sees_consistent_data_while_writer_runs(tmp_path: Path) -> None:
    """status/export can read while another process commits trials (WAL)."""
    _store(tmp_path)
    proc = multiprocessing.get_context("spawn").Process(
        target=_writer, args=(str(tmp_path / "exp"), 300)
    )
    proc.start()
    reader = SQLiteStore.open(tmp_path / "exp", readonly=True)
    seen: list[int] = []

    def read_all_written() -> bool:
        # Whether the writer had ended is taken before the read: a read that starts
        # after it ended must see every trial, while one taken before may be
        # overtaken by all 300 commits on a busy machine.
        ended = not proc.is_alive()
        ids = [t.trial_id for t in reader.trials()]
        assert ids == list(range(len(ids)))  # never a torn read
        seen.append(len(ids))
        if ended and len(ids) < 300:
            pytest.fail(f"the writer ended (exit code {proc.exitcode}) after {len(ids)} trials")
        return len(ids) == 300

    wait_until(read_all_written, "the reader to see all 300 trials", poll_s=0.0)
    proc.join(timeout=WAIT_S)
    assert proc.exitcode == 0
    assert seen[-1] == 300


def test_gradient_steps_and_checkpoint(tmp_path: Path) -> None:
    """A step and its checkpoint are written together; the latest checkpoint comes back."""
    store = _store(tmp_path)
    assert store.latest_checkpoint() is None
    store.record_step(0, {"loss": 2.0}, {"params": {"w": 1.0}})
    store.record_step(1, {"loss": 1.0}, {"params": {"w": 0.5}})
    latest = store.latest_checkpoint()
    assert latest is not None
    assert (latest.step, latest.checkpoint["params"]) == (1, {"w": 0.5})
    assert [s.data["loss"] for s in store.steps()] == [2.0, 1.0]


def _create(directory: str) -> None:
    try:
        SQLiteStore.create(directory, {"kind": "sweep", "name": "race"})
    except ExperimentExistsError:
        raise SystemExit(3) from None


def test_concurrent_creation_has_one_winner(tmp_path: Path) -> None:
    """Two processes creating the same experiment: one succeeds, the other gets 'exists'."""
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_create, args=(str(tmp_path / "exp"),)) for _ in range(2)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
    assert sorted(p.exitcode for p in procs) == [0, 3]
    assert SQLiteStore.open(tmp_path / "exp").read_spec()["name"] == "race"
    assert [p.name for p in (tmp_path / "exp").iterdir() if "creating" in p.name] == []


def test_new_store_is_complete_when_it_appears(tmp_path: Path) -> None:
    """The moment experiment.db exists, it already holds its tables and spec."""
    store = _store(tmp_path)
    reader = SQLiteStore.open(tmp_path / "exp", readonly=True)
    assert reader.read_spec()["name"] == "exp"
    assert reader.trials() == []
    assert reader.steps() == []
    store.close()
