"""How the library searchers tell a trial a scheduler pruned, and its intermediate
results: Optuna as PRUNED with its intermediate values, Ax as early-stopped with
its last values, ``auto`` through the searcher it chose; each the same again
after a resume.
"""

from __future__ import annotations

import json
import math
import warnings
from typing import Any

import pytest

pytest.importorskip("optuna")

from raysweep.objectives import Direction, Metric, Objectives
from raysweep.sweep.searchers import SearchContext, Searcher, make_searcher
from raysweep.sweep.searchers._optuna import OptunaSearcher
from raysweep.sweep.searchers.auto import AutoSearcher
from raysweep.sweep.space import SearchSpace, uniform
from raysweep.sweep.space.constraints import ConstraintSet
from raysweep.trial import Trial, TrialState
from tests.sweep.searchers.conformance import make_ctx, prune, reports
from tests.sweep.searchers.model_based import BRANIN_SPACE, branin

TWO = Objectives((Metric("loss"), Metric("acc", Direction.MAX)))


def running(trial_id: int, config: dict[str, Any]) -> Trial:
    return Trial(trial_id, TrialState.RUNNING, config, attempts=1)


def completed(trial_id: int, config: dict[str, Any], losses: list[float]) -> Trial:
    """A completed trial that reported ``losses`` on its way (the last is its result)."""
    return Trial(
        trial_id,
        TrialState.COMPLETED,
        config,
        metrics={"loss": losses[-1]},
        intermediate=reports(losses),
        attempts=1,
    )


def study_of(searcher: Searcher) -> list[tuple[Any, ...]]:
    """What the Optuna study holds of each trial, in order."""
    assert isinstance(searcher, OptunaSearcher)
    return [
        (t.state, t.params, t.values, t.intermediate_values, t.constraints)
        for t in searcher.optuna_study.get_trials(deepcopy=False)
    ]


def tpe(seed: int = 0, ctx: SearchContext | None = None) -> Searcher:
    searcher = make_searcher("tpe", {"seed": seed, "n_startup_trials": 4})
    searcher.setup(ctx or make_ctx(BRANIN_SPACE, seed=seed))
    return searcher


def test_tpe_holds_a_pruned_trial_with_its_intermediate_values() -> None:
    """Reports reach the live Optuna trial by step (those without a finite loss are
    skipped, a step told twice keeps its first value, quietly); pruned, the trial is
    PRUNED there with those values and the last as its value."""
    import optuna

    searcher = tpe()
    config = searcher.suggest(0)
    assert config is not None
    searcher.on_trial_start(running(0, config))
    series = [
        {"step": 0, "time": 1.0, "loss": 5.0, "time_total_s": 0.1},
        {"step": 1, "time": 2.0, "acc": 0.5, "time_total_s": 0.2},  # no loss
        {"step": 2, "time": 3.0, "loss": math.nan, "time_total_s": 0.3},
        {"step": 3, "time": 4.0, "loss": 4.0, "time_total_s": 0.4},
        {"step": 3, "time": 5.0, "loss": 9.0, "time_total_s": 0.5},  # again, after a re-run
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for report in series:
            searcher.on_trial_result(running(0, config), report)
        assert isinstance(searcher, OptunaSearcher)
        (live,) = searcher.optuna_study.get_trials(deepcopy=False)
        assert live.state is optuna.trial.TrialState.RUNNING
        assert live.intermediate_values == {0: 5.0, 3: 4.0}
        searcher.on_trial_pruned(
            Trial(0, TrialState.PRUNED, config, {"loss": 9.0}, tuple(series), attempts=1)
        )
    (pruned,) = searcher.optuna_study.get_trials(deepcopy=False)
    assert pruned.state is optuna.trial.TrialState.PRUNED
    assert pruned.intermediate_values == {0: 5.0, 3: 4.0}
    assert pruned.value == 4.0


def test_a_restored_tpe_study_equals_the_original() -> None:
    """Rebuilt from the stored trials (completed ones with reports, pruned ones with
    and without, a failed and a running one), the Optuna study holds the same states,
    parameters, values and intermediate values, and the model proposes the same."""
    original = tpe(seed=2)
    trials: list[Trial] = []
    for trial_id in range(9):
        config = original.suggest(trial_id)
        assert config is not None
        loss = branin(config)
        if trial_id % 3 == 2:  # pruned after two reports worse than its final value
            trials.append(prune(original, trial_id, config, [loss + 20, loss + 10]))
        elif trial_id == 4:
            trials.append(prune(original, trial_id, config, []))
        else:
            trial = completed(trial_id, config, [loss + 5, loss])
            original.on_trial_start(running(trial_id, config))
            original.on_trial_complete(trial)
            trials.append(trial)
    failed = original.suggest(9)
    assert failed is not None
    original.on_trial_start(running(9, failed))
    original.on_trial_error(Trial(9, TrialState.FAILED, failed, error="x", attempts=1))
    trials.append(Trial(9, TrialState.FAILED, failed, error="x", attempts=1))
    pending = original.suggest(10)
    assert pending is not None
    original.on_trial_start(running(10, pending))
    trials.append(running(10, pending))
    state = json.loads(json.dumps(original.state_dict()))

    restored = make_searcher("tpe", {"seed": 2, "n_startup_trials": 4})
    restored.setup(make_ctx(BRANIN_SPACE, seed=2))
    restored.load_state_dict(state)
    restored.restore(trials)
    restored.on_trial_start(running(10, pending))  # dispatched again: idempotent
    held = study_of(original)
    assert study_of(restored) == held
    assert [s[0].name for s in held].count("PRUNED") == 4
    assert [restored.suggest(i) for i in (11, 12)] == [original.suggest(i) for i in (11, 12)]


@pytest.mark.parametrize("name", ["tpe", "nsga2"])
def test_multi_objective_pruned_trials_are_pruned_without_values(name: str) -> None:
    """On a two-objective study (where Optuna refuses intermediate values) reports are
    ignored and a pruned trial is PRUNED without values, live and after a restore."""
    import optuna

    options: dict[str, Any] = {"seed": 0, "population_size": 4} if name == "nsga2" else {}
    ctx = SearchContext(BRANIN_SPACE, ConstraintSet(None, BRANIN_SPACE), TWO, 0)
    original = make_searcher(name, options)
    original.setup(ctx)
    trials = []
    for trial_id in range(6):
        config = original.suggest(trial_id)
        assert config is not None
        if trial_id % 2:
            trials.append(prune(original, trial_id, config, [3.0, 2.0]))
            continue
        metrics = {"loss": branin(config), "acc": config["x"]}
        trial = Trial(trial_id, TrialState.COMPLETED, config, metrics, attempts=1)
        original.on_trial_complete(trial)
        trials.append(trial)
    assert isinstance(original, OptunaSearcher)
    pruned = original.optuna_study.get_trials(states=[optuna.trial.TrialState.PRUNED])
    assert len(pruned) == 3
    assert all(t.values is None and not t.intermediate_values for t in pruned)

    restored = make_searcher(name, options)
    restored.setup(ctx)
    restored.load_state_dict(json.loads(json.dumps(original.state_dict())))
    restored.restore(trials)
    assert study_of(restored) == study_of(original)
    assert restored.suggest(6) == original.suggest(6)


def test_auto_passes_reports_and_pruned_trials_to_its_choice() -> None:
    """``auto`` hands intermediate results and pruned trials to the searcher it chose."""
    import optuna

    searcher = AutoSearcher(seed=0)
    searcher.setup(make_ctx(SearchSpace({"x": uniform(0, 1)})))
    assert isinstance(searcher.inner, OptunaSearcher)
    config = searcher.suggest(0)
    assert config is not None
    prune(searcher, 0, config, [2.0, 1.0])
    (trial,) = searcher.inner.optuna_study.get_trials(deepcopy=False)
    assert trial.state is optuna.trial.TrialState.PRUNED
    assert trial.intermediate_values == {0: 2.0, 1: 1.0}


def test_ax_early_stops_a_pruned_trial_with_its_last_values() -> None:
    """Ax holds a pruned trial that reported as EARLY_STOPPED with its last value,
    one that reported nothing as ABANDONED; a restore rebuilds both the same."""
    pytest.importorskip("ax")
    from raysweep.sweep.searchers.ax_client import AxSearcher

    def ax_held(searcher: AxSearcher) -> list[tuple[str, list[float]]]:
        experiment = searcher.ax_client._experiment
        df = experiment.lookup_data().df
        return [
            (t.status.name, df[df["trial_index"] == i]["mean"].tolist())
            for i, t in sorted(experiment.trials.items())
        ]

    original = AxSearcher(seed=1)
    original.setup(make_ctx(BRANIN_SPACE, seed=1))
    trials = []
    for trial_id in range(4):
        config = original.suggest(trial_id)
        assert config is not None
        if trial_id == 1:
            trials.append(prune(original, trial_id, config, [30.0, 20.0]))
        elif trial_id == 2:
            trials.append(prune(original, trial_id, config, []))
        else:
            trial = completed(trial_id, config, [branin(config)])
            original.on_trial_start(running(trial_id, config))
            original.on_trial_complete(trial)
            trials.append(trial)
    held = ax_held(original)
    assert [status for status, _ in held] == [
        "COMPLETED",
        "EARLY_STOPPED",
        "ABANDONED",
        "COMPLETED",
    ]
    assert held[1][1] == [20.0]

    restored = AxSearcher(seed=1)
    restored.setup(make_ctx(BRANIN_SPACE, seed=1))
    restored.load_state_dict(json.loads(json.dumps(original.state_dict())))
    restored.restore(trials)
    assert ax_held(restored) == held
    assert restored.suggest(4) == original.suggest(4)
