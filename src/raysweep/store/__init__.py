"""Experiment stores: where an experiment's spec, trials, reports and steps live.

Open or create one with :func:`locate` (``storage`` and a name, as ``run()``
takes them) or :func:`open_experiment` (an experiment's folder or URL, as
``raysweep status`` takes it); both accept a folder path or a ``file://`` URL.
"""

from __future__ import annotations

from raysweep.store._base import (
    Changes,
    ExperimentStore,
    NewTrial,
    ReadPosition,
    StepRecord,
    TrialUpdate,
)
from raysweep.store._heartbeat import (
    HEARTBEAT_KEY,
    STALE_AFTER,
    DriverState,
    DriverVerdict,
    heartbeat,
    judge_driver,
    process_alive,
)
from raysweep.store._location import Location, experiments_in, locate, open_experiment
from raysweep.store._migrations import SCHEMA_VERSION
from raysweep.store.sqlite import DB_FILENAME, SQLiteStore

__all__ = [
    "DB_FILENAME",
    "HEARTBEAT_KEY",
    "SCHEMA_VERSION",
    "STALE_AFTER",
    "Changes",
    "DriverState",
    "DriverVerdict",
    "ExperimentStore",
    "Location",
    "NewTrial",
    "ReadPosition",
    "SQLiteStore",
    "StepRecord",
    "TrialUpdate",
    "experiments_in",
    "heartbeat",
    "judge_driver",
    "locate",
    "open_experiment",
    "process_alive",
]
