"""Experiment stores: where an experiment's spec, trials, reports and steps live."""

from __future__ import annotations

from raysweep.store._base import ExperimentStore, NewTrial, StepRecord, TrialUpdate
from raysweep.store.sqlite import DB_FILENAME, SQLiteStore

__all__ = ["DB_FILENAME", "ExperimentStore", "NewTrial", "SQLiteStore", "StepRecord", "TrialUpdate"]
