"""The progress display: plain throttled lines in logs, a rich live view on terminals,
driven through the callback hooks with an injected clock (no Ray, no real time)."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from raysweep.objectives import Objectives
from raysweep.sweep.callbacks import ExperimentInfo
from raysweep.sweep.progress import ProgressCallback
from raysweep.sweep.result import Result
from raysweep.trial import Trial, TrialState


class Clock:
    """A settable clock."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def info(
    num_trials: int | None = 10,
    counts: dict[TrialState, int] | None = None,
    best: Trial | None = None,
    resumed: bool = False,
) -> ExperimentInfo:
    return ExperimentInfo(
        name="demo",
        directory="runs/demo",
        objectives=Objectives.single("loss"),
        num_trials=num_trials,
        counts=counts or {},
        best=best,
        resumed=resumed,
        max_concurrent=2,
    )


def trial(
    trial_id: int,
    state: TrialState = TrialState.RUNNING,
    loss: float | None = None,
    error: str | None = None,
) -> Trial:
    metrics = {} if loss is None else {"loss": loss}
    return Trial(
        trial_id=trial_id,
        state=state,
        config={"x": 0.5 + trial_id, "act": "relu"},
        metrics=metrics,
        error=error,
    )


def done(trial_id: int, loss: float) -> Trial:
    return trial(trial_id, TrialState.COMPLETED, loss)


def plain() -> tuple[ProgressCallback, Clock, io.StringIO]:
    out = io.StringIO()
    clock = Clock()
    console = Console(file=out, width=300)
    return ProgressCallback(console, clock=clock), clock, out


def frame_text(progress: ProgressCallback) -> str:
    """The live display's current frame as plain text."""
    recorder = Console(record=True, width=140, file=io.StringIO())
    recorder.print(progress.renderable())
    return recorder.export_text()


def test_plain_mode_when_not_a_terminal() -> None:
    """Output to a file or pipe gets plain lines; a terminal gets the live display."""
    assert ProgressCallback(Console(file=io.StringIO())).live is False
    assert ProgressCallback(Console(file=io.StringIO(), force_terminal=True)).live is True


def test_plain_lines_are_throttled_but_new_bests_always_shown() -> None:
    """Within a second only new bests are written; later finishes are written again."""
    progress, clock, out = plain()
    progress.on_experiment_start(info())
    for i in range(3):
        progress.on_trial_start(trial(i))
        progress.on_trial_running(trial(i))
    clock.now += 0.2
    progress.on_trial_complete(done(0, 5.0))  # first: a new best
    clock.now += 0.2
    progress.on_trial_complete(done(1, 9.0))  # not better, 0.2 s later: throttled
    clock.now += 0.2
    progress.on_trial_complete(done(2, 1.0))  # better: always written
    clock.now += 2.0
    progress.on_trial_start(trial(3))
    progress.on_trial_running(trial(3))
    progress.on_trial_complete(done(3, 7.0))  # not better, but 2 s later: written
    lines = out.getvalue().splitlines()
    assert lines[0] == "experiment demo: 10 trials, 2 at a time, minimizing loss"
    assert len(lines) == 4
    assert "1/10 done, 2 running" in lines[1]
    assert "trial 0 completed loss=5; new best: x=0.5, act=relu" in lines[1]
    assert "trial 2 completed loss=1; new best: x=2.5" in lines[2]
    assert "trial 1" not in out.getvalue()
    assert "4/10 done, 0 running" in lines[3]
    assert "trial 3 completed loss=7; best 1 (trial 2)" in lines[3]


def test_first_failure_is_always_shown_with_its_error() -> None:
    """The first failed trial is written with the last line of its error, even if throttled."""
    progress, _, out = plain()
    progress.on_experiment_start(info())
    progress.on_trial_complete(done(0, 1.0))
    progress.on_trial_error(trial(1, TrialState.FAILED, error="Traceback ...\nValueError: bad x"))
    progress.on_trial_error(trial(2, TrialState.FAILED, error="ValueError: bad x"))
    text = out.getvalue()
    assert "trial 1 FAILED: ValueError: bad x" in text
    assert "trial 2" not in text


def test_final_summary_line() -> None:
    """The end of the experiment writes counts, elapsed time and the stop reason."""
    progress, clock, out = plain()
    progress.on_experiment_start(info(num_trials=2))
    clock.now += 65.0
    trials = (done(0, 1.0), trial(1, TrialState.FAILED, error="boom"))
    progress.on_experiment_end(
        Result(
            name="demo",
            directory=Path("runs/demo"),
            objectives=Objectives.single("loss"),
            trials=trials,
            stop_reason="num_trials reached",
        )
    )
    last = out.getvalue().splitlines()[-1]
    assert last == "finished in 1m05s: 2 trials (1 completed, 1 failed); num_trials reached"


def test_resumed_experiment_counts_stored_trials() -> None:
    """On resume the counts and best start from what is stored."""
    progress, _, out = plain()
    progress.on_experiment_start(
        info(
            counts={TrialState.COMPLETED: 4, TrialState.FAILED: 1}, best=done(3, 0.25), resumed=True
        )
    )
    progress.on_trial_complete(done(5, 0.5))
    text = out.getvalue()
    assert "resumed with 5 done" in text
    assert "6/10 done" in text
    assert "best 0.25 (trial 3)" in text


def test_rich_frame_shows_progress_best_eta_and_running() -> None:
    """The live frame shows done/total, counts, best with config, ETA and running trials."""
    clock = Clock()
    progress = ProgressCallback(Console(file=io.StringIO()), live=False, clock=clock)
    progress.on_experiment_start(info())
    for i in range(3):
        progress.on_trial_start(trial(i))
        progress.on_trial_running(trial(i))
    progress.on_trial_report(trial(2), {"step": 4, "loss": 0.75, "time": 1.0})
    clock.now += 10.0
    progress.on_trial_complete(done(0, 2.0))
    progress.on_trial_error(trial(1, TrialState.FAILED, error="boom"))
    recorder = Console(record=True, width=140, file=io.StringIO())
    recorder.print(progress.renderable())
    frame = recorder.export_text()
    assert "demo" in frame
    assert "2/10" in frame
    assert "ETA 40.0s" in frame  # 2 finished in 10 s, 8 left
    assert "running 1 · completed 1 · failed 1" in frame
    assert "best trial 0  loss=2  x=0.5, act=relu" in frame
    assert "step=4, loss=0.75" in frame


def test_queued_trials_are_counted_apart_from_running_ones() -> None:
    """Dispatched trials that got no worker for a while show as queued, in the live frame and
    plain lines; the elapsed time of a running trial counts from its start."""
    progress, clock, out = plain()
    progress.on_experiment_start(info())
    for i in range(4):
        progress.on_trial_start(trial(i))
    clock.now += 0.5  # a moment after dispatch a trial is taken as starting, not waiting
    assert "running 4 · completed 0" in frame_text(progress)
    clock.now += 4.5
    progress.on_trial_running(trial(0))
    progress.on_trial_running(trial(1))
    clock.now += 2.0
    frame = frame_text(progress)
    assert "running 2 · queued 2 · completed 0 · failed 0" in frame
    rows = [line.split() for line in frame.splitlines() if line.strip()[:1].isdigit()]
    assert rows == [["0", "2.0s"], ["1", "2.0s"]]  # the queued trials 2 and 3 have no row
    progress.on_trial_complete(done(0, 1.0))
    assert "1/10 done, 1 running, 2 queued | trial 0 completed" in out.getvalue()


def test_live_display_starts_and_stops() -> None:
    """On a terminal the live display runs between start and end and leaves its last frame."""
    out = io.StringIO()
    clock = Clock()
    progress = ProgressCallback(
        Console(file=out, force_terminal=True, width=120), clock=clock, refresh_per_second=50
    )
    progress.on_experiment_start(info(num_trials=1))
    progress.on_trial_start(trial(0))
    progress.on_trial_complete(done(0, 3.0))
    progress.on_experiment_end(
        Result(
            name="demo",
            directory=Path("runs/demo"),
            objectives=Objectives.single("loss"),
            trials=(done(0, 3.0),),
            stop_reason="num_trials reached",
        )
    )
    progress.close()  # idempotent
    assert "1/1" in out.getvalue()
    assert "loss=3" in out.getvalue()
