"""The worker behind every integration: the runner never waits for the library, a
failing library is logged once and counted, and the end drains the queue in bounded time."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

import raysweep as rs
from raysweep.errors import MissingExtraError, SpecError
from raysweep.integrations import LoggingCallback
from raysweep.store import open_experiment
from raysweep.trial import Trial, TrialState
from tests.conftest import run_python
from tests.integrations.helpers import gradient_outputs, sweep

LOGGER = "raysweep.integrations"


class Recording(LoggingCallback):
    """Records what reaches the "library", with the thread that called it."""

    library = ("json", "json", "json")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.events: list[tuple[str, Any]] = []
        self.threads: set[str] = set()

    def _seen(self, kind: str, value: Any) -> None:
        self.threads.add(threading.current_thread().name)
        self.events.append((kind, value))

    def _log_experiment_start(self, info: rs.ExperimentInfo) -> None:
        self._seen("start", info.name)

    def _log_trial_start(self, trial: Trial) -> None:
        self._seen("trial", trial.trial_id)

    def _log_report(self, trial: Trial, report: Mapping[str, Any]) -> None:
        self._seen("report", (trial.trial_id, report["step"]))

    def _log_trial_end(self, trial: Trial) -> None:
        self._seen("end", trial.trial_id)

    def _log_gradient_steps(
        self, name: str, steps: list[tuple[int, Mapping[str, Any]]], first: bool
    ) -> None:
        self._seen("steps", (name, [s for s, _ in steps], first))

    def _log_end(self, result: Any) -> None:
        self._seen("close", None if result is None else result.stop_reason)


class Failing(Recording):
    """A library that raises on every call."""

    def _seen(self, kind: str, value: Any) -> None:
        raise ConnectionError(f"tracking server refused {kind}")


class Blocked(Recording):
    """A library that blocks on its first call until ``release`` is set."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.entered = threading.Event()
        self.release = threading.Event()

    def _log_experiment_start(self, info: rs.ExperimentInfo) -> None:
        self.entered.set()
        self.release.wait()
        super()._log_experiment_start(info)


def test_hooks_reach_the_library_on_the_worker_thread(storage: Path) -> None:
    """Every event arrives, in order for each trial, on the integration's own thread, and
    the end closes it."""
    recording = Recording()
    result = sweep(storage, [recording], num_trials=2, max_concurrent=1)
    assert result.count(TrialState.COMPLETED) == 2
    events = recording.events
    assert events[0] == ("start", "exp")
    assert events[-1] == ("close", "num_trials reached")
    for trial_id in (0, 1):
        of_trial = [
            (kind, value)
            for kind, value in events
            if (kind in ("trial", "end") and value == trial_id)
            or (kind == "report" and value[0] == trial_id)
        ]
        assert of_trial == [
            ("trial", trial_id),
            *[("report", (trial_id, s)) for s in range(3)],
            ("end", trial_id),
        ]
    assert recording.threads == {"raysweep-Recording"}
    assert (recording.errors, recording.dropped) == (0, 0)


def test_a_library_that_always_fails_leaves_the_sweep_completed(
    storage: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The sweep completes with its results; the error is logged once and every call counted."""
    failing = Failing()
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        result = sweep(storage, [failing], num_trials=3)
    assert result.count(TrialState.COMPLETED) == 3
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "ConnectionError: tracking server refused start" in errors[0].getMessage()
    # The opening failed, so the events that need it are skipped, not tried.
    assert failing.errors == 1
    assert failing.dropped == 3 * (1 + 3 + 1)  # start, reports, end of each trial
    store = open_experiment(storage / "exp")
    try:
        assert store.get_meta("status") == "completed"
        assert store.count_by_state() == {TrialState.COMPLETED: 3}
        assert not store.events("callback_errors")  # nothing reached the runner's guard
    finally:
        store.close()


def test_failures_after_the_opening_are_each_counted(
    storage: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A library failing on every report: all counted, one error line, the run completes."""

    class FailingReports(Recording):
        def _log_report(self, trial: Trial, report: Mapping[str, Any]) -> None:
            raise OSError("disk full")

    failing = FailingReports()
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        result = sweep(storage, [failing], num_trials=2)
    assert result.count(TrialState.COMPLETED) == 2
    assert failing.errors == 2 * 3
    assert [r.getMessage().split(" raised ")[1] for r in caplog.records] == [
        "OSError: disk full; the run goes on, later errors are counted in .errors"
    ]
    assert ("end", 1) in failing.events


def test_a_blocked_library_does_not_stall_the_sweep(
    storage: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The sweep completes while the library is blocked; its end logs what is pending,
    and a later flush delivers everything."""
    blocked = Blocked(flush_timeout_s=0)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        result = sweep(storage, [blocked], num_trials=4)
    assert blocked.entered.is_set()
    assert not blocked.release.is_set()
    assert result.count(TrialState.COMPLETED) == 4
    store = open_experiment(storage / "exp")
    try:
        assert store.get_meta("status") == "completed"
    finally:
        store.close()
    assert blocked.events == []  # still blocked in the first call
    pending = [r.getMessage() for r in caplog.records if "still pending" in r.getMessage()]
    assert len(pending) == 1
    assert "event(s) still pending after 0 s" in pending[0]
    blocked.release.set()
    assert blocked.flush(timeout_s=60)
    assert blocked.events[0] == ("start", "exp")
    assert blocked.events[-1] == ("close", "num_trials reached")
    assert sum(kind == "end" for kind, _ in blocked.events) == 4


def test_a_full_queue_drops_new_events_without_waiting(
    storage: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """With the library blocked, events past queue_size are dropped, counted and warned once."""
    blocked = Blocked(queue_size=2, flush_timeout_s=0)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        result = sweep(storage, [blocked], num_trials=2)
    assert result.count(TrialState.COMPLETED) == 2
    assert blocked.dropped > 0
    assert sum("queue of 2 events is full" in r.getMessage() for r in caplog.records) == 1
    blocked.release.set()
    assert blocked.flush(timeout_s=60)


def test_the_instance_is_a_gradient_callback() -> None:
    """As RayOptimizer's callback it logs every step, never stops or changes the run,
    and its first call hands over the steps stored before (a resume)."""
    recording = Recording(run_name="fit")
    with recording:
        for output in gradient_outputs(first=2, last=4):
            assert recording(output, output.step) == (None, True)
    assert recording.events == [
        ("steps", ("fit", [0, 1, 2], True)),
        ("steps", ("fit", [3], False)),
        ("steps", ("fit", [4], False)),
        ("close", None),
    ]


def test_a_gradient_run_without_a_name_gets_one() -> None:
    """Without run_name, a gradient run is named after the time it started."""
    recording = Recording()
    for output in gradient_outputs(first=0, last=0):
        recording(output, output.step)
    recording.close()
    ((kind, (name, steps, first)), _) = recording.events
    assert kind == "steps"
    assert name.startswith("gradient-")
    assert steps == [0]
    assert first


def test_the_instance_is_reusable_after_close(storage: Path) -> None:
    """A second sweep with the same instance opens again after the first one closed."""
    recording = Recording()
    sweep(storage, [recording], num_trials=1)
    sweep(storage, [recording], num_trials=1, name="second")
    assert [v for kind, v in recording.events if kind == "start"] == ["exp", "second"]
    assert recording.events[-1] == ("close", "num_trials reached")


def test_a_missing_library_names_the_extra() -> None:
    """An integration whose library is not installed fails at once, naming the extra."""

    class Missing(Recording):
        library = ("raysweep_no_such_library", "no-such-library", "nosuch")

    with pytest.raises(MissingExtraError, match=r'pip install "raysweep\[nosuch\]"'):
        Missing()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"queue_size": 0}, "queue_size: expected a positive integer, got 0"),
        ({"flush_timeout_s": -1}, "flush_timeout_s: expected seconds >= 0, got -1.0"),
        ({"run_name": ""}, "run_name: expected a non-empty string, got '' (str)"),
    ],
)
def test_options_are_checked(options: dict[str, Any], message: str) -> None:
    """Bad options fail at construction, in one line naming the option."""
    with pytest.raises(SpecError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Recording(**options)


def test_importing_raysweep_loads_no_tracking_library() -> None:
    """import raysweep and raysweep.integrations load neither MLflow, TensorBoard nor W&B."""
    proc = run_python(
        "import sys, raysweep, raysweep.integrations\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('mlflow', 'tensorboard', 'wandb')))"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


class CtrlC(rs.Callback):
    """Presses Ctrl-C when the first trial completes."""

    def on_trial_complete(self, trial: Trial) -> None:
        raise KeyboardInterrupt


def test_an_interrupted_sweep_still_ends_its_tracking_run(storage: Path) -> None:
    """Ctrl-C skips on_experiment_end; on_experiment_closed ends the run and drains."""
    recording = Recording()
    with pytest.raises(KeyboardInterrupt):
        sweep(storage, [recording, CtrlC()])
    assert recording.flush(timeout_s=60)
    assert recording.events[0] == ("start", "exp")
    assert recording.events[-1] == ("close", None)
