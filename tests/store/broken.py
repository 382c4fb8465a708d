"""Experiment folders whose experiment.db is damaged, foreign or hand-edited, for reader tests."""

from __future__ import annotations

import json
import random
import sqlite3
from collections.abc import Callable
from pathlib import Path

from raysweep.store import NewTrial, TrialUpdate, locate
from raysweep.trial import TrialState


def good(folder: Path, trials: int = 3) -> Path:
    """A healthy sweep with ``trials`` completed trials of 3 reports each; returns its db."""
    store = locate(folder.parent, folder.name).create(
        {"kind": "sweep", "name": folder.name, "metric": "loss", "mode": "min", "num_trials": 9}
    )
    store.commit(
        new=[
            NewTrial(i, {"x": i / 7, "pad": "p" * 200}, TrialState.RUNNING, 1.0)
            for i in range(trials)
        ],
        updates=[
            TrialUpdate(
                i,
                state=TrialState.COMPLETED,
                metrics={"loss": float(i)},
                reports=[{"step": s, "loss": float(s)} for s in range(3)],
            )
            for i in range(trials)
        ],
        meta={"status": "completed"},
    )
    store.close()
    return folder / "experiment.db"


def _edit(db: Path, sql: str, *args: object) -> None:
    conn = sqlite3.connect(db)
    conn.execute(sql, args)
    conn.commit()
    conn.close()


def _spec(db: Path, **changes: object) -> None:
    conn = sqlite3.connect(db)
    (text,) = conn.execute("SELECT value FROM meta WHERE key = 'spec'").fetchone()
    conn.execute(
        "UPDATE meta SET value = ? WHERE key = 'spec'",
        (json.dumps({**json.loads(text), **changes}),),
    )
    conn.commit()
    conn.close()


def _random(folder: Path) -> None:
    folder.mkdir(parents=True)
    (folder / "experiment.db").write_bytes(random.Random(0).randbytes(8192))


def _empty(folder: Path) -> None:
    folder.mkdir(parents=True)
    (folder / "experiment.db").write_bytes(b"")


def _truncated(folder: Path) -> None:
    db = good(folder, trials=60)
    assert db.stat().st_size > 4 * 4096
    db.write_bytes(db.read_bytes()[: 2 * 4096])


def _truncated_header(folder: Path) -> None:
    db = good(folder)
    db.write_bytes(db.read_bytes()[:60])


def _foreign(folder: Path) -> None:
    folder.mkdir(parents=True)
    conn = sqlite3.connect(folder / "experiment.db")
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
    conn.execute("INSERT INTO notes (text) VALUES ('not raysweep')")
    conn.commit()
    conn.close()


def _no_version(folder: Path) -> None:
    _edit(good(folder), "PRAGMA user_version = 0")


def _no_spec(folder: Path) -> None:
    _edit(good(folder), "DELETE FROM meta WHERE key = 'spec'")


def _spec_not_json(folder: Path) -> None:
    _edit(good(folder), "UPDATE meta SET value = ? WHERE key = 'spec'", '{"kind": "sweep", ')


def _spec_mode(folder: Path) -> None:
    _spec(good(folder), mode="up")


def _spec_space(folder: Path) -> None:
    _spec(good(folder), space=[1, 2])


def _spec_kind(folder: Path) -> None:
    _spec(good(folder), kind=["gradient"])


def _bad_state(folder: Path) -> None:
    _edit(good(folder), "UPDATE trials SET state = 'RUNING' WHERE trial_id = 1")


def _bad_config(folder: Path) -> None:
    _edit(good(folder), "UPDATE trials SET config = '{x' WHERE trial_id = 2")


#: name -> (how to make the folder, a fragment of the one-line message).
BROKEN: dict[str, tuple[Callable[[Path], object], str]] = {
    "random bytes": (_random, "is not an SQLite database"),
    "empty": (_empty, "is empty (0 bytes)"),
    "truncated": (_truncated, "is truncated"),
    "truncated header": (_truncated_header, "is truncated"),
    "foreign sqlite": (_foreign, "not a raysweep experiment (no 'meta' table; its tables: notes)"),
    "no schema version": (_no_version, "no schema version"),
    "no spec": (_no_spec, "holds no experiment specification"),
    "spec not json": (_spec_not_json, "meta 'spec' is not valid JSON"),
    "spec mode": (_spec_mode, "stored spec: mode: expected 'min' or 'max', got 'up'"),
    "spec space": (_spec_space, "stored spec: space: a search space in JSON is an object"),
    "spec kind": (_spec_kind, "stored spec: kind"),
    "unknown trial state": (_bad_state, "trial 1 has the unknown state 'RUNING'"),
    "trial config": (_bad_config, "the config of trial 2 is not valid JSON"),
}

#: The cases a store refuses on opening (the rest open, and fail when read).
AT_OPEN = (
    "random bytes",
    "empty",
    "truncated",
    "truncated header",
    "foreign sqlite",
    "no schema version",
)
