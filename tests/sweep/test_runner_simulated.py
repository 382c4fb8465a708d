"""The runner with many trials in flight, on the simulated backend's virtual clock.

``run()`` takes the clock from the backend, so no test passes ``clock=``.

Each scenario is exact: durations are functions of the config, so every event
has a known virtual time and the runner's decisions can be checked to the second.
"""

from __future__ import annotations

import io
import itertools
import os
import re
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

import raysweep as rs
from raysweep.cli.status import render_status
from raysweep.objectives import Objectives
from raysweep.resources import Resources
from raysweep.store import NewTrial, SQLiteStore, TrialUpdate, open_experiment
from raysweep.sweep.execution import SimulatedBackend, VirtualClock
from raysweep.sweep.progress import ProgressCallback
from raysweep.sweep.runner import Runner, RunnerOptions
from raysweep.sweep.searchers import RandomSearcher, SearchContext
from raysweep.sweep.space.constraints import ConstraintSet
from raysweep.sweep.study import Study
from raysweep.trial import Trial, TrialState

SPACE = {"x": rs.uniform(0.0, 1.0), "n": rs.randint(1, 3)}


def loss_x(config: Mapping[str, Any]) -> float:
    return float(config["x"])


def _run(storage: Path, backend: SimulatedBackend, objective: Any = loss_x, **kwargs: Any) -> Any:
    kwargs.setdefault("num_trials", 20)
    kwargs.setdefault("name", "sim")
    kwargs.setdefault("seed", 1)
    return rs.run(objective, SPACE, storage=storage, backend=backend, **kwargs)


def _sim(**kwargs: Any) -> SimulatedBackend:
    return SimulatedBackend(clock=VirtualClock(start=0.0), **kwargs)


def _most_at_once(trials: Sequence[Trial]) -> int:
    """The largest number of stored trials whose [start, end) intervals overlap."""
    edges = sorted(
        [(t.started_at or 0.0, 1) for t in trials] + [(t.ended_at or 0.0, -1) for t in trials]
    )
    most = current = 0
    for _, step in edges:
        current += step
        most = max(most, current)
    return most


def test_timeouts_with_several_trials_in_flight(storage: Path) -> None:
    """Only trials slower than timeout_s fail, each exactly at its deadline; the rest complete."""
    backend = _sim(workers=4, duration=lambda c: 100.0 if c["n"] == 3 else 10.0 * c["n"])
    result = _run(storage, backend, timeout_s=50.0)
    slow = [t for t in result.trials if t.config["n"] == 3]
    fast = [t for t in result.trials if t.config["n"] != 3]
    assert slow
    assert fast
    assert all(t.state is TrialState.FAILED for t in slow)
    assert all(t.error == "timed out after 50 s" and t.duration_s == 50.0 for t in slow)
    assert all(t.state is TrialState.COMPLETED for t in fast)
    assert all(t.duration_s == 10.0 * t.config["n"] for t in fast)
    assert _most_at_once(result.trials) == 4


def test_queued_time_does_not_count_toward_the_timeout(storage: Path) -> None:
    """More trials than workers: each waits its turn and still has all of timeout_s to run."""
    backend = _sim(workers=2, duration=lambda c: 3.0)
    result = _run(storage, backend, num_trials=4, max_concurrent=4, timeout_s=5.0)
    assert {t.state for t in result.trials} == {TrialState.COMPLETED}
    assert [(t.queued_at, t.started_at, t.ended_at) for t in result.trials] == [
        (0.0, 0.0, 3.0),
        (0.0, 0.0, 3.0),
        (0.0, 3.0, 6.0),  # queued 3 s: a deadline from dispatch would have failed them at 5 s
        (0.0, 3.0, 6.0),
    ]


def test_a_trial_times_out_from_its_own_start(storage: Path) -> None:
    """A trial that got its worker only when another timed out runs to its end, and a slow one
    fails exactly timeout_s after it began."""
    durations = {0: 100.0, 1: 20.0, 2: 100.0}
    backend = _sim(workers=1, duration=lambda c: durations[round(c["n"])])
    result = rs.run(
        loss_x,
        {"n": rs.grid([0, 1, 2]), "x": 0.5},
        searcher="grid",
        max_concurrent=3,
        timeout_s=50.0,
        name="sim",
        storage=storage,
        backend=backend,
    )
    states = [(t.state, t.started_at, t.ended_at) for t in result.trials]
    assert states == [
        (TrialState.FAILED, 0.0, 50.0),
        (TrialState.COMPLETED, 50.0, 70.0),
        (TrialState.FAILED, 70.0, 120.0),
    ]


class Starts(rs.Callback):
    """Records (virtual time, hook, trial id) for dispatches, starts and ends."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.seen: list[tuple[float, str, int]] = []

    def on_trial_start(self, trial: Trial) -> None:
        assert trial.started_at is None
        self.seen.append((self.clock.now(), "dispatched", trial.trial_id))

    def on_trial_running(self, trial: Trial) -> None:
        assert trial.started_at == self.clock.now()
        self.seen.append((self.clock.now(), "running", trial.trial_id))

    def on_trial_complete(self, trial: Trial) -> None:
        self.seen.append((self.clock.now(), "complete", trial.trial_id))


def test_callbacks_hear_dispatch_and_start_apart(storage: Path) -> None:
    """A queued trial is dispatched at once but reported running only when it gets a worker."""
    backend = _sim(workers=1, duration=lambda c: 10.0)
    starts = Starts(backend.clock())
    _run(storage, backend, num_trials=2, max_concurrent=2, callbacks=[starts])
    assert starts.seen == [
        (0.0, "dispatched", 0),
        (0.0, "dispatched", 1),
        (0.0, "running", 0),
        (10.0, "running", 1),
        (10.0, "complete", 0),
        (20.0, "complete", 1),
    ]


def test_lost_workers_are_retried_until_the_trial_completes(storage: Path) -> None:
    """A worker lost on the first attempt re-runs the trial, counted and logged."""
    backend = _sim(
        workers=4, duration=lambda c: 10.0, lose=lambda c, attempt: 5.0 if attempt == 1 else None
    )
    result = _run(storage, backend, num_trials=8)
    assert {t.state for t in result.trials} == {TrialState.COMPLETED}
    assert {t.attempts for t in result.trials} == {2}
    assert {t.duration_s for t in result.trials} == {10.0}
    store = SQLiteStore.open(storage / "sim", readonly=True)
    assert sorted(e["trial_id"] for e in store.events("retry")) == list(range(8))


def test_a_trial_lost_past_max_retries_fails(storage: Path) -> None:
    """Losing a trial more often than max_retries FAILS it, naming the count and the reason."""
    backend = _sim(workers=4, duration=lambda c: 10.0, lose=lambda c, attempt: 5.0)
    result = _run(storage, backend, num_trials=6, resources={"max_retries": 1})
    assert {t.state for t in result.trials} == {TrialState.FAILED}
    assert {t.attempts for t in result.trials} == {2}
    assert all("lost 2 time(s), max_retries=1" in (t.error or "") for t in result.trials)
    assert all("simulated worker loss" in (t.error or "") for t in result.trials)


def test_time_budget_abandons_every_trial_in_flight(storage: Path) -> None:
    """At the time budget, the whole window in flight is ABANDONED at that instant."""
    backend = _sim(workers=8, duration=lambda c: 30.0 * c["n"] + c["x"])
    result = _run(storage, backend, num_trials=200, stop={"time_budget_s": 100.0})
    assert result.stop_reason == "time budget of 100 s used"
    abandoned = [t for t in result.trials if t.state is TrialState.ABANDONED]
    assert len(abandoned) == 8
    assert {t.ended_at for t in abandoned} == {100.0}
    assert all((t.ended_at or 0.0) <= 100.0 for t in result.trials)


def test_target_stops_while_others_run(storage: Path) -> None:
    """Reaching the target stops at once; the other trials in flight are ABANDONED."""
    backend = _sim(workers=8, duration=lambda c: 10.0 + c["x"])
    result = _run(storage, backend, num_trials=500, stop={"target": 0.02})
    assert result.stop_reason.startswith("target 0.02 reached")
    assert result.best is not None
    assert result.best.metrics["loss"] <= 0.02
    assert result.count(TrialState.ABANDONED) == 7
    assert len(result.trials) < 500


def test_patience_counts_completions_in_finishing_order(storage: Path) -> None:
    """With many in flight, patience stops after exactly that many non-improving completions."""
    backend = _sim(workers=8, duration=lambda c: 10.0 + c["x"])
    result = _run(storage, backend, lambda c: 1.0, num_trials=500, stop={"patience": 5})
    assert result.count(TrialState.COMPLETED) == 6  # the first sets the best, five do not beat it
    assert result.count(TrialState.ABANDONED) == 7


def test_max_failures_with_many_in_flight(storage: Path) -> None:
    """One failure past max_failures stops the run; the trials still in flight are ABANDONED."""

    def broken(config: Mapping[str, Any]) -> float:
        raise ValueError("broken objective")

    backend = _sim(workers=8, duration=lambda c: 10.0 + c["x"])
    with pytest.raises(rs.TooManyFailuresError, match="max_failures=3") as info:
        _run(storage, backend, broken, num_trials=100, max_failures=3)
    result = info.value.result
    assert result.count(TrialState.FAILED) == 4
    assert result.count(TrialState.ABANDONED) == 7
    assert SQLiteStore.open(storage / "sim", readonly=True).get_meta("status") == "failed"


class Timeline(rs.Callback):
    """Records (virtual time, hook, trial id) for every trial hook."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.seen: list[tuple[float, str, int]] = []

    def on_trial_report(self, trial: Trial, report: Mapping[str, Any]) -> None:
        self.seen.append((self.clock.now(), "report", trial.trial_id))

    def on_trial_complete(self, trial: Trial) -> None:
        self.seen.append((self.clock.now(), "complete", trial.trial_id))


def reports_three_times(config: Mapping[str, Any]) -> float:
    for step in range(3):
        rs.report(step=step, loss=float(10 - step))
    return float(config["x"])


def test_a_report_arriving_while_another_trial_finishes(storage: Path) -> None:
    """A report and another trial's completion at one instant are both handled, in order."""
    durations = {0: 30.0, 1: 10.0}  # trial 0 reports at 10, 20, 30; trial 1 ends at 10
    backend = _sim(workers=2, duration=lambda c: durations[round(c["n"])])
    timeline = Timeline(backend.clock())
    space = {"n": rs.grid([0, 1])}
    result = rs.run(
        reports_three_times,
        {**space, "x": 0.5},
        searcher="grid",
        name="sim",
        storage=storage,
        backend=backend,
        callbacks=[timeline],
    )
    at_ten = [(hook, tid) for t, hook, tid in timeline.seen if t == 10.0]
    assert ("report", 0) in at_ten
    assert ("complete", 1) in at_ten
    assert [len(t.intermediate) for t in result.trials] == [3, 3]
    assert [r["time"] for r in result.trials[0].intermediate] == [10.0, 20.0, 30.0]


def test_a_simulation_is_reproducible(storage: Path) -> None:
    """The same seed and the same simulated cluster store the same trials, times included."""

    def outcome(name: str) -> list[tuple[Any, ...]]:
        backend = _sim(workers=5, duration=lambda c: 10.0 * c["n"] + c["x"])
        result = _run(storage, backend, num_trials=30, max_concurrent=7, name=name)
        return [(t.config, t.state, t.started_at, t.ended_at) for t in result.trials]

    assert outcome("a") == outcome("b")


class Snapshot(rs.Callback):
    """At the first live report, renders ``raysweep status`` from the store and the frame
    of the progress display."""

    def __init__(self, clock: VirtualClock, directory: Path, progress: ProgressCallback) -> None:
        self.clock = clock
        self.directory = directory
        self.progress = progress
        self.status = self.frame = ""

    def on_trial_report(self, trial: Trial, report: Mapping[str, Any]) -> None:
        if self.status:
            return
        store = open_experiment(self.directory)
        try:
            out = io.StringIO()
            render_status(store, Console(file=out, width=200), self.directory, self.clock.now())
            self.status = out.getvalue()
        finally:
            store.close()
        recorder = Console(record=True, width=200, file=io.StringIO())
        recorder.print(self.progress.renderable())
        self.frame = recorder.export_text()


def test_status_and_progress_show_queued_trials_apart(storage: Path) -> None:
    """With fewer workers than max_concurrent, status and the progress display count the
    trials waiting for a worker as queued, not running."""
    backend = _sim(workers=2, duration=lambda c: 3.0)  # reports at 1, 2 and 3 s
    clock = backend.clock()
    progress = ProgressCallback(Console(file=io.StringIO()), live=False, clock=clock.now)
    snapshot = Snapshot(clock, storage / "sim", progress)
    _run(
        storage,
        backend,
        reports_three_times,
        num_trials=4,
        max_concurrent=4,
        callbacks=[progress, snapshot],
    )
    lines = [" ".join(line.split()) for line in snapshot.status.splitlines()]
    assert "trials 4 of 4: 2 running, 2 queued" in lines
    assert "running 2 trial(s)" in lines
    table = [line.split() for line in lines if " simulated 1 " in f"{line} "]
    assert [(row[0], row[2]) for row in table] == [("0", "1.0s"), ("1", "1.0s")]  # id, elapsed
    assert "queued 2 trial(s) waiting for resources, the longest for 1.0s: trial 2, 3" in lines
    assert "running 2 · queued 2 · completed 0" in snapshot.frame


# -- heartbeat ----------------------------------------------------------------------------
class RecordingStore(SQLiteStore):
    """A SQLite store that remembers what each commit held."""

    commits: list[tuple[list[NewTrial], list[TrialUpdate], dict[str, Any]]]

    def commit(
        self,
        new: Sequence[NewTrial] = (),
        updates: Sequence[TrialUpdate] = (),
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        if not hasattr(self, "commits"):
            self.commits = []
        self.commits.append((list(new), list(updates), dict(meta or {})))
        super().commit(new, updates, meta)


def _runner(
    tmp_path: Path,
    backend: SimulatedBackend,
    num_trials: int,
    concurrency: int,
    objective: Any = loss_x,
) -> tuple[Runner, RecordingStore]:
    space = rs.SearchSpace.from_any(SPACE)
    constraints = ConstraintSet([], space)
    objectives = Objectives.single("loss")
    searcher = RandomSearcher()
    searcher.setup(SearchContext(space, constraints, objectives, seed=0))
    store = RecordingStore.create(tmp_path / "hb", {"name": "hb"})
    assert isinstance(store, RecordingStore)
    study = Study(store, searcher, space, constraints, objectives, num_trials)
    backend.prepare(objective, metric="loss", hints=Resources())
    options = RunnerOptions(max_concurrent=concurrency)
    return Runner(study, backend, backend.clock(), options), store


def _beats(store: RecordingStore) -> list[dict[str, Any]]:
    return [meta["heartbeat"] for _, _, meta in store.commits if "heartbeat" in meta]


def test_heartbeat_is_committed_with_the_first_trials(tmp_path: Path) -> None:
    """The first commit of the loop holds both the first trials and the heartbeat."""
    runner, store = _runner(tmp_path, _sim(workers=2, duration=lambda c: 1.0), 2, 2)
    runner.run()
    new, _, meta = store.commits[0]
    assert [t.trial_id for t in new] == [0, 1]
    assert meta["heartbeat"] == {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "time": 0.0,
        "interval_s": 5.0,
    }


def test_an_idle_loop_still_beats(tmp_path: Path) -> None:
    """While one long trial runs with nothing to report, the heartbeat is renewed every interval."""
    runner, store = _runner(tmp_path, _sim(workers=1, duration=lambda c: 60.0), 1, 1)
    runner.run()
    times = [beat["time"] for beat in _beats(store)]
    assert times[0] == 0.0
    assert max(b - a for a, b in itertools.pairwise(times)) <= 5.0
    assert times[-1] >= 55.0


def test_a_busy_loop_beats_without_extra_commits(tmp_path: Path) -> None:
    """A heartbeat rides on a commit of trial changes; one alone comes only from an idle wait."""
    backend = _sim(workers=8, duration=lambda c: 5.0 + 3.0 * c["x"])
    runner, store = _runner(tmp_path, backend, 200, 8)
    runner.run()
    previous = None
    riding = 0
    for new, updates, meta in store.commits:
        beat = meta.get("heartbeat")
        if beat is None:
            continue
        if new or updates:
            riding += 1
        else:  # an idle wake-up: no trial changed since the last beat was half due
            assert previous is not None
            assert beat["time"] == pytest.approx(previous + 5.0)
        previous = beat["time"]
    assert riding > 10


def test_the_documented_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The example in docs/simulated.md runs as written, stopping at its virtual time budget."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "simulated.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.DOTALL)
    assert code is not None
    monkeypatch.chdir(tmp_path)
    exec(compile(code.group(1), "docs/simulated.md", "exec"), {"__name__": "__main__"})
    for searcher in ("random", "sobol"):
        store = SQLiteStore.open(tmp_path / "runs-sim" / f"sim-{searcher}", readonly=True)
        assert store.get_meta("stop_reason") == "time budget of 28800 s used"


def test_the_study_keeps_the_best_trial_as_trials_finish(tmp_path: Path) -> None:
    """The best trial kept while trials finish out of order is the one a full scan picks."""
    # The lower x (the lower the rounded loss), the longer a trial runs: among the
    # trials tied for the best, higher ids finish first.
    backend = _sim(workers=8, duration=lambda c: 10.0 + 1000.0 * max(0.0, 0.2 - c["x"]))
    runner, _ = _runner(tmp_path, backend, 60, 8, objective=lambda c: round(3 * c["x"]) / 3)
    runner.run()
    study = runner.study
    ties = [t for t in study.trials.values() if t.metrics.get("loss") == study.best_value]
    assert min(ties, key=lambda t: t.ended_at or 0.0).trial_id > min(t.trial_id for t in ties)
    assert study.best == study.objectives.best(study.trials.values())
    assert study.best == min(ties, key=lambda t: t.trial_id)
