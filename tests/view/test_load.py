"""raysweep.load: sweeps, several metrics, gradient runs, URLs, old stores and bad paths."""

from __future__ import annotations

import threading
from pathlib import Path

import pandas as pd
import pytest

import raysweep as rs
from raysweep.errors import ExperimentNotFoundError, SpecError
from raysweep.store import SQLiteStore
from raysweep.trial import TrialState
from tests.store.helpers import fingerprint, old_experiment
from tests.view.helpers import make_sweep, make_two_metric_sweep


def test_load_a_sweep(storage: Path) -> None:
    """A finished sweep loads with its spec, status, trials, best trial and tables."""
    folder = make_sweep(storage)
    with rs.load(folder) as exp:
        assert isinstance(exp, rs.Experiment)
        assert (exp.name, exp.kind, exp.status) == ("sweep", "sweep", "completed")
        assert exp.location == folder.absolute().as_uri()
        assert exp.directory == folder.absolute()
        assert exp.spec["num_trials"] == 6
        assert exp.objectives is not None
        assert exp.objectives.describe() == "minimize loss"
        assert [t.trial_id for t in exp.trials] == list(range(6))
        completed = [t for t in exp.trials if t.state is TrialState.COMPLETED]
        assert exp.best is not None
        assert exp.best.metrics["loss"] == min(t.metrics["loss"] for t in completed)
        assert exp.pareto_front == [exp.best]
        assert sum(exp.counts().values()) == 6
        assert exp.error_trials() == [t for t in exp.trials if t.state is TrialState.FAILED]
        assert next(e["kind"] for e in exp.events()) == "created"
        assert exp.events("created")[0]["trial_id"] is None
        assert exp.steps == []
        assert exp.steps_dataframe().empty


def test_the_trials_table_has_utc_times(storage: Path) -> None:
    """trials_dataframe has the columns of Result.trials_dataframe, its times as UTC timestamps."""
    with rs.load(make_sweep(storage)) as exp:
        frame = exp.trials_dataframe()
        trials = exp.trials
    assert list(frame.columns[:11]) == [
        "trial_id",
        "state",
        "attempts",
        "last_step",
        "parent_id",
        "node",
        "queued_at",
        "started_at",
        "ended_at",
        "duration_s",
        "error",
    ]
    assert {"config/x", "config/tag", "metrics/loss"} <= set(frame.columns)
    for column in ("queued_at", "started_at", "ended_at"):
        assert isinstance(frame[column].dtype, pd.DatetimeTZDtype)
        assert str(frame[column].dt.tz) == "UTC"
    first = trials[0]
    assert first.started_at is not None
    assert frame.loc[0, "started_at"] == pd.Timestamp(first.started_at, unit="s", tz="UTC")


def test_the_report_series_is_a_long_table(storage: Path) -> None:
    """reports_dataframe has one row per (trial, step, metric), with the report's time."""
    with rs.load(make_sweep(storage)) as exp:
        frame = exp.reports_dataframe()
        trials = exp.trials
    assert list(frame.columns) == ["trial_id", "step", "metric", "value", "time", "time_total_s"]
    assert len(frame) == 3 * len(trials)
    assert set(frame["metric"]) == {"loss"}
    one = frame[frame.trial_id == 2].sort_values("step")
    assert list(one["step"]) == [0, 1, 2]
    assert list(one["value"]) == [r["loss"] for r in trials[2].intermediate]
    assert str(frame["time"].dt.tz) == "UTC"


def test_load_a_sweep_of_two_metrics(storage: Path) -> None:
    """A two-metric sweep gives its Pareto front, and a pareto column in its table."""
    with rs.load(make_two_metric_sweep(storage)) as exp:
        assert exp.objectives is not None
        assert exp.objectives.names == ("loss", "latency")
        front = exp.pareto_front
        frame = exp.trials_dataframe()
        long = exp.reports_dataframe()
    assert front
    assert all(t.state is TrialState.COMPLETED for t in front)
    assert set(frame[frame.pareto]["trial_id"]) == {t.trial_id for t in front}
    assert set(long["metric"]) == {"loss", "latency"}


def test_load_by_url_and_by_db_file(storage: Path) -> None:
    """A file:// URL and the experiment.db path load the same experiment."""
    folder = make_sweep(storage)
    with rs.load(folder.as_uri()) as by_url, rs.load(folder / "experiment.db") as by_file:
        assert by_url.trials == by_file.trials
        assert by_url.location == by_file.location == folder.as_uri()


def test_a_missing_path_is_one_line(tmp_path: Path) -> None:
    """A path with nothing there (and no folder above it) is one line naming it."""
    missing = tmp_path / "nowhere" / "demo"
    with pytest.raises(ExperimentNotFoundError) as info:
        rs.load(missing)
    assert str(info.value) == (
        f"no experiment found at {missing}: there is no folder {missing.parent}"
    )


def test_a_typo_names_the_experiment_meant(storage: Path) -> None:
    """A misspelled experiment name says which stored experiment is close to it."""
    make_sweep(storage, name="demo")
    with pytest.raises(ExperimentNotFoundError) as info:
        rs.load(storage / "dmeo")
    message = str(info.value)
    assert "\n" not in message
    assert message.endswith(f"did you mean {storage / 'demo'}?")


def test_a_storage_folder_names_its_experiments(storage: Path) -> None:
    """Loading the folder that holds experiments says which ones to pass."""
    make_sweep(storage, name="demo")
    with pytest.raises(ExperimentNotFoundError, match="holds experiments rather than being one"):
        rs.load(storage)


def test_an_unsupported_url_is_a_spec_error(tmp_path: Path) -> None:
    """A URL of a scheme raysweep has no store for names the schemes it has."""
    with pytest.raises(SpecError, match="unsupported URL scheme 'ftp'"):
        rs.load("ftp://host/runs/demo")


def test_an_old_store_loads_without_being_changed(tmp_path: Path) -> None:
    """A store of an older schema loads (migrated in memory); its folder stays byte-identical."""
    folder = old_experiment(tmp_path, "v1-sweep")
    before = fingerprint(folder)
    with rs.load(folder) as exp:
        assert len(exp.trials) == 6
        assert exp.best is not None
        assert not exp.refresh()
    assert fingerprint(folder) == before


def test_refresh_sees_a_change_and_says_when_there_is_none(storage: Path) -> None:
    """refresh() is False while nothing changed, True after a write, and shows the write."""
    folder = make_sweep(storage)
    with rs.load(folder) as exp:
        assert not exp.refresh()
        writer = SQLiteStore.open(folder)
        try:
            writer.commit(meta={"status": "stopped", "stop_reason": "by hand"})
            assert exp.refresh()
            assert (exp.status, exp.stop_reason) == ("stopped", "by hand")
            assert not exp.refresh()
        finally:
            writer.close()


def test_an_experiment_is_read_from_any_thread(storage: Path) -> None:
    """A notebook's or a web server's worker thread may refresh what another loaded."""
    folder = make_sweep(storage)
    with rs.load(folder) as exp:
        writer = SQLiteStore.open(folder)
        try:
            writer.commit(meta={"status": "stopped", "stop_reason": "by hand"})
        finally:
            writer.close()
        seen: list[object] = []

        def read() -> None:
            try:
                seen.append(exp.refresh())
            except Exception as exc:  # shown by the assertion below
                seen.append(exc)

        thread = threading.Thread(target=read)
        thread.start()
        thread.join()
        assert seen == [True]
        assert exp.stop_reason == "by hand"


def test_load_of_a_gradient_run(tmp_path: Path) -> None:
    """A gradient run loads with its steps, no trials, and a flat steps table."""
    from tests.cli.test_cli_status import gradient_store

    gradient_store(tmp_path / "grad")
    with rs.load(tmp_path / "grad") as exp:
        assert (exp.kind, exp.status) == ("gradient", "running")
        assert exp.trials == []
        assert exp.best is None
        assert exp.pareto_front == []
        assert exp.objectives is None
        assert [s.step for s in exp.steps] == [0, 1, 2]
        frame = exp.steps_dataframe()
        assert exp.reports_dataframe().empty
    assert list(frame.columns[:2]) == ["step", "time"]
    assert str(frame["time"].dt.tz) == "UTC"
    assert frame.loc[2, "losses/rdf"] == 0.25
    assert frame.loc[1, "params/sigma/1"] == 0.25
    assert frame.loc[0, "timings/step_s"] == 2.5
    assert frame.loc[0, "simulators_run"] == "sim.0;sim.1"
    assert not any(c.startswith("params/table") for c in frame.columns)


@pytest.mark.parametrize("given", [123, "", None, ["runs/demo"]])
def test_not_a_path_is_one_line(given: object) -> None:
    with pytest.raises(SpecError, match=r"^load: expected an experiment folder, .*, got ") as info:
        rs.load(given)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)
