"""The runner with a scheduler, on the simulated backend: stops, pauses, checkpoints.

Scripted schedulers decide on known reports, so what the runner does with each
decision (PRUNED with the last metrics, PAUSED then going on from a donor's
checkpoint with a new config, searcher and scheduler told) is checked exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

import raysweep as rs
from raysweep.store import open_experiment
from raysweep.sweep.execution import SimulatedBackend, VirtualClock
from raysweep.sweep.schedulers import Decision, Exploit, Scheduler
from raysweep.sweep.searchers import RandomSearcher
from raysweep.trial import Trial, TrialState

SPACE = {"x": rs.uniform(0.0, 1.0)}
EPOCHS = 6


def train(config: Mapping[str, Any]) -> float:
    """Loss x / (epoch + 1); a checkpoint before each report holds the next epoch."""
    state = rs.load_checkpoint() or {"epoch": 0, "resumed_from": None}
    start = state["epoch"]
    for epoch in range(start, EPOCHS):
        rs.save_checkpoint({"epoch": epoch + 1, "x": config["x"]})
        rs.report(step=epoch, loss=config["x"] / (epoch + 1), start=start)
    return float(config["x"] / EPOCHS)


class StopOdd(Scheduler):
    """Stops odd trials at step 2."""

    name = "stop_odd"

    def on_trial_result(self, trial: Trial, report: Mapping[str, Any]) -> Decision:
        if trial.trial_id % 2 and report["step"] == 2:
            return Decision.STOP
        return Decision.CONTINUE


class PauseOne(Scheduler):
    """Pauses trial 1 at step 2; it goes on from trial 0's checkpoint with x = 0.5."""

    name = "pause_one"
    pauses = True

    def __init__(self) -> None:
        super().__init__()
        self.paused: list[int] = []

    def on_trial_result(self, trial: Trial, report: Mapping[str, Any]) -> Decision:
        if trial.trial_id == 1 and report["step"] == 2 and not self.paused:
            return Decision.PAUSE
        return Decision.CONTINUE

    def on_trial_paused(self, trial: Trial) -> Exploit | None:
        self.paused.append(trial.trial_id)
        return Exploit(config={**trial.config, "x": 0.5}, donor=0)


class Recording(RandomSearcher):
    def __init__(self) -> None:
        super().__init__(seed=0)
        self.pruned: list[int] = []
        self.results: list[tuple[int, int]] = []

    def on_trial_result(self, trial: Trial, report: Mapping[str, Any]) -> None:
        self.results.append((trial.trial_id, report["step"]))

    def on_trial_pruned(self, trial: Trial) -> None:
        self.pruned.append(trial.trial_id)


def _sim(workers: int = 2) -> SimulatedBackend:
    return SimulatedBackend(workers=workers, duration=lambda c: 60.0, clock=VirtualClock(start=0.0))


def test_a_stopped_trial_is_pruned_at_its_report_with_its_last_metrics(tmp_path: Path) -> None:
    searcher = Recording()
    result = rs.run(
        train, SPACE, num_trials=4, storage=tmp_path, name="s", backend=_sim(),
        searcher=searcher, scheduler=StopOdd(), verbose=0,
    )  # fmt: skip
    states = {t.trial_id: t.state for t in result.trials}
    assert states == {
        0: TrialState.COMPLETED,
        1: TrialState.PRUNED,
        2: TrialState.COMPLETED,
        3: TrialState.PRUNED,
    }
    pruned = result.trials[1]
    assert [r["step"] for r in pruned.intermediate] == [0, 1, 2]
    assert pruned.metrics["loss"] == pytest.approx(pruned.config["x"] / 3)
    assert pruned.last_step == 2
    assert pruned.error is None
    assert searcher.pruned == [1, 3]
    assert (1, 2) in searcher.results
    assert (1, 3) not in searcher.results
    # The simulated task ended at the report: 3 of 6 reports, half its 60 s.
    assert pruned.duration_s == pytest.approx(30.0)


def test_fifo_judges_nothing_and_leaves_reports_fire_and_forget(tmp_path: Path) -> None:
    searcher = Recording()
    result = rs.run(
        train, SPACE, num_trials=2, storage=tmp_path, name="f", backend=_sim(),
        searcher=searcher, verbose=0,
    )  # fmt: skip
    assert all(t.state is TrialState.COMPLETED for t in result.trials)
    assert searcher.results == []


def test_a_paused_trial_goes_on_from_the_donors_checkpoint_with_a_new_config(
    tmp_path: Path,
) -> None:
    scheduler = PauseOne()
    result = rs.run(
        train, SPACE, num_trials=2, storage=tmp_path, name="p", backend=_sim(),
        searcher=RandomSearcher(seed=0), scheduler=scheduler, verbose=0,
    )  # fmt: skip
    assert scheduler.paused == [1]
    donor, exploited = result.trials
    assert exploited.state is TrialState.COMPLETED
    assert exploited.config["x"] == 0.5
    assert exploited.parent_id == 0
    assert exploited.attempts == 2
    # Steps 0-2 from its own run, then from the donor's checkpoint at the moment
    # of the pause (trial 0 had saved "epoch 3" before reporting step 2).
    steps = [(r["step"], r["start"]) for r in exploited.intermediate]
    assert steps == [(0, 0), (1, 0), (2, 0), (3, 3), (4, 3), (5, 3)]
    assert exploited.metrics["loss"] == pytest.approx(0.5 / EPOCHS)
    store = open_experiment(tmp_path / "p", readonly=True)
    try:
        (event,) = store.events("exploit")
    finally:
        store.close()
    assert event["trial_id"] == 1
    assert (event["data"]["donor"], event["data"]["step"]) == (0, 2)
    assert event["data"]["config"]["x"] == 0.5
    assert event["data"]["checkpoint"]
    assert donor.state is TrialState.COMPLETED


def test_checkpoints_are_kept_per_trial_newest_first_and_nothing_else(tmp_path: Path) -> None:
    rs.run(
        train, SPACE, num_trials=2, storage=tmp_path, name="k", backend=_sim(),
        keep_checkpoints=3, verbose=0,
    )  # fmt: skip
    folder = tmp_path / "k" / "trials"
    assert sorted(p.name for p in folder.iterdir()) == ["0", "1"]
    saved = sorted(p.name for p in (folder / "0" / "checkpoints").iterdir())
    # Six saved, the newest three kept; nothing half-written left behind.
    assert saved == ["ckpt-000003", "ckpt-000004", "ckpt-000005"]


def test_no_trial_folder_for_trials_that_use_none(tmp_path: Path) -> None:
    rs.run(
        lambda c: c["x"], SPACE, num_trials=3, storage=tmp_path, name="n", backend=_sim(),
        verbose=0,
    )  # fmt: skip
    assert not (tmp_path / "n" / "trials").exists()


def test_a_trial_may_prune_itself(tmp_path: Path) -> None:
    def objective(config: Mapping[str, Any]) -> float:
        rs.report(step=0, loss=1.0)
        if config["x"] > 0.5:
            raise rs.TrialPruned("not promising")
        return 1.0

    result = rs.run(
        objective, SPACE, num_trials=6, storage=tmp_path, name="self", backend=_sim(),
        seed=3, verbose=0,
    )  # fmt: skip
    for trial in result.trials:
        expected = TrialState.PRUNED if trial.config["x"] > 0.5 else TrialState.COMPLETED
        assert trial.state is expected
        assert trial.metrics == {"loss": 1.0}


def curve(config: Mapping[str, Any]) -> float:
    """A learning curve per config: loss x + 1 / (epoch + 1), reported for 27 epochs."""
    for epoch in range(27):
        rs.report(step=epoch, loss=config["x"] + 1.0 / (epoch + 1))
    return float(config["x"] + 1.0 / 27)


def test_asha_on_many_trials_in_flight_prunes_only_at_its_rungs(tmp_path: Path) -> None:
    backend = SimulatedBackend(workers=8, duration=lambda c: 270.0, clock=VirtualClock(0.0))
    result = rs.run(
        curve, SPACE, num_trials=60, storage=tmp_path, name="asha", backend=backend,
        searcher="random", seed=2, verbose=0,
        scheduler=rs.schedulers.ASHA(max_t=27, grace_period=1, reduction_factor=3),
    )  # fmt: skip
    pruned = [t for t in result.trials if t.state is TrialState.PRUNED]
    completed = [t for t in result.trials if t.state is TrialState.COMPLETED]
    assert len(pruned) + len(completed) == 60
    assert {t.last_step for t in pruned} <= {1, 3, 9}  # the rungs of (1, 27, 3)
    assert len(pruned) >= 30  # most of a random population is below the top third
    best = min(result.trials, key=lambda t: t.config["x"])
    assert best.state is TrialState.COMPLETED  # the best trial is never pruned
    assert result.best is not None
    assert result.best.trial_id == best.trial_id
    # A pruned trial's task ended at its rung: (step + 1) / 27 of its 270 s.
    for trial in pruned:
        assert trial.duration_s == pytest.approx(10.0 * (trial.last_step + 1))


def pbt_objective(config: Mapping[str, Any]) -> float:
    """Training whose loss falls faster for larger lr; state in a checkpoint."""
    state = rs.load_checkpoint() or {"epoch": 0, "loss": 10.0, "lrs": []}
    loss = state["loss"]
    for epoch in range(state["epoch"], 12):
        loss = loss * (1.0 - config["lr"])
        state = {"epoch": epoch + 1, "loss": loss, "lrs": [*state["lrs"], config["lr"]]}
        rs.save_checkpoint(state)
        rs.report(step=epoch, loss=loss, lr=config["lr"])
    return float(loss)


def test_pbt_exploits_copy_a_donors_checkpoint_and_perturb_its_config(tmp_path: Path) -> None:
    backend = SimulatedBackend(workers=4, duration=lambda c: 120.0, clock=VirtualClock(0.0))
    result = rs.run(
        pbt_objective, {"lr": rs.uniform(0.01, 0.5)}, num_trials=8, storage=tmp_path,
        name="pbt", backend=backend, searcher="random", seed=4, verbose=0,
        scheduler={"name": "pbt", "perturbation_interval": 3, "hyperparam_mutations": ["lr"],
                   "quantile_fraction": 0.25, "resample_probability": 0.0},
    )  # fmt: skip
    assert all(t.state is TrialState.COMPLETED for t in result.trials)
    exploited = [t for t in result.trials if t.parent_id is not None]
    assert exploited, "PBT exploited no trial among 8"
    store = open_experiment(tmp_path / "pbt", readonly=True)
    try:
        events = store.events("exploit")
    finally:
        store.close()
    assert len(events) >= len(exploited)
    for event in events:
        donor = result.get_trial(event["data"]["donor"])
        assert event["data"]["checkpoint"]  # the donor's checkpoint was copied
        assert event["data"]["config"]["lr"] != donor.config["lr"] or donor.parent_id is not None
    for trial in exploited:
        # The series goes on across the exploit, from where the donor's checkpoint
        # was (PBT jumps to the donor's progress): steps rise, ending at the last.
        steps = [r["step"] for r in trial.intermediate]
        assert steps[:4] == [0, 1, 2, 3]
        assert steps == sorted(set(steps))
        assert steps[-1] == 11
        assert trial.attempts >= 2
        # After the exploit the trial trains with a perturbed donor lr (x1.2 or x0.8).
        last = next(e for e in reversed(events) if e["trial_id"] == trial.trial_id)
        assert trial.config["lr"] == pytest.approx(last["data"]["config"]["lr"])


def test_bohb_style_tpe_with_hyperband_sees_intermediate_results(tmp_path: Path) -> None:
    pytest.importorskip("optuna")
    backend = SimulatedBackend(workers=4, duration=lambda c: 270.0, clock=VirtualClock(0.0))
    result = rs.run(
        curve, SPACE, num_trials=30, storage=tmp_path, name="bohb", backend=backend,
        searcher="tpe", seed=0, verbose=0,
        scheduler={"name": "hyperband", "max_t": 27, "grace_period": 1, "reduction_factor": 3},
    )  # fmt: skip
    assert result.count(TrialState.PRUNED) > 0
    assert result.count(TrialState.PRUNED) + result.count(TrialState.COMPLETED) == 30


def test_a_trial_run_again_after_a_lost_worker_goes_on_from_its_checkpoint(
    tmp_path: Path,
) -> None:
    # Attempt 1 dies after 35 s: reports at 10, 20, 30 s (steps 0-2) were made,
    # and before step 2 it had saved "epoch 3".
    backend = SimulatedBackend(
        workers=1, duration=lambda c: 60.0, clock=VirtualClock(0.0),
        lose=lambda config, attempt: 35.0 if attempt == 1 else None,
    )  # fmt: skip
    result = rs.run(
        train, SPACE, num_trials=1, storage=tmp_path, name="lost", backend=backend,
        resources={"max_retries": 1}, verbose=0,
    )  # fmt: skip
    (trial,) = result.trials
    assert trial.state is TrialState.COMPLETED
    assert trial.attempts == 2
    assert [(r["step"], r["start"]) for r in trial.intermediate] == [
        (0, 0), (1, 0), (2, 0), (3, 3), (4, 3), (5, 3),
    ]  # fmt: skip


def chatty(config: Mapping[str, Any]) -> float:
    print(f"x is {config['x']}")
    import sys

    print("warning on stderr", file=sys.stderr)
    return float(config["x"])


def test_log_output_keeps_each_trials_output_in_its_folder(tmp_path: Path) -> None:
    rs.run(
        chatty, SPACE, num_trials=2, storage=tmp_path, name="log", backend=_sim(),
        log_output=True, verbose=0,
    )  # fmt: skip
    for trial_id in (0, 1):
        text = (tmp_path / "log" / "trials" / str(trial_id) / "output.log").read_text()
        assert text.startswith("x is ")
        assert "warning on stderr" in text


def test_log_output_is_capped(tmp_path: Path) -> None:
    from raysweep.sweep.execution._worker import OUTPUT_CAP

    def loud(config: Mapping[str, Any]) -> float:
        for _ in range(OUTPUT_CAP // 1000 + 10):
            print("y" * 999)
        return 0.0

    rs.run(
        loud, SPACE, num_trials=1, storage=tmp_path, name="cap", backend=_sim(),
        log_output=True, verbose=0,
    )  # fmt: skip
    log = tmp_path / "cap" / "trials" / "0" / "output.log"
    assert OUTPUT_CAP <= log.stat().st_size <= OUTPUT_CAP + 200
    assert log.read_text().rstrip().endswith("cap reached, the rest dropped]")


def test_an_asha_sweep_stopped_midway_resumes_with_its_rungs(tmp_path: Path) -> None:
    def run(**kwargs: Any) -> Any:
        backend = SimulatedBackend(workers=4, duration=lambda c: 270.0, clock=VirtualClock(0.0))
        return rs.run(
            curve, SPACE, num_trials=40, storage=tmp_path, name="resume", backend=backend,
            searcher="random", seed=5, verbose=0,
            scheduler={"name": "asha", "max_t": 27, "grace_period": 1, "reduction_factor": 3},
            **kwargs,
        )  # fmt: skip

    first = run(stop={"time_budget_s": 600.0})
    assert first.stop_reason.startswith("time budget")
    done = {t.trial_id: t for t in first.trials if t.state.is_finished()}
    assert done
    assert len(first.trials) < 40
    second = run(resume=True)
    assert len(second.trials) == 40
    for trial in second.trials:
        assert trial.state in (TrialState.COMPLETED, TrialState.PRUNED)
        if trial.trial_id in done:
            assert trial == done[trial.trial_id]  # untouched by the resume
        if trial.state is TrialState.PRUNED:
            assert trial.last_step in (1, 3, 9)
