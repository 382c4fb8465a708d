"""The runner's decisions (failures, time-outs, stops, resume) with no Ray and a fake clock."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

import raysweep as rs
from raysweep.objectives import Objectives
from raysweep.store import SQLiteStore
from raysweep.sweep.execution import FakeClock, InProcessBackend
from raysweep.sweep.searchers import RandomSearcher
from raysweep.sweep.space.constraints import ConstraintSet
from raysweep.sweep.study import Study
from raysweep.trial import Trial, TrialState

SPACE = {"x": rs.uniform(-2.0, 2.0), "n": rs.randint(1, 3), "tag": "fixed"}


def quadratic(config: Mapping[str, Any]) -> dict[str, float]:
    return {"loss": (config["x"] - 0.5) ** 2 + config["n"], "n": float(config["n"])}


def _run(folder: Path, objective: Any = quadratic, **kwargs: Any) -> rs.Result:
    kwargs.setdefault("num_trials", 12)
    kwargs.setdefault("name", "exp")
    kwargs.setdefault("seed", 3)
    clock = kwargs.pop("clock", FakeClock())
    backend = kwargs.pop("backend", InProcessBackend(concurrency=3, clock=clock))
    return rs.run(
        objective,
        kwargs.pop("space", SPACE),
        storage=kwargs.pop("storage", folder),
        backend=backend,
        clock=clock,
        **kwargs,
    )


class RecordingSearcher(RandomSearcher):
    """A random searcher that remembers what it was told."""

    def __init__(self) -> None:
        super().__init__()
        self.completed: list[int] = []
        self.errored: list[int] = []

    def on_trial_complete(self, trial: Trial) -> None:
        self.completed.append(trial.trial_id)

    def on_trial_error(self, trial: Trial) -> None:
        self.errored.append(trial.trial_id)


def test_runs_num_trials_and_stores_them(storage: Path) -> None:
    """All num_trials complete, are stored, and the best trial is the lowest loss."""
    result = _run(storage)
    assert len(result.trials) == 12
    assert all(t.state is TrialState.COMPLETED for t in result.trials)
    assert result.best is not None
    assert result.best.metrics["loss"] == min(t.metrics["loss"] for t in result.trials)
    assert all(t.config["tag"] == "fixed" and 1 <= t.config["n"] <= 3 for t in result.trials)
    stored = SQLiteStore.open(storage / "exp", readonly=True)
    assert [t.trial_id for t in stored.trials()] == list(range(12))
    assert stored.get_meta("status") == "completed"
    df = result.trials_dataframe()
    assert list(df["trial_id"]) == list(range(12))
    assert "config/x" in df.columns
    assert "metrics/loss" in df.columns


def test_nan_fails_and_is_never_told_as_a_value(storage: Path) -> None:
    """A NaN result FAILS with the reason and reaches the searcher only as an error."""
    searcher = RecordingSearcher()

    def objective(config: Mapping[str, Any]) -> float:
        return math.nan if config["n"] == 2 else config["x"]

    result = _run(storage, objective, searcher=searcher)
    failed = [t for t in result.trials if t.state is TrialState.FAILED]
    assert failed, "the seed should draw n == 2 at least once"
    assert all("not finite" in (t.error or "") for t in failed)
    assert sorted(searcher.errored) == [t.trial_id for t in failed]
    assert not set(searcher.completed) & set(searcher.errored)


def test_missing_metric_names_returned_keys(storage: Path) -> None:
    """A result without the metric FAILS with a message listing what was returned."""
    result = _run(storage, lambda c: {"acc": 1.0}, num_trials=2)
    assert {t.state for t in result.trials} == {TrialState.FAILED}
    assert "['acc']" in (result.trials[0].error or "")
    assert "'loss'" in (result.trials[0].error or "")


def test_exception_stores_traceback_and_goes_on(storage: Path) -> None:
    """An exception FAILS that trial with its traceback; the other trials still run."""

    def objective(config: Mapping[str, Any]) -> float:
        if config["n"] == 1:
            raise RuntimeError("diverged")
        return 1.0

    result = _run(storage, objective)
    failed = [t for t in result.trials if t.state is TrialState.FAILED]
    assert failed
    assert result.count(TrialState.COMPLETED) > 0
    assert "Traceback" in (failed[0].error or "")
    assert "diverged" in (failed[0].error or "")


def test_max_failures_stops_with_result(storage: Path) -> None:
    """More failures than max_failures stop the run with a clear error carrying the result."""

    def objective(config: Mapping[str, Any]) -> float:
        raise ValueError("broken objective")

    with pytest.raises(rs.TooManyFailuresError, match=r"max_failures=2.*broken objective") as info:
        _run(storage, objective, max_failures=2)
    result = info.value.result
    assert isinstance(result, rs.Result)
    assert result.count(TrialState.FAILED) == 3
    assert SQLiteStore.open(storage / "exp").get_meta("status") == "failed"


def test_timeout_fails_trial(storage: Path) -> None:
    """A trial running past timeout_s is cancelled and FAILED with the reason."""
    clock = FakeClock()
    backend = InProcessBackend(
        concurrency=1, clock=clock, duration=lambda c: 100.0 if c["n"] == 3 else 1.0
    )
    result = _run(storage, clock=clock, backend=backend, timeout_s=10.0)
    slow = [t for t in result.trials if t.config["n"] == 3]
    assert slow
    assert all(t.state is TrialState.FAILED for t in slow)
    assert all("timed out after 10 s" in (t.error or "") for t in slow)
    assert set(backend.cancelled) == {t.trial_id for t in slow}
    assert all(t.state is TrialState.COMPLETED for t in result.trials if t.config["n"] != 3)


def test_stop_at_target(storage: Path) -> None:
    """Reaching the target stops the run before num_trials."""
    result = _run(
        storage, lambda c: 1.0 if c["n"] > 1 else 0.0, num_trials=200, stop={"target": 0.0}
    )
    assert result.stop_reason.startswith("target 0 reached")
    assert len(result.trials) < 200


def test_stop_on_patience(storage: Path) -> None:
    """No improvement for `patience` completed trials stops the run."""
    result = _run(storage, lambda c: 1.0, num_trials=100, stop={"patience": 5})
    assert "no improvement" in result.stop_reason
    assert result.count(TrialState.COMPLETED) <= 6 + 3  # plus what was in flight


def test_time_budget_abandons_running_trials(storage: Path) -> None:
    """When the time budget runs out, running trials are ABANDONED (and re-run on resume)."""
    clock = FakeClock()
    backend = InProcessBackend(concurrency=2, clock=clock, duration=lambda c: 30.0)
    result = _run(
        storage, clock=clock, backend=backend, num_trials=50, stop={"time_budget_s": 100.0}
    )
    assert "time budget" in result.stop_reason
    assert result.count(TrialState.ABANDONED) >= 1
    assert SQLiteStore.open(storage / "exp").get_meta("status") == "stopped"
    resumed = _run(storage, num_trials=len(result.trials), resume=True)
    assert {t.state for t in resumed.trials} == {TrialState.COMPLETED}


def test_reports_are_stored_as_series(storage: Path) -> None:
    """raysweep.report() inside the objective stores the intermediate series with steps."""

    def objective(config: Mapping[str, Any]) -> float:
        for step in range(3):
            rs.report(step=step, loss=float(10 - step))
        return 7.0

    result = _run(storage, objective, num_trials=2)
    series = result.trials[0].intermediate
    assert [r["step"] for r in series] == [0, 1, 2]
    assert [r["loss"] for r in series] == [10.0, 9.0, 8.0]
    assert SQLiteStore.open(storage / "exp").get_trial(1).intermediate[2]["loss"] == 8.0


def test_constraints_hold_for_every_trial(storage: Path) -> None:
    """Only configurations that satisfy every constraint are run."""
    result = _run(storage, num_trials=30, constraints=["x * n <= 0.5", "abs(x) >= 0.1"])
    assert all(t.config["x"] * t.config["n"] <= 0.5 for t in result.trials)
    assert all(abs(t.config["x"]) >= 0.1 for t in result.trials)


def test_resume_extends_without_repeating(storage: Path) -> None:
    """A resumed run keeps stored trials, continues the searcher's sequence and extends."""
    first = _run(storage, num_trials=6)
    second = _run(storage, num_trials=10, resume=True)
    assert second.trials[:6] == first.trials
    configs = [tuple(sorted(t.config.items())) for t in second.trials]
    assert len(set(configs)) == 10
    fresh = _run(storage, num_trials=10, name="fresh")
    assert [t.config for t in fresh.trials] == [t.config for t in second.trials]


def test_existing_experiment_is_never_overwritten(storage: Path) -> None:
    """Running again without resume is refused and leaves the stored trials alone."""
    _run(storage, num_trials=3)
    with pytest.raises(rs.ExperimentExistsError, match="resume"):
        _run(storage, num_trials=3)
    assert len(SQLiteStore.open(storage / "exp").trials()) == 3


def test_changed_space_needs_force(storage: Path) -> None:
    """Resuming with a different space is refused with the difference; force accepts it."""
    _run(storage, num_trials=4)
    db = SQLiteStore.db_path(storage / "exp")
    before = db.read_bytes()
    changed = {**SPACE, "x": rs.uniform(0.0, 2.0)}
    with pytest.raises(rs.ExperimentMismatchError, match=r"x: .*force"):
        _run(storage, space=changed, num_trials=8, resume=True)
    assert db.read_bytes() == before
    result = _run(storage, space=changed, num_trials=8, resume=True, force=True)
    assert len(result.trials) == 8
    assert all(t.config["x"] >= 0.0 for t in result.trials[4:])


def test_resume_of_missing_experiment(storage: Path) -> None:
    """resume=True on a name that was never run says so and creates nothing."""
    with pytest.raises(rs.ExperimentNotFoundError):
        _run(storage, resume=True)
    assert not (storage / "exp").exists()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mode": "minimize"}, "mode: expected 'min' or 'max'"),
        ({"num_trials": 0}, "num_trials: expected a positive integer"),
        ({"num_trials": None}, "num_trials: required"),
        ({"max_concurrent": -1}, "max_concurrent"),
        ({"name": "../up"}, "name: expected a folder name"),
        ({"constraints": ["x * nope < 1"]}, "nope"),
        ({"constraints": ["x > 5"]}, "none of"),
        ({"searcher": "bayes"}, "bayes"),
        ({"resources": {"cpus": 1}}, "cpus"),
        ({"stop": {"target": "low"}}, "stop.target"),
        ({"timeout_s": 0}, "timeout_s"),
    ],
)
def test_bad_arguments_fail_before_anything_is_written(
    storage: Path, kwargs: dict[str, Any], match: str
) -> None:
    """Each bad argument raises SpecError naming it, and nothing is written to storage."""
    with pytest.raises(rs.SpecError, match=match):
        _run(storage, **kwargs)
    assert list(storage.iterdir()) == []


class Recorder(rs.Callback):
    """Remembers the hooks called."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def on_experiment_start(self, info: rs.ExperimentInfo) -> None:
        self.calls.append(f"start:{info.num_trials}")

    def on_trial_start(self, trial: Trial) -> None:
        self.calls.append("trial_start")

    def on_trial_complete(self, trial: Trial) -> None:
        self.calls.append("complete")

    def on_trial_error(self, trial: Trial) -> None:
        self.calls.append("error")

    def on_experiment_end(self, result: rs.Result) -> None:
        self.calls.append(f"end:{len(result.trials)}")


def test_callbacks_see_every_event(storage: Path) -> None:
    """Callbacks get start, one start and one end per trial, and the end of the experiment."""
    recorder = Recorder()
    _run(storage, lambda c: 1.0 if c["n"] < 3 else math.inf, num_trials=8, callbacks=[recorder])
    assert recorder.calls[0] == "start:8"
    assert recorder.calls[-1] == "end:8"
    assert recorder.calls.count("trial_start") == 8
    assert recorder.calls.count("complete") + recorder.calls.count("error") == 8


def test_rerun_attempt_clears_the_previous_outcome(storage: Path) -> None:
    """A re-run trial starts clean: no stale error, end time or report series in the store."""
    clock = FakeClock()
    backend = InProcessBackend(concurrency=1, clock=clock, duration=lambda c: 30.0)
    _run(storage, clock=clock, backend=backend, num_trials=3, stop={"time_budget_s": 40.0})
    abandoned = SQLiteStore.open(storage / "exp").trials([TrialState.ABANDONED])
    assert abandoned
    assert abandoned[0].error
    assert abandoned[0].ended_at is not None
    study_store = SQLiteStore.open(storage / "exp")
    space = rs.SearchSpace.from_any(SPACE)
    study = Study(
        study_store, RandomSearcher(), space, ConstraintSet([], space), Objectives.single("loss"), 3
    )
    study.restart(abandoned[0].trial_id, now=clock.now())
    study.flush()
    again = study_store.get_trial(abandoned[0].trial_id)
    assert again.state is TrialState.RUNNING
    assert (again.error, again.ended_at, again.intermediate) == (None, None, ())
    assert again.attempts == abandoned[0].attempts + 1


def test_storage_by_file_url(storage: Path) -> None:
    """storage='file:///abs/path' stores the experiment in that folder, like a path."""
    result = _run(storage, storage=(storage / "viaurl").as_uri(), num_trials=3)
    assert result.directory == storage / "viaurl" / "exp"
    assert SQLiteStore.exists(storage / "viaurl" / "exp")


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("postgresql://host/db", "storage: unsupported URL scheme 'postgresql'"),
        ("file://remotehost/runs", "storage:"),
    ],
)
def test_unsupported_storage_is_refused_at_start(storage: Path, value: str, fragment: str) -> None:
    """A storage URL raysweep has no store for is a one-line SpecError naming storage."""
    with pytest.raises(rs.SpecError, match=fragment):
        _run(storage, storage=value)


def test_storage_that_is_a_file_is_refused_before_anything_runs(storage: Path) -> None:
    """A storage path that is a file fails naming storage; nothing runs or is written."""
    blocker = storage / "afile"
    blocker.write_text("not a folder")
    backend = InProcessBackend()
    with pytest.raises(rs.SpecError, match="storage"):
        _run(storage, storage=blocker, backend=backend)
    assert backend.submitted == []
    assert blocker.read_text() == "not a folder"
