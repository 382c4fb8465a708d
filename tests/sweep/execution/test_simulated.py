"""The simulated backend on its own: virtual timing, workers, cancels and losses."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

import raysweep as rs
from raysweep.resources import Resources
from raysweep.sweep.execution import (
    Event,
    InProcessBackend,
    SimulatedBackend,
    TrialFinished,
    TrialLost,
    TrialReported,
    TrialStarted,
    VirtualClock,
)


def epochs(config: Mapping[str, Any]) -> float:
    """Three reports, then the last loss."""
    for epoch in range(3):
        rs.report(step=epoch, loss=10.0 - epoch)
    return 7.0


def surrogate(config: Mapping[str, Any]) -> dict[str, float]:
    """A surrogate that knows its own cost: each epoch takes ``epoch_s`` seconds."""
    elapsed = 0.0
    for epoch in range(3):
        elapsed += config["epoch_s"]
        rs.report(step=epoch, loss=10.0 - epoch, elapsed_s=elapsed)
    return {"loss": 7.0, "elapsed_s": elapsed + 1.0}


def make(objective: Any = epochs, **kwargs: Any) -> SimulatedBackend:
    kwargs.setdefault("workers", 4)
    if "time_attr" not in kwargs:
        kwargs.setdefault("duration", lambda config: config["d"])
    backend = SimulatedBackend(clock=VirtualClock(start=0.0), **kwargs)
    backend.prepare(objective, metric="loss", hints=Resources())
    return backend


def drain(backend: SimulatedBackend) -> list[tuple[float, Event]]:
    """Every event until none is left, with the virtual time it arrived at."""
    seen: list[tuple[float, Event]] = []
    while events := backend.wait(None):
        seen.extend((backend.clock().now(), event) for event in events)
    return seen


def test_duration_spreads_reports_and_ends_on_time() -> None:
    """With duration=, report i of n comes at (i+1)/n of it and the result right after."""
    backend = make()
    backend.submit(0, {"d": 30.0})
    seen = drain(backend)
    assert [(t, type(e).__name__) for t, e in seen] == [
        (0.0, "TrialStarted"),
        (10.0, "TrialReported"),
        (20.0, "TrialReported"),
        (30.0, "TrialReported"),
        (30.0, "TrialFinished"),
    ]
    finished = seen[-1][1]
    assert isinstance(finished, TrialFinished)
    assert (finished.payload["started_at"], finished.payload["ended_at"]) == (0.0, 30.0)
    assert [r["time"] for r in finished.payload["reports"]] == [10.0, 20.0, 30.0]
    assert finished.payload["node"] == "simulated"


def test_time_attr_takes_times_from_the_objective() -> None:
    """With time_attr=, each report comes at its reported elapsed time, the end at the result's."""
    backend = make(surrogate, time_attr="elapsed_s")
    backend.submit(0, {"epoch_s": 5.0})
    seen = drain(backend)
    assert [t for t, _ in seen] == [0.0, 5.0, 10.0, 15.0, 16.0]
    reported = seen[1][1]
    assert isinstance(reported, TrialReported)
    assert (reported.report["elapsed_s"], reported.report["time"]) == (5.0, 5.0)


def test_trials_interleave_in_virtual_time_order() -> None:
    """Several trials in flight deliver their events merged by time, not by submit order."""
    backend = make()
    backend.submit(0, {"d": 30.0})
    backend.submit(1, {"d": 3.0})
    order = [(t, e.trial_id) for t, e in drain(backend) if isinstance(e, TrialFinished)]
    assert order == [(3.0, 1), (30.0, 0)]


def test_events_at_one_instant_come_together() -> None:
    """A report of one trial and the end of another at the same instant arrive in one wait."""
    backend = make()
    backend.submit(0, {"d": 30.0})  # reports at 10, 20, 30
    backend.submit(1, {"d": 10.0})  # reports at 10/3, 20/3, 10 and ends at 10
    while backend.clock().now() < 10.0:
        events = backend.wait(None)
    assert backend.clock().now() == 10.0
    assert [(type(e).__name__, e.trial_id) for e in events] == [
        ("TrialReported", 0),
        ("TrialReported", 1),
        ("TrialFinished", 1),
    ]


def test_wait_stops_at_the_timeout() -> None:
    """A wait shorter than the next event moves the clock by the timeout and returns nothing."""
    backend = make()
    backend.submit(0, {"d": 30.0})
    assert [type(e) for e in backend.wait(4.0)] == [TrialStarted]
    assert backend.wait(4.0) == []
    assert backend.clock().now() == 4.0
    assert [type(e) for e in backend.wait(6.0)] == [TrialReported]
    assert backend.clock().now() == 10.0


def test_idle_wait_moves_the_clock_or_returns_at_once() -> None:
    """With nothing in flight, wait(timeout) just lets time pass and wait(None) returns."""
    backend = make()
    assert backend.wait(7.5) == []
    assert backend.clock().now() == 7.5
    assert backend.wait(None) == []
    assert backend.clock().now() == 7.5


def test_workers_bound_what_runs_and_the_rest_queue() -> None:
    """Beyond `workers` trials wait for a free worker; their stored start is when they got one."""
    started: list[int] = []

    def objective(config: Mapping[str, Any]) -> float:
        started.append(config["id"])
        return 1.0

    backend = make(objective, workers=2)
    for trial_id in range(3):
        backend.submit(trial_id, {"id": trial_id, "d": 10.0})
    assert (started, backend.queued) == ([0, 1], 1)
    finished = [e for _, e in drain(backend) if isinstance(e, TrialFinished)]
    assert [(e.trial_id, e.payload["started_at"], e.payload["ended_at"]) for e in finished] == [
        (0, 0.0, 10.0),
        (1, 0.0, 10.0),
        (2, 10.0, 20.0),
    ]
    assert backend.queued == 0


def test_a_queued_trial_says_when_it_gets_a_worker() -> None:
    """A trial waiting for a worker starts at the instant one frees, told right after the end
    that freed it; trials that start on submit are told at once, before time moves."""
    backend = make(workers=1)
    backend.submit(0, {"d": 10.0})
    backend.submit(1, {"d": 10.0})
    assert backend.wait(None) == [TrialStarted(0, 0.0, "simulated")]
    assert backend.clock().now() == 0.0
    at_ten = [e for t, e in drain(backend) if t == 10.0]
    assert [(type(e).__name__, e.trial_id) for e in at_ten] == [
        ("TrialReported", 0),
        ("TrialFinished", 0),
        ("TrialStarted", 1),
    ]
    assert at_ten[-1] == TrialStarted(1, 10.0, "simulated")


def test_cancel_drops_what_was_still_to_come() -> None:
    """A cancelled trial sends nothing more, and its worker goes to the next queued trial."""
    backend = make(workers=1)
    backend.submit(0, {"d": 30.0})
    backend.submit(1, {"d": 5.0})
    assert [(type(e), e.trial_id) for e in backend.wait(None)] == [(TrialStarted, 0)]
    first = backend.wait(None)
    assert [(type(e), e.trial_id) for e in first] == [(TrialReported, 0)]
    backend.cancel(0)
    rest = drain(backend)
    assert all(e.trial_id == 1 for _, e in rest)
    assert (rest[-1][0], type(rest[-1][1])) == (15.0, TrialFinished)


def test_a_cancelled_queued_trial_never_runs() -> None:
    """Cancelling a trial still waiting for a worker means its objective is never called."""
    calls: list[int] = []

    def objective(config: Mapping[str, Any]) -> float:
        calls.append(config["id"])
        return 1.0

    backend = make(objective, workers=1)
    backend.submit(0, {"id": 0, "d": 5.0})
    backend.submit(1, {"id": 1, "d": 5.0})
    backend.cancel(1)
    assert {e.trial_id for _, e in drain(backend)} == {0}
    assert calls == [0]


def test_lost_worker_cuts_the_attempt_short() -> None:
    """`lose` ends an attempt with TrialLost at its time; reports before it still arrive."""
    backend = make(lose=lambda config, attempt: 15.0 if attempt == 1 else None)
    backend.submit(0, {"d": 30.0})
    seen = drain(backend)
    assert [(t, type(e)) for t, e in seen] == [
        (0.0, TrialStarted),
        (10.0, TrialReported),
        (15.0, TrialLost),
    ]
    lost = seen[-1][1]
    assert isinstance(lost, TrialLost)
    assert "attempt 1" in lost.reason
    backend.submit(0, {"d": 30.0})
    assert type(drain(backend)[-1][1]) is TrialFinished


def test_a_loss_after_the_end_does_not_happen() -> None:
    """A worker death scheduled at or after the trial's end leaves the trial finished."""
    backend = make(lose=lambda config, attempt: 30.0)
    backend.submit(0, {"d": 30.0})
    assert type(drain(backend)[-1][1]) is TrialFinished


def test_a_failing_objective_ends_at_its_last_report() -> None:
    """An objective that raises (time_attr mode) fails at the time of its last report."""

    def crashes(config: Mapping[str, Any]) -> float:
        rs.report(step=0, loss=1.0, elapsed_s=12.0)
        raise RuntimeError("diverged")

    backend = make(crashes, time_attr="elapsed_s")
    backend.submit(0, {})
    when, finished = drain(backend)[-1]
    assert isinstance(finished, TrialFinished)
    assert when == 12.0
    assert not finished.payload["ok"]
    assert "diverged" in finished.payload["error"]


def test_the_backend_hands_out_its_clock() -> None:
    """The simulator offers its virtual clock to the runner; other backends offer none."""
    clock = VirtualClock(start=5.0)
    assert SimulatedBackend(workers=1, duration=lambda c: 1.0, clock=clock).clock() is clock
    assert InProcessBackend().clock() is None
    assert SimulatedBackend(workers=1, duration=lambda c: 1.0).clock().now() > 1e9


def test_virtual_clock_never_goes_back() -> None:
    """Moving a virtual clock into the past is refused."""
    clock = VirtualClock(start=10.0)
    clock.advance_to(12.0)
    with pytest.raises(ValueError, match="never goes back"):
        clock.advance_to(11.0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"workers": 0, "duration": lambda c: 1.0}, "workers must be an integer >= 1"),
        ({"workers": 2}, "exactly one of duration"),
        ({"workers": 2, "duration": lambda c: 1.0, "time_attr": "t"}, "exactly one of duration"),
        ({"workers": 2, "time_attr": ""}, "time_attr must be a metric name"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, Any], match: str) -> None:
    """Each bad constructor argument raises SpecError saying what is expected."""
    with pytest.raises(rs.SpecError, match=match):
        SimulatedBackend(**kwargs)


@pytest.mark.parametrize("value", [-1.0, float("nan"), "10"])
def test_a_bad_duration_names_the_trial(value: Any) -> None:
    """duration() returning something other than seconds >= 0 is an error naming the trial."""
    backend = make(duration=lambda config: value)
    with pytest.raises(rs.SpecError, match=r"duration\(config\) returned .* for trial 3"):
        backend.submit(3, {})
