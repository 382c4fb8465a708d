"""Callbacks observe: one that raises is logged once, counted and stored, and the run goes
on with nothing left RUNNING; the progress display follows ``verbose``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

import raysweep as rs
from raysweep.store import open_experiment
from raysweep.sweep.execution import FakeClock, InProcessBackend
from raysweep.trial import TrialState

SPACE = {"x": rs.uniform(0.0, 1.0)}


def square(config: dict[str, Any]) -> float:
    return float(config["x"]) ** 2


class Broken(rs.Callback):
    """Raises in the hooks named by ``hooks``."""

    def __init__(self, *hooks: str) -> None:
        self.hooks = hooks
        self.completed = 0

    def on_experiment_start(self, info: rs.ExperimentInfo) -> None:
        if "start" in self.hooks:
            raise RuntimeError("start hook is broken")

    def on_trial_complete(self, trial: rs.Trial) -> None:
        self.completed += 1
        if "complete" in self.hooks:
            raise ValueError(f"cannot log trial {trial.trial_id}")


def _run(storage: Path, callbacks: list[rs.Callback], **kwargs: Any) -> rs.Result:
    clock = FakeClock()
    return rs.run(
        square,
        SPACE,
        num_trials=6,
        name=kwargs.pop("name", "cb"),
        storage=storage,
        backend=InProcessBackend(concurrency=2, clock=clock),
        clock=clock,
        callbacks=callbacks,
        verbose=kwargs.pop("verbose", 0),
        **kwargs,
    )


def test_a_raising_callback_does_not_stop_the_run(
    storage: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Every trial completes, nothing is left RUNNING, and the error is logged once."""
    broken, healthy = Broken("start", "complete"), Broken()
    with caplog.at_level(logging.ERROR, logger="raysweep.callbacks"):
        result = _run(storage, [broken, healthy])
    assert result.count(TrialState.COMPLETED) == 6
    assert healthy.completed == broken.completed == 6
    messages = [r.getMessage() for r in caplog.records]
    assert sum("Broken.on_trial_complete" in m for m in messages) == 1
    assert sum("Broken.on_experiment_start" in m for m in messages) == 1
    store = open_experiment(storage / "cb")
    try:
        assert store.count_by_state() == {TrialState.COMPLETED: 6}
        (event,) = store.events("callback_errors")
        assert event["data"]["Broken.on_trial_complete"] == {
            "count": 6,
            "first": "ValueError: cannot log trial 0",
        }
    finally:
        store.close()


def test_keyboard_interrupt_in_a_callback_still_stops(storage: Path) -> None:
    """Ctrl-C is not swallowed: it stops the run, which is then resumable."""

    class CtrlC(rs.Callback):
        def on_trial_complete(self, trial: rs.Trial) -> None:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _run(storage, [CtrlC()])
    store = open_experiment(storage / "cb")
    try:
        assert store.get_meta("status") == "stopped"
        assert TrialState.RUNNING not in store.count_by_state()
    finally:
        store.close()


def test_verbose_shows_the_progress_display(
    storage: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """verbose=1 prints the progress lines and the end; verbose=0 prints nothing."""
    _run(storage, [], verbose=0)
    assert capsys.readouterr().out == ""
    _run(storage, [], verbose=1, name="shown")
    out = capsys.readouterr().out
    assert "experiment shown: 6 trials" in out
    assert "finished in" in out


def test_verbose_is_checked() -> None:
    """verbose takes 0, 1 or 2."""
    with pytest.raises(rs.SpecError, match="verbose: expected 0, 1 or 2"):
        rs.run(square, SPACE, num_trials=1, verbose=5)


class Closing(rs.Callback):
    """Records the end hooks, in order; presses Ctrl-C after ``interrupt_after`` trials."""

    def __init__(self, interrupt_after: int | None = None) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.interrupt_after = interrupt_after

    def on_trial_complete(self, trial: rs.Trial) -> None:
        done = sum(1 for hook, _ in self.calls if hook == "complete") + 1
        self.calls.append(("complete", trial.trial_id))
        if self.interrupt_after is not None and done >= self.interrupt_after:
            raise KeyboardInterrupt

    def on_experiment_end(self, result: rs.Result) -> None:
        self.calls.append(("end", len(result.trials)))

    def on_experiment_closed(self, error: BaseException | None) -> None:
        self.calls.append(("closed", type(error).__name__ if error else None))


def test_closed_is_the_last_call_after_a_normal_end(storage: Path) -> None:
    closing = Closing()
    _run(storage, [closing])
    assert closing.calls[-2:] == [("end", 6), ("closed", None)]


def test_closed_comes_with_the_exception_that_ended_the_run(storage: Path) -> None:
    """Ctrl-C ends the run without on_experiment_end; on_experiment_closed still comes,
    with the KeyboardInterrupt, which goes on to the caller."""
    closing = Closing(interrupt_after=2)
    with pytest.raises(KeyboardInterrupt):
        _run(storage, [closing])
    assert [hook for hook, _ in closing.calls] == ["complete", "complete", "closed"]
    assert closing.calls[-1] == ("closed", "KeyboardInterrupt")
